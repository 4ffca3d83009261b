// Memory exhaustion under RLIMIT_AS (what `ulimit -v` sets): allocate a mix of
// small and large blocks until malloc returns NULL, check every block still
// holds what was written, free them all, then allocate the same sequence
// again: every allocation must succeed and read fresh (C1). Also checks that
// NULL comes with errno ENOMEM and that calloc/realloc at the limit fail
// cleanly (realloc keeps the old block).
//
// Usage: rlimit_as [MiB of address space allowed above what is mapped at start]
#include <sys/resource.h>

#include "common.h"

#define MAX_BLOCKS 200000

static void *blocks[MAX_BLOCKS];
static size_t sizes[MAX_BLOCKS];

static size_t size_of_step(size_t i) {
    static const size_t mix[] = {24, 1000, 30000, 100 * KIB, 24, 3 * MIB, 4000, 700 * KIB, 200};
    return mix[i % (sizeof mix / sizeof mix[0])];
}

// Head and tail stamps of this length; half the block when small.
static size_t edge_of(size_t size) {
    return size < 128 ? size / 2 : 64;
}

// Bytes of address space mapped now (VmSize, from /proc/self/statm in pages).
static size_t address_space_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    REQUIRE(f != NULL, "open /proc/self/statm");
    unsigned long pages = 0;
    REQUIRE(fscanf(f, "%lu", &pages) == 1, "read /proc/self/statm");
    fclose(f);
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

// Allocates the sequence until NULL (or MAX_BLOCKS); returns how many succeeded.
static size_t fill_up(unsigned long seed, size_t stop_at) {
    size_t n = 0;
    for (; n < stop_at; n++) {
        size_t size = size_of_step(n);
        errno = 0;
        void *p = opaque(malloc(size));
        if (!p) {
            CHECK(errno == ENOMEM, "malloc(%zu) returned NULL with errno %d, not ENOMEM", size, errno);
            break;
        }
        if (!EXPECT_FRESH(p, size, "block %zu of %zu bytes", n, size)) FATAL("stop after the first bad block");
        // Stamp the first and last 64 bytes (all of a small block): enough to
        // see a block moved or clobbered.
        stamp(p, edge_of(size), seed + n);
        stamp((char *)p + size - edge_of(size), edge_of(size), seed + n + 1);
        blocks[n] = p;
        sizes[n] = size;
    }
    return n;
}

static void check_and_free(unsigned long seed, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t edge = edge_of(sizes[i]);
        EXPECT_STAMP(blocks[i], edge, seed + i, "block %zu head after exhaustion", i);
        EXPECT_STAMP((char *)blocks[i] + sizes[i] - edge, edge, seed + i + 1, "block %zu tail after exhaustion", i);
        free(blocks[i]);
        blocks[i] = NULL;
    }
}

int main(int argc, char **argv) {
    setup_expectations();
    size_t allowed = (size_t)(argc > 1 ? atol(argv[1]) : 768) * MIB;
    size_t limit = address_space_now() + allowed;
    struct rlimit rl = {limit, limit};
    REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS, %zu): %s", limit, strerror(errno));

    size_t first = fill_up(1000, MAX_BLOCKS);
    REQUIRE(first < MAX_BLOCKS, "no NULL after %d blocks under a %zu MiB limit", MAX_BLOCKS, allowed / MIB);
    REQUIRE(first > 100, "only %zu blocks under a %zu MiB limit", first, allowed / MIB);

    // At the limit: a large calloc and a large realloc fail cleanly.
    errno = 0;
    void *z = calloc(1, 64 * MIB);
    CHECK(z == NULL && errno == ENOMEM, "calloc(64 MiB) at the limit: %p errno %d", z, errno);
    free(z);
    void *last = blocks[first - 1];
    size_t last_size = sizes[first - 1];
    errno = 0;
    void *grown = realloc(last, 512 * MIB);
    if (grown) {
        FAIL("realloc to 512 MiB succeeded at the limit");
        blocks[first - 1] = grown;
    } else {
        CHECK(errno == ENOMEM, "realloc NULL with errno %d", errno);
        size_t edge = edge_of(last_size);
        EXPECT_STAMP(last, edge, 1000 + first - 1, "block kept by the failed realloc");
    }

    check_and_free(1000, first);
    // The same sequence again: freed memory must be reusable in full.
    size_t again = fill_up(5000, first);
    CHECK(again == first, "after freeing everything only %zu of the %zu blocks could be allocated again", again,
          first);
    check_and_free(5000, again);
    printf("rlimit_as: %zu blocks before NULL, %zu again after freeing\n", first, again);
    return finish("rlimit_as");
}
