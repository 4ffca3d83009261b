/* Server-like churn: each thread keeps a live working set of small objects
 * and replaces a random one per step (free the old, malloc a new one of
 * another size, write its header and last byte), checking that the old
 * object still holds what was written into it. */
#include "common.h"

#define SLOTS 20000 /* live objects per thread */

struct object {
    uint64_t tag;
    uint64_t size;
};

static void *worker(void *arg) {
    unsigned index = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (index + 1);
    uint64_t steps = workload_share(6e5, index);
    struct object **live = checked_malloc(sizeof(*live) * SLOTS);
    for (unsigned i = 0; i < SLOTS; i++) {
        size_t size = rng_object_size(&rng) + sizeof(struct object);
        live[i] = checked_malloc(size);
        live[i]->tag = i;
        live[i]->size = size;
        ((volatile unsigned char *)live[i])[size - 1] = (unsigned char)i;
    }
    uint64_t sum = 0;
    for (uint64_t step = 0; step < steps; step++) {
        unsigned slot = (unsigned)(rng_next(&rng) % SLOTS);
        struct object *old = live[slot];
        if (old->tag != slot || ((volatile unsigned char *)old)[old->size - 1] != (unsigned char)slot)
            die("churn: an object lost its contents");
        sum += old->size;
        free(old);
        size_t size = rng_object_size(&rng) + sizeof(struct object);
        struct object *fresh = checked_malloc(size);
        fresh->tag = slot;
        fresh->size = size;
        ((volatile unsigned char *)fresh)[size - 1] = (unsigned char)slot;
        live[slot] = fresh;
    }
    for (unsigned i = 0; i < SLOTS; i++)
        free(live[i]);
    free(live);
    workload_sink += sum;
    return NULL;
}

int main(int argc, char **argv) {
    workload_args(argc, argv);
    run_threads(workload_threads, worker);
    return 0;
}
