/* Many growing buffers: each thread keeps 256 buffers that grow by small
 * appends through realloc (as string builders and vectors without capacity
 * doubling do) up to a random final size between 1 KiB and 128 KiB, then
 * are checked and freed and start again. Crosses from small to large blocks. */
#include "common.h"

#define BUFFERS 256

struct buffer {
    unsigned char *data;
    size_t len, target;
};

static void *worker(void *arg) {
    unsigned index = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0xD1B54A32D192ED03ULL * (index + 1);
    uint64_t appends = workload_share(4e5, index);
    struct buffer *bufs = checked_malloc(sizeof(*bufs) * BUFFERS);
    for (unsigned i = 0; i < BUFFERS; i++)
        bufs[i] = (struct buffer){NULL, 0, 1024 + rng_next(&rng) % (127 * 1024)};
    uint64_t done = 0;
    for (uint64_t a = 0; a < appends; a++) {
        struct buffer *b = &bufs[rng_next(&rng) % BUFFERS];
        size_t add = 1 + rng_next(&rng) % 64;
        unsigned char *grown = realloc(b->data, b->len + add);
        if (!grown)
            die("realloc returned NULL");
        /* The byte written at each length is (length & 0xff): cheap to check. */
        for (size_t k = 0; k < add; k++)
            grown[b->len + k] = (unsigned char)(b->len + k);
        b->data = grown;
        b->len += add;
        if (b->len >= b->target) {
            for (size_t k = 0; k < b->len; k += 997)
                if (b->data[k] != (unsigned char)k)
                    die("realloc_grow: a buffer lost its contents");
            free(b->data);
            *b = (struct buffer){NULL, 0, 1024 + rng_next(&rng) % (127 * 1024)};
            done++;
        }
    }
    for (unsigned i = 0; i < BUFFERS; i++)
        free(bufs[i].data);
    free(bufs);
    workload_sink += done;
    return NULL;
}

int main(int argc, char **argv) {
    workload_args(argc, argv);
    run_threads(workload_threads, worker);
    return 0;
}
