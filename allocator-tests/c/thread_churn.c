// Many short-lived threads, 8 at a time: each allocates and frees blocks of a
// few classes (so its heap holds pages when it exits), checks that they read
// as the pattern, and leaves two blocks behind for the main thread to free
// after it exited. What exited threads held must be reused: RSS after 1000
// threads stays close to RSS after the first 100 (a heap leaked per thread
// would add about 1000 x 128 KiB).
// Usage: thread_churn [threads]
#include <pthread.h>

#include "common.h"

#define AT_ONCE 8
#define LEFT 2

static void *left_behind[AT_ONCE][LEFT];
static size_t left_size[AT_ONCE][LEFT];

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    REQUIRE(f != NULL, "cannot open /proc/self/status");
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) v = atol(line + 6);
    fclose(f);
    REQUIRE(v > 0, "no VmRSS in /proc/self/status");
    return v;
}

struct job {
    int slot;
    int number;
};

static void *worker(void *arg) {
    struct job *job = (struct job *)arg;
    void *p[120];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 120; i++) {
            size_t size = i < 60 ? 64 : i < 110 ? 2048 : 20000;
            p[i] = opaque(malloc(size));
            REQUIRE(p[i] != NULL, "thread %d: malloc(%zu) returned NULL", job->number, size);
            if (i % 10 == 0) EXPECT_FRESH(p[i], size, "thread %d round %d: malloc(%zu)", job->number, round, size);
            dirty(p[i], size, 0x5a);
        }
        for (int i = 0; i < 120; i++) free(p[i]);
    }
    void *big = opaque(malloc(100000));
    REQUIRE(big != NULL, "thread %d: malloc(100000) returned NULL", job->number);
    EXPECT_FRESH(big, 100000, "thread %d: malloc(100000)", job->number);
    free(big);
    for (int k = 0; k < LEFT; k++) {
        size_t size = k ? 48 : 3000;
        void *q = opaque(malloc(size));
        REQUIRE(q != NULL, "thread %d: malloc(%zu) returned NULL", job->number, size);
        EXPECT_FRESH(q, size, "thread %d: malloc(%zu) left behind", job->number, size);
        stamp(q, size, (unsigned long)job->number * 2 + (unsigned long)k);
        left_behind[job->slot][k] = q;
        left_size[job->slot][k] = size;
    }
    return NULL;
}

int main(int argc, char **argv) {
    setup_expectations();
    int total = argc > 1 ? atoi(argv[1]) : 1000;
    long rss_warm = 0;
    for (int started = 0; started < total; started += AT_ONCE) {
        pthread_t t[AT_ONCE];
        struct job jobs[AT_ONCE];
        for (int i = 0; i < AT_ONCE; i++) {
            jobs[i] = (struct job){i, started + i};
            int rc = pthread_create(&t[i], NULL, worker, &jobs[i]);
            REQUIRE(rc == 0, "pthread_create: %s", strerror(rc));
        }
        for (int i = 0; i < AT_ONCE; i++) pthread_join(t[i], NULL);
        // Blocks of threads that have exited, freed by this one.
        for (int i = 0; i < AT_ONCE; i++) {
            for (int k = 0; k < LEFT; k++) {
                EXPECT_STAMP(left_behind[i][k], left_size[i][k], (unsigned long)(started + i) * 2 + (unsigned long)k,
                             "block of exited thread %d", started + i);
                free(left_behind[i][k]);
            }
        }
        if (started + AT_ONCE >= 100 && rss_warm == 0) rss_warm = rss_kib();
    }
    long rss_end = rss_kib();
    printf("thread_churn: %d threads, RSS after 100: %ld KiB, after all: %ld KiB\n", total, rss_warm, rss_end);
    CHECK(rss_end - rss_warm < 48 * 1024, "RSS grew by %ld KiB from thread 100 to thread %d", rss_end - rss_warm,
          total);
    return finish("thread_churn");
}
