// What every exported C allocation function returns reads as (DESIGN.md
// section 1): the pattern over the whole malloc_usable_size for malloc,
// valloc, pvalloc, memalign, aligned_alloc, posix_memalign and their __libc_*
// aliases (C1); zeros for calloc (C2); the kept prefix and a patterned tail
// for realloc and reallocarray (C3); the free pattern for freed small blocks
// when free_fill is on (C4). Fresh and recycled blocks, 1 byte to 8 MiB,
// alignments 8 bytes to 2 MiB.
#include "common.h"

static const size_t sizes[] = {
    1,     7,     8,     15,     16,     17,     24,     31,     32,     33,          48,          64,
    100,   127,   128,   129,    255,    256,    257,    500,    512,    1000,        1024,        1500,
    2048,  3000,  4095,  4096,   4097,   6000,   8192,   10000,  16384,  20000,       32767,       32768,
    32769, 40000, 65536, 100000, 131072, 262145, 524288, 524289, MIB,    MIB + 1,     3 * MIB + 5, 8 * MIB,
};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define BATCH 4

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);

// Fresh blocks, then blocks recycled after the program dirtied every usable byte.
static void check_malloc_like(const char *name, malloc_fn alloc, free_fn release) {
    for (size_t s = 0; s < NSIZES; s++) {
        size_t size = sizes[s];
        for (int round = 0; round < 3; round++) {
            void *b[BATCH];
            for (int k = 0; k < BATCH; k++) {
                b[k] = opaque(alloc(size));
                REQUIRE(b[k] != NULL, "%s(%zu) returned NULL", name, size);
                EXPECT_FRESH(b[k], size, "%s(%zu) round %d block %d", name, size, round, k);
            }
            for (int k = 0; k < BATCH; k++) dirty(b[k], malloc_usable_size(b[k]), dirty_byte((unsigned)k));
            for (int k = 0; k < BATCH; k++) release(b[k]);
        }
    }
}

// calloc: zeros, also in blocks that held other data; a malloc after a calloc
// of the same size reads as the pattern again.
static void check_calloc_like(const char *name, calloc_fn zalloc, free_fn release) {
    for (size_t s = 0; s < NSIZES; s++) {
        size_t size = sizes[s];
        for (int round = 0; round < 2; round++) {
            void *b[BATCH];
            for (int k = 0; k < BATCH; k++) {
                b[k] = opaque(k & 1 ? zalloc(1, size) : zalloc(size / 8 + 1, 8));
                REQUIRE(b[k] != NULL, "%s for %zu bytes returned NULL", name, size);
                EXPECT_ZERO(b[k], k & 1 ? size : size / 8 * 8 + 8, "%s (%zu bytes) round %d block %d", name, size,
                            round, k);
            }
            for (int k = 0; k < BATCH; k++) dirty(b[k], malloc_usable_size(b[k]), dirty_byte((unsigned)k));
            for (int k = 0; k < BATCH; k++) release(b[k]);
        }
        void *p = opaque(malloc(size));
        REQUIRE(p != NULL, "malloc(%zu) returned NULL", size);
        EXPECT_FRESH(p, size, "malloc(%zu) after %s of that size", size, name);
        free(p);
    }
}

// realloc keeps min(old, new) bytes; what lies past the old size reads as the pattern.
static void check_realloc_pairs(const char *name, realloc_fn re, free_fn release) {
    static const size_t pairs[][2] = {
        {1, 16},          {16, 17},           {8, 100},          {100, 3000},         {3000, 32768},
        {32768, 32769},   {1000, 40000},      {40000, 100000},   {100000, MIB},       {MIB, 3 * MIB},
        {3 * MIB, 8 * MIB}, {8 * MIB, 100},   {MIB, 5000},       {100000, 50000},     {40000, 40001},
        {3000, 16},       {5000, 3 * 4096 + 1}, {4096, 8192},    {524288, 524289},    {200, 100},
        {65536, 32768},   {32769, 32768},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t old = pairs[i][0], new_size = pairs[i][1];
        for (int round = 0; round < 2; round++) {
            void *p = opaque(re(NULL, old));
            REQUIRE(p != NULL, "%s(NULL, %zu) returned NULL", name, old);
            EXPECT_FRESH(p, old, "%s(NULL, %zu)", name, old);
            stamp(p, old, i);
            void *q = opaque(re(p, new_size));
            REQUIRE(q != NULL, "%s(%zu -> %zu) returned NULL", name, old, new_size);
            size_t keep = old < new_size ? old : new_size;
            EXPECT_STAMP(q, keep, i, "%s(%zu -> %zu) round %d: kept prefix", name, old, new_size, round);
            CHECK(malloc_usable_size(q) >= new_size, "%s(%zu -> %zu): usable %zu", name, old, new_size,
                  malloc_usable_size(q));
            if (new_size > old) EXPECT_FRESH_TAIL(q, old, "%s(%zu -> %zu) round %d", name, old, new_size, round);
            // Back to the old size: the bytes past new_size were given up, so
            // they read as the pattern again when the block grows (C3).
            void *r = opaque(re(q, old));
            REQUIRE(r != NULL, "%s(%zu -> %zu -> %zu) returned NULL", name, old, new_size, old);
            EXPECT_STAMP(r, keep, i, "%s(%zu -> %zu -> %zu): kept prefix", name, old, new_size, old);
            if (old > new_size) EXPECT_FRESH_TAIL(r, new_size, "%s(%zu -> %zu -> %zu)", name, old, new_size, old);
            dirty(r, malloc_usable_size(r), dirty_byte((unsigned)round));
            release(r);
        }
    }
    // A block grown step by step, as a vector or string buffer would be.
    size_t size = 1;
    void *p = opaque(re(NULL, size));
    REQUIRE(p != NULL, "%s(NULL, 1) returned NULL", name);
    stamp(p, size, 99);
    while (size < 4 * MIB) {
        size_t next = size * 3 / 2 + 1;
        void *q = opaque(re(p, next));
        REQUIRE(q != NULL, "%s(%zu -> %zu) returned NULL", name, size, next);
        EXPECT_STAMP(q, size, 99, "%s growth %zu -> %zu: kept prefix", name, size, next);
        EXPECT_FRESH_TAIL(q, size, "%s growth %zu -> %zu", name, size, next);
        stamp(q, next, 99);
        p = q;
        size = next;
    }
    release(p);
}

static void check_reallocarray(void) {
    void *p = opaque(reallocarray(NULL, 10, 100));
    REQUIRE(p != NULL, "reallocarray(NULL, 10, 100) returned NULL");
    EXPECT_FRESH(p, 1000, "reallocarray(NULL, 10, 100)");
    stamp(p, 1000, 5);
    void *q = opaque(reallocarray(p, 300, 1000));
    REQUIRE(q != NULL, "reallocarray(p, 300, 1000) returned NULL");
    EXPECT_STAMP(q, 1000, 5, "reallocarray 1000 -> 300000: kept prefix");
    EXPECT_FRESH_TAIL(q, 1000, "reallocarray 1000 -> 300000");
    void *r = opaque(reallocarray(q, 7, 3));
    REQUIRE(r != NULL, "reallocarray(p, 7, 3) returned NULL");
    EXPECT_STAMP(r, 21, 5, "reallocarray 300000 -> 21: kept prefix");
    free(r);
}

static void check_aligned(const char *name, int which, memalign_fn memalign_f, posix_memalign_fn posix_f) {
    for (size_t align = 8; align <= 2 * MIB; align *= 2) {
        const size_t asked[] = {1, 100, align, align * 3 / 2 + 1, 5000, 100000};
        for (size_t s = 0; s < sizeof asked / sizeof asked[0]; s++) {
            // aligned_alloc callers pass multiples of the alignment (C11).
            size_t size = which == 1 ? round_up_(asked[s], align) : asked[s];
            for (int round = 0; round < 2; round++) {
                void *b[2];
                for (int k = 0; k < 2; k++) {
                    void *p = NULL;
                    if (posix_f) {
                        int rc = posix_f(&p, align, size);
                        REQUIRE(rc == 0, "%s(align %zu, %zu) returned %d", name, align, size, rc);
                    } else {
                        p = memalign_f(align, size);
                    }
                    p = opaque(p);
                    REQUIRE(p != NULL, "%s(align %zu, %zu) returned NULL", name, align, size);
                    CHECK((uintptr_t)p % align == 0, "%s(align %zu, %zu) = %p is not aligned", name, align, size, p);
                    EXPECT_FRESH(p, size, "%s(align %zu, %zu) round %d block %d", name, align, size, round, k);
                    b[k] = p;
                }
                for (int k = 0; k < 2; k++) dirty(b[k], malloc_usable_size(b[k]), dirty_byte((unsigned)(k + round)));
                for (int k = 0; k < 2; k++) free(b[k]);
            }
        }
    }
}

// realloc of blocks from the memalign family: data kept, growth patterned.
static void check_realloc_aligned(void) {
    for (size_t align = 64; align <= 2 * MIB; align *= 8) {
        void *p = opaque(memalign(align, 1000));
        REQUIRE(p != NULL, "memalign(%zu, 1000) returned NULL", align);
        stamp(p, 1000, align);
        void *q = opaque(realloc(p, 300000));
        REQUIRE(q != NULL, "realloc(memalign(%zu, 1000), 300000) returned NULL", align);
        EXPECT_STAMP(q, 1000, align, "realloc(memalign(%zu, 1000), 300000): kept prefix", align);
        EXPECT_FRESH_TAIL(q, 1000, "realloc(memalign(%zu, 1000), 300000)", align);
        void *r = opaque(realloc(q, 50));
        REQUIRE(r != NULL, "realloc(.., 50) returned NULL");
        EXPECT_STAMP(r, 50, align, "realloc(memalign(%zu, 1000), 300000 -> 50): kept prefix", align);
        free(r);
    }
}

static void check_page_aligned(const char *name, malloc_fn alloc, int rounds_to_page) {
    const size_t asked[] = {0, 1, 4095, 4096, 4097, 100000, 3 * MIB + 1};
    for (size_t s = 0; s < sizeof asked / sizeof asked[0]; s++) {
        size_t size = asked[s];
        for (int round = 0; round < 2; round++) {
            void *p = opaque(alloc(size));
            REQUIRE(p != NULL, "%s(%zu) returned NULL", name, size);
            CHECK((uintptr_t)p % PAGE_SIZE_ == 0, "%s(%zu) = %p is not page aligned", name, size, p);
            // pvalloc(0) is one page (glibc 2.36 gives a minimal chunk instead).
            size_t want = !rounds_to_page || (size == 0 && glibc_mode) ? size : round_up_(size ? size : 1, PAGE_SIZE_);
            EXPECT_FRESH(p, want, "%s(%zu) round %d", name, size, round);
            dirty(p, malloc_usable_size(p), dirty_byte((unsigned)round));
            free(p);
        }
    }
}

static void *call_aligned_alloc(size_t align, size_t size) {
    return aligned_alloc(align, size);
}

static void *call_memalign(size_t align, size_t size) {
    return memalign(align, size);
}

static void *call_malloc(size_t n) {
    return malloc(n);
}
static void call_free(void *p) {
    free(p);
}
static void *call_calloc(size_t n, size_t m) {
    return calloc(n, m);
}
static void *call_realloc(void *p, size_t n) {
    return realloc(p, n);
}

// glibc's own names for its allocator. Under LD_PRELOAD they must be the
// library's too: a program (or libc itself) calling __libc_malloc must not
// get a block from a second heap.
static void check_libc_aliases(void) {
    static const char *names[] = {"__libc_malloc", "__libc_free",   "__libc_calloc",   "__libc_realloc",
                                  "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign",
                                  "cfree"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) expect_ours(names[i]);
    malloc_fn l_malloc = (malloc_fn)dlsym(RTLD_DEFAULT, "__libc_malloc");
    free_fn l_free = (free_fn)dlsym(RTLD_DEFAULT, "__libc_free");
    calloc_fn l_calloc = (calloc_fn)dlsym(RTLD_DEFAULT, "__libc_calloc");
    realloc_fn l_realloc = (realloc_fn)dlsym(RTLD_DEFAULT, "__libc_realloc");
    memalign_fn l_memalign = (memalign_fn)dlsym(RTLD_DEFAULT, "__libc_memalign");
    malloc_fn l_valloc = (malloc_fn)dlsym(RTLD_DEFAULT, "__libc_valloc");
    malloc_fn l_pvalloc = (malloc_fn)dlsym(RTLD_DEFAULT, "__libc_pvalloc");
    posix_memalign_fn l_posix = (posix_memalign_fn)dlsym(RTLD_DEFAULT, "__posix_memalign");
    free_fn c_free = (free_fn)dlsym(RTLD_DEFAULT, "cfree");
    REQUIRE(l_malloc && l_free && l_calloc && l_realloc && l_memalign && l_valloc && l_pvalloc,
            "a __libc_* allocation function is missing");
    check_malloc_like("__libc_malloc", l_malloc, l_free);
    check_calloc_like("__libc_calloc", l_calloc, l_free);
    check_realloc_pairs("__libc_realloc", l_realloc, l_free);
    check_aligned("__libc_memalign", 0, l_memalign, NULL);
    check_page_aligned("__libc_valloc", l_valloc, 0);
    check_page_aligned("__libc_pvalloc", l_pvalloc, 1);
    if (l_posix) {
        check_aligned("__posix_memalign", 2, NULL, l_posix);
    } else {
        CHECK(glibc_mode, "__posix_memalign is not defined");
    }
    // Blocks cross between the names: one heap behind all of them.
    for (size_t s = 0; s < NSIZES; s += 3) {
        void *a = opaque(l_malloc(sizes[s]));
        void *b = opaque(malloc(sizes[s]));
        REQUIRE(a && b, "malloc/__libc_malloc(%zu) returned NULL", sizes[s]);
        EXPECT_FRESH(a, sizes[s], "__libc_malloc(%zu) freed by free", sizes[s]);
        EXPECT_FRESH(b, sizes[s], "malloc(%zu) freed by __libc_free", sizes[s]);
        free(a);
        l_free(b);
        void *c = opaque(malloc(sizes[s]));
        REQUIRE(c != NULL, "malloc(%zu) returned NULL", sizes[s]);
        c = opaque(l_realloc(c, sizes[s] * 2));
        REQUIRE(c != NULL, "__libc_realloc(malloc(%zu)) returned NULL", sizes[s]);
        CHECK(malloc_usable_size(c) >= sizes[s] * 2, "__libc_realloc(malloc(%zu), %zu): usable %zu", sizes[s],
              sizes[s] * 2, malloc_usable_size(c));
        // Nothing was written: all of it reads as the pattern (the old class's and the new one's).
        EXPECT_FRESH_TAIL(c, 0, "__libc_realloc(malloc(%zu), %zu)", sizes[s], sizes[s] * 2);
        if (c_free) {
            c_free(c);
        } else {
            CHECK(glibc_mode, "cfree is not defined");
            free(c);
        }
    }
}

// C4: a freed small block reads as the free pattern past its first 16 bytes
// until it is reused. Reading freed memory is fine here: small blocks live in
// segments that stay mapped.
static void check_free_fill(void) {
    const size_t small[] = {16, 17, 100, 1000, 3000, 20000, 32768};
    for (size_t s = 0; s < sizeof small / sizeof small[0]; s++) {
        void *p = opaque(malloc(small[s]));
        REQUIRE(p != NULL, "malloc(%zu) returned NULL", small[s]);
        size_t usable = malloc_usable_size(p);
        dirty(p, usable, dirty_byte(1));
        unsigned char *keep = (unsigned char *)opaque(p);
        free(p);
        EXPECT_BYTES(keep + 16, usable - 16, free_fill_byte, "freed malloc(%zu) with free_fill", small[s]);
        void *q = opaque(malloc(small[s]));
        REQUIRE(q != NULL, "malloc(%zu) returned NULL", small[s]);
        EXPECT_FRESH(q, small[s], "malloc(%zu) after a free with free_fill", small[s]);
        free(q);
    }
}

int main(void) {
    setup_expectations();
    static const char *names[] = {"malloc",        "free",    "calloc", "realloc", "reallocarray",
                                  "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
                                  "malloc_usable_size"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) expect_ours(names[i]);
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));

    check_malloc_like("malloc", call_malloc, call_free);
    check_calloc_like("calloc", call_calloc, call_free);
    check_realloc_pairs("realloc", call_realloc, call_free);
    check_reallocarray();
    check_aligned("posix_memalign", 2, NULL, posix_memalign);
    check_aligned("aligned_alloc", 1, call_aligned_alloc, NULL);
    check_aligned("memalign", 0, call_memalign, NULL);
    check_realloc_aligned();
    check_page_aligned("valloc", valloc, 0);
    check_page_aligned("pvalloc", pvalloc, 1);
    check_libc_aliases();
    if (free_fill_on && !glibc_mode) check_free_fill();
    if (class_mode) {
        int distinct = 0;
        for (int b = 0; b < 256; b++) distinct += seen_patterns[b];
        CHECK(distinct >= 20, "class_patterns: fresh blocks read as only %d distinct bytes", distinct);
    }
    return finish("contents");
}
