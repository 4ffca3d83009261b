/* A few large buffers used sparsely: each step allocates four buffers of
 * 8..64 MiB (think preallocated hash tables or arenas), writes and reads back
 * one 64-byte record in every 64th page, and frees them. Shows what a fill of
 * the whole block costs a program that uses little of it. */
#include "common.h"

#define PAGE 4096
#define STRIDE (64 * PAGE)

static void *worker(void *arg) {
    unsigned index = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0xA0761D6478BD642FULL * (index + 1);
    uint64_t steps = workload_share(8, index);
    uint64_t sum = 0;
    for (uint64_t s = 0; s < steps; s++) {
        unsigned char *bufs[4];
        size_t sizes[4];
        for (int i = 0; i < 4; i++) {
            sizes[i] = ((size_t)8 << 20) << (rng_next(&rng) % 4);
            bufs[i] = checked_malloc(sizes[i]);
            for (size_t off = 0; off < sizes[i]; off += STRIDE)
                memset(bufs[i] + off, (int)(off / STRIDE), 64);
        }
        for (int i = 0; i < 4; i++) {
            for (size_t off = 0; off < sizes[i]; off += STRIDE) {
                if (bufs[i][off + 63] != (unsigned char)(off / STRIDE))
                    die("sparse_large: a record lost its contents");
                sum += bufs[i][off];
            }
            free(bufs[i]);
        }
    }
    workload_sink += sum;
    return NULL;
}

int main(int argc, char **argv) {
    workload_args(argc, argv);
    run_threads(workload_threads, worker);
    return 0;
}
