/* Shared by the comparison workloads: argument parsing, a per-thread PRNG,
 * running a function on N threads, and a sink that keeps results alive.
 *
 * Every workload is `prog THREADS SCALE`: SCALE multiplies the total work,
 * which is split across THREADS (strong scaling), so the wall time of one
 * thread over that of N threads is the speed-up. Exit status 0 means the
 * contents checks passed; any mismatch exits 3 with a line on stderr. */
#ifndef WORKLOAD_COMMON_H
#define WORKLOAD_COMMON_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned workload_threads = 1;
static double workload_scale = 1.0;

static inline void workload_args(int argc, char **argv) {
    if (argc > 1)
        workload_threads = (unsigned)strtoul(argv[1], NULL, 10);
    if (argc > 2)
        workload_scale = strtod(argv[2], NULL);
    if (workload_threads < 1)
        workload_threads = 1;
    if (workload_scale <= 0)
        workload_scale = 1.0;
}

/* Total work `base * scale`, the share of thread `index` of it. */
static inline uint64_t workload_share(double base, unsigned index) {
    uint64_t total = (uint64_t)(base * workload_scale);
    if (total < workload_threads)
        total = workload_threads;
    uint64_t share = total / workload_threads;
    return index == 0 ? share + total % workload_threads : share;
}

/* xorshift64*: cheap, deterministic per thread. */
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Small-object sizes as servers see them: mostly under 128 bytes, a tail up to 1 KiB,
 * rarely up to 8 KiB. */
static inline size_t rng_object_size(uint64_t *state) {
    uint64_t r = rng_next(state);
    unsigned bucket = (unsigned)(r % 100);
    if (bucket < 70)
        return 8 + (r >> 8) % 120;
    if (bucket < 97)
        return 128 + (r >> 8) % 896;
    return 1024 + (r >> 8) % 7168;
}

static inline void die(const char *what) {
    fprintf(stderr, "workload: %s\n", what);
    exit(3);
}

static inline void *checked_malloc(size_t size) {
    void *p = malloc(size);
    if (!p)
        die("malloc returned NULL");
    return p;
}

/* Runs fn(index) on `count` threads and joins them. */
static inline void run_threads(unsigned count, void *(*fn)(void *)) {
    pthread_t *ids = checked_malloc(sizeof(pthread_t) * count);
    for (unsigned i = 0; i < count; i++)
        if (pthread_create(&ids[i], NULL, fn, (void *)(uintptr_t)i) != 0)
            die("pthread_create failed");
    for (unsigned i = 0; i < count; i++)
        pthread_join(ids[i], NULL);
    free(ids);
}

/* Results land here so the compiler cannot drop the work. */
static volatile uint64_t workload_sink;

#endif
