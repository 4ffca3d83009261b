// 8 threads allocate blocks of mixed sizes and hand most of them to other
// threads, which check the data the owner wrote, sometimes realloc them (a
// cross-thread realloc), and free them (a cross-thread free). Every fresh
// block is checked to read as the pattern over its whole usable size (C1)
// and every calloc block as zeros (C2), however its memory was last used.
// Usage: threads [ops per thread] [seconds at most]
#include <pthread.h>
#include <time.h>

#include "common.h"

#define THREADS 8
#define INBOX 256

struct item {
    unsigned char *p;
    size_t size;
    unsigned long seed;
    int zeroed; // from calloc: zeros, not the pattern, past `size`
};

struct inbox {
    pthread_mutex_t lock;
    struct item items[INBOX];
    int count;
};

static struct inbox inboxes[THREADS];
static long ops_per_thread = 20000;
static double deadline;
static long total_ops, cross_frees, cross_reallocs;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static size_t pick_size(uint64_t *rng) {
    uint64_t r = next_random(rng);
    unsigned permille = (unsigned)(r % 1000);
    r >>= 10;
    if (permille < 600) return 1 + r % 256;
    if (permille < 850) return 257 + r % 3840;
    if (permille < 970) return 4097 + r % 28672;
    if (permille < 997) return 32769 + r % 100000;
    return 200000 + r % (2 * MIB);
}

// Large blocks get their first and last 4 KiB written: enough to see moved or
// clobbered data, cheap enough for a few seconds of stress.
static void write_data(unsigned char *p, size_t size, unsigned long seed) {
    if (size <= 16384) {
        stamp(p, size, seed);
    } else {
        stamp(p, 4096, seed);
        stamp(p + size - 4096, 4096, seed + 1);
    }
}

static int data_intact(const unsigned char *p, size_t size, unsigned long seed, const char *when) {
    if (size <= 16384) return EXPECT_STAMP(p, size, seed, "%s: block of %zu", when, size);
    return EXPECT_STAMP(p, 4096, seed, "%s: head of block of %zu", when, size) &&
           EXPECT_STAMP(p + size - 4096, 4096, seed + 1, "%s: tail of block of %zu", when, size);
}

static unsigned char *fresh_block(size_t size, uint64_t *rng, int thread, int *zeroed) {
    unsigned kind = (unsigned)(next_random(rng) % 16);
    *zeroed = kind == 0;
    unsigned char *p;
    if (kind == 0) {
        p = (unsigned char *)opaque(calloc(1, size));
        REQUIRE(p != NULL, "thread %d: calloc(1, %zu) returned NULL", thread, size);
        EXPECT_ZERO(p, size, "thread %d: calloc(1, %zu)", thread, size);
    } else if (kind == 1) {
        size_t align = (size_t)64 << (next_random(rng) % 7);
        void *q = NULL;
        int rc = posix_memalign(&q, align, size);
        REQUIRE(rc == 0 && q != NULL, "thread %d: posix_memalign(%zu, %zu) = %d", thread, align, size, rc);
        CHECK((uintptr_t)q % align == 0, "thread %d: posix_memalign(%zu, %zu) = %p", thread, align, size, q);
        p = (unsigned char *)opaque(q);
        EXPECT_FRESH(p, size, "thread %d: posix_memalign(%zu, %zu)", thread, align, size);
    } else {
        p = (unsigned char *)opaque(malloc(size));
        REQUIRE(p != NULL, "thread %d: malloc(%zu) returned NULL", thread, size);
        EXPECT_FRESH(p, size, "thread %d: malloc(%zu)", thread, size);
    }
    return p;
}

// Blocks other threads sent: check, maybe realloc, free.
static void drain(int self, uint64_t *rng) {
    struct item got[INBOX];
    int n;
    pthread_mutex_lock(&inboxes[self].lock);
    n = inboxes[self].count;
    memcpy(got, inboxes[self].items, (size_t)n * sizeof got[0]);
    inboxes[self].count = 0;
    pthread_mutex_unlock(&inboxes[self].lock);
    for (int i = 0; i < n; i++) {
        struct item it = got[i];
        data_intact(it.p, it.size, it.seed, "received from another thread");
        if (next_random(rng) % 8 == 0) {
            size_t grown = it.size + 1 + next_random(rng) % (it.size + 64);
            // C realloc knows the old block's usable size, not its requested
            // size: a calloc block's zeros up to there are kept.
            size_t from = it.zeroed ? malloc_usable_size(it.p) : it.size;
            unsigned char *q = (unsigned char *)opaque(realloc(it.p, grown));
            REQUIRE(q != NULL, "thread %d: realloc(%zu -> %zu) returned NULL", self, it.size, grown);
            data_intact(q, it.size, it.seed, "after a cross-thread realloc");
            if (it.size <= 16384)
                EXPECT_FRESH_TAIL(q, from, "cross-thread realloc %zu -> %zu%s", it.size, grown,
                                  it.zeroed ? " of a calloc block" : "");
            it.p = q;
            __atomic_add_fetch(&cross_reallocs, 1, __ATOMIC_RELAXED);
        }
        free(it.p);
        __atomic_add_fetch(&cross_frees, 1, __ATOMIC_RELAXED);
    }
}

static void *worker(void *arg) {
    int self = (int)(intptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(self + 1);
    struct item local[32];
    int nlocal = 0;
    long op;
    for (op = 0; op < ops_per_thread; op++) {
        if ((op & 255) == 0 && now() > deadline) break;
        size_t size = pick_size(&rng);
        int zeroed;
        unsigned char *p = fresh_block(size, &rng, self, &zeroed);
        unsigned long seed = ((unsigned long)self << 40) | (unsigned long)op;
        write_data(p, size, seed);
        int to = (int)(next_random(&rng) % THREADS);
        if (to != self) {
            struct inbox *box = &inboxes[to];
            pthread_mutex_lock(&box->lock);
            if (box->count < INBOX) {
                box->items[box->count++] = (struct item){p, size, seed, zeroed};
                p = NULL;
            }
            pthread_mutex_unlock(&box->lock);
        }
        if (p) {
            // Kept here for a while, then freed by this thread.
            if (nlocal == 32) {
                nlocal--;
                data_intact(local[nlocal].p, local[nlocal].size, local[nlocal].seed, "kept by its thread");
                free(local[nlocal].p);
            }
            local[nlocal++] = (struct item){p, size, seed, zeroed};
        }
        if ((op & 15) == 0) drain(self, &rng);
    }
    for (int i = 0; i < nlocal; i++) {
        data_intact(local[i].p, local[i].size, local[i].seed, "kept by its thread at the end");
        free(local[i].p);
    }
    drain(self, &rng);
    __atomic_add_fetch(&total_ops, op, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv) {
    setup_expectations();
    if (argc > 1) ops_per_thread = atol(argv[1]);
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    deadline = now() + seconds;
    for (int i = 0; i < THREADS; i++) pthread_mutex_init(&inboxes[i].lock, NULL);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    // Blocks sent to threads that had already finished.
    uint64_t rng = 1;
    for (int i = 0; i < THREADS; i++) drain(i, &rng);
    printf("threads: %ld allocations, %ld freed by another thread, %ld reallocated by another thread\n", total_ops,
           cross_frees, cross_reallocs);
    CHECK(cross_frees > total_ops / 4, "only %ld of %ld blocks were freed by another thread", cross_frees, total_ops);
    CHECK(total_ops >= THREADS * 500, "only %ld allocations before the deadline", total_ops);
    return finish("threads");
}
