// Preloaded before libpattern_alloc.so: its constructor runs before main and
// starts threads that make the process's first allocations while the
// constructor allocates too, so the allocator initializes on whichever call
// comes first, from a thread nobody in the program created.
#include "common.h"

#include <pthread.h>

#define EARLY_THREADS 4

static pthread_t threads[EARLY_THREADS];
static int early_failures;

static void *early_worker(void *arg) {
    size_t seed = (size_t)arg;
    for (int i = 0; i < 2000; i++) {
        size_t size = 1 + (seed * 7919 + (size_t)i * 104729) % 70000;
        unsigned char *p = opaque(malloc(size));
        if (!p) {
            __atomic_add_fetch(&early_failures, 1, __ATOMIC_RELAXED);
            continue;
        }
        volatile unsigned char *v = p;
        if (v[0] != 0xAA || v[size - 1] != 0xAA)
            __atomic_add_fetch(&early_failures, 1, __ATOMIC_RELAXED);
        p[0] = 1;
        free(p);
    }
    return NULL;
}

__attribute__((constructor)) static void early_start(void) {
    for (size_t i = 0; i < EARLY_THREADS; i++)
        if (pthread_create(&threads[i], NULL, early_worker, (void *)i) != 0)
            __atomic_add_fetch(&early_failures, 1, __ATOMIC_RELAXED);
    char *s = opaque(strdup("constructor"));
    free(s);
}

// Called by early_init.c's main: joins the threads and reports their failures.
int early_join(void) {
    for (size_t i = 0; i < EARLY_THREADS; i++)
        pthread_join(threads[i], NULL);
    return early_failures;
}
