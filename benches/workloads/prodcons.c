/* Producer/consumer: THREADS pairs of threads; each producer allocates
 * batches of 64 small objects, writes them and hands them to its consumer
 * through a bounded queue; the consumer checks and frees them. Every free is
 * a free from another thread than the one that allocated. */
#include "common.h"

#define BATCH 64
#define QUEUE 64 /* batches in flight per pair */

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void **batches[QUEUE];
    unsigned head, count;
    uint64_t batches_total;
};

static struct queue *queues;

static void *producer(void *arg) {
    unsigned index = (unsigned)(uintptr_t)arg;
    struct queue *q = &queues[index];
    uint64_t rng = 0xE7037ED1A0B428DBULL * (index + 1);
    for (uint64_t b = 0; b < q->batches_total; b++) {
        void **batch = checked_malloc(sizeof(void *) * BATCH);
        for (unsigned i = 0; i < BATCH; i++) {
            size_t size = rng_object_size(&rng);
            if (size < 16)
                size = 16;
            uint64_t *obj = checked_malloc(size);
            obj[0] = b * BATCH + i;
            obj[1] = size;
            batch[i] = obj;
        }
        pthread_mutex_lock(&q->lock);
        while (q->count == QUEUE)
            pthread_cond_wait(&q->not_full, &q->lock);
        q->batches[(q->head + q->count) % QUEUE] = batch;
        q->count++;
        pthread_cond_signal(&q->not_empty);
        pthread_mutex_unlock(&q->lock);
    }
    return NULL;
}

static void *consumer(void *arg) {
    unsigned index = (unsigned)(uintptr_t)arg;
    struct queue *q = &queues[index];
    uint64_t sum = 0;
    for (uint64_t b = 0; b < q->batches_total; b++) {
        pthread_mutex_lock(&q->lock);
        while (q->count == 0)
            pthread_cond_wait(&q->not_empty, &q->lock);
        void **batch = q->batches[q->head];
        q->head = (q->head + 1) % QUEUE;
        q->count--;
        pthread_cond_signal(&q->not_full);
        pthread_mutex_unlock(&q->lock);
        for (unsigned i = 0; i < BATCH; i++) {
            uint64_t *obj = batch[i];
            if (obj[0] != b * BATCH + i)
                die("prodcons: an object lost its contents");
            sum += obj[1];
            free(obj);
        }
        free(batch);
    }
    workload_sink += sum;
    return NULL;
}

int main(int argc, char **argv) {
    workload_args(argc, argv);
    unsigned pairs = workload_threads;
    queues = checked_malloc(sizeof(*queues) * pairs);
    pthread_t *ids = checked_malloc(sizeof(pthread_t) * 2 * pairs);
    for (unsigned i = 0; i < pairs; i++) {
        struct queue *q = &queues[i];
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->not_empty, NULL);
        pthread_cond_init(&q->not_full, NULL);
        q->head = q->count = 0;
        q->batches_total = workload_share(8e3, i);
    }
    for (unsigned i = 0; i < pairs; i++) {
        if (pthread_create(&ids[2 * i], NULL, producer, (void *)(uintptr_t)i) != 0 ||
            pthread_create(&ids[2 * i + 1], NULL, consumer, (void *)(uintptr_t)i) != 0)
            die("pthread_create failed");
    }
    for (unsigned i = 0; i < 2 * pairs; i++)
        pthread_join(ids[i], NULL);
    free(ids);
    free(queues);
    return 0;
}
