/* Large-block latency against size: for each size from 64 KiB to 256 MiB,
 * the median time of malloc, of writing one byte per page (the page faults,
 * or nothing where malloc already filled the block), and of free, over
 * several rounds of malloc/touch/free (so allocator caches of freed blocks
 * count, as in a real program). Prints `size malloc_ns touch_ns free_ns`
 * per line; THREADS is ignored, SCALE multiplies the rounds (below 0.1, a
 * smoke run: sizes up to 16 MiB only). */
#include <time.h>

#include "common.h"

#define PAGE 4096

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, unsigned n) {
    qsort(v, n, sizeof(*v), compare);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    workload_args(argc, argv);
    size_t largest = workload_scale < 0.1 ? (size_t)16 << 20 : (size_t)256 << 20;
    for (size_t size = 64 << 10; size <= largest; size *= 4) {
        unsigned rounds = (unsigned)((size <= (16 << 20) ? 21 : 7) * workload_scale);
        if (rounds < 1)
            rounds = 1;
        uint64_t *t_alloc = checked_malloc(sizeof(uint64_t) * rounds);
        uint64_t *t_touch = checked_malloc(sizeof(uint64_t) * rounds);
        uint64_t *t_free = checked_malloc(sizeof(uint64_t) * rounds);
        for (unsigned r = 0; r < rounds; r++) {
            uint64_t t0 = now_ns();
            volatile unsigned char *p = malloc(size);
            uint64_t t1 = now_ns();
            if (!p)
                die("malloc returned NULL");
            for (size_t off = 0; off < size; off += PAGE)
                p[off] = (unsigned char)off;
            uint64_t t2 = now_ns();
            if (p[size - PAGE] != (unsigned char)(size - PAGE))
                die("large_latency: a page lost its contents");
            free((void *)p);
            uint64_t t3 = now_ns();
            t_alloc[r] = t1 - t0;
            t_touch[r] = t2 - t1;
            t_free[r] = t3 - t2;
        }
        printf("%zu %llu %llu %llu\n", size, (unsigned long long)median(t_alloc, rounds),
               (unsigned long long)median(t_touch, rounds), (unsigned long long)median(t_free, rounds));
        free(t_alloc);
        free(t_touch);
        free(t_free);
    }
    return 0;
}
