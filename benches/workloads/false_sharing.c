/* False-sharing probe: the main thread allocates one small object per
 * worker, back to back (so an allocator may put them in one cache line);
 * each worker writes its object many times, then frees it and allocates a
 * new one of the same size, which it writes again. An allocator that hands a
 * worker memory next to another thread's objects makes the writes fight over
 * cache lines; with one thread there is nothing to fight over. */
#include "common.h"

#define OBJECT 24
#define WRITES 20000 /* per object before it is replaced */

static volatile uint64_t **objects;

static void *worker(void *arg) {
    unsigned index = (unsigned)(uintptr_t)arg;
    uint64_t rounds = workload_share(800, index);
    volatile uint64_t *obj = objects[index];
    for (uint64_t r = 0; r < rounds; r++) {
        for (unsigned w = 0; w < WRITES; w++)
            obj[w % 3] += w;
        if (obj[0] + obj[1] + obj[2] != (uint64_t)WRITES * (WRITES - 1) / 2 * (r + 1))
            die("false_sharing: an object lost its contents");
        uint64_t keep[3] = {obj[0], obj[1], obj[2]};
        free((void *)obj);
        obj = checked_malloc(OBJECT);
        obj[0] = keep[0];
        obj[1] = keep[1];
        obj[2] = keep[2];
    }
    workload_sink += obj[0];
    free((void *)obj);
    return NULL;
}

int main(int argc, char **argv) {
    workload_args(argc, argv);
    objects = checked_malloc(sizeof(*objects) * workload_threads);
    for (unsigned i = 0; i < workload_threads; i++) {
        objects[i] = checked_malloc(OBJECT);
        objects[i][0] = objects[i][1] = objects[i][2] = 0;
    }
    run_threads(workload_threads, worker);
    free(objects);
    return 0;
}
