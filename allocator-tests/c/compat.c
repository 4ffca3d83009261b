// glibc-compatible results at the edges (DESIGN.md C7 and section 6): what
// malloc(0), realloc(NULL, n), realloc(p, 0) return, NULL + ENOMEM for
// impossible sizes and overflowing products, EINVAL for bad alignments,
// errno kept by free and by posix_memalign, page rounding of pvalloc.
// The control run under plain glibc passes these checks too, except the
// EINVAL of aligned_alloc/memalign (glibc 2.36 rounds such alignments up;
// pattern-alloc rejects them, as C7 asks).
#include "common.h"

// Sizes the compiler must not see, so it neither warns about nor folds the calls.
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_two62 = (size_t)1 << 62;
static volatile size_t v_half = SIZE_MAX / 2;
// Called through these, a failed realloc does not look like a free to gcc's -Wuse-after-free.
static void *(*volatile realloc_v)(void *, size_t) = realloc;
static void *(*volatile reallocarray_v)(void *, size_t, size_t) = reallocarray;

static void expect_enomem(void *p, const char *call) {
    int e = errno;
    CHECK(p == NULL, "%s returned %p, expected NULL", call, p);
    CHECK(e == ENOMEM, "%s: errno %d (%s), expected ENOMEM", call, e, strerror(e));
    if (p) free(p);
}

static void expect_einval(void *p, const char *call) {
    int e = errno;
    CHECK(p == NULL, "%s returned %p, expected NULL", call, p);
    CHECK(e == EINVAL, "%s: errno %d (%s), expected EINVAL", call, e, strerror(e));
    if (p) free(p);
}

static void check_zero_sizes(void) {
    void *a = opaque(malloc(0)), *b = opaque(malloc(0));
    CHECK(a != NULL && b != NULL, "malloc(0) returned NULL (%p, %p)", a, b);
    CHECK(a != b, "two malloc(0) returned the same pointer %p", a);
    free(a);
    free(b);
    void *c = opaque(calloc(0, 16)), *d = opaque(calloc(16, 0));
    CHECK(c != NULL && d != NULL && c != d, "calloc(0, 16) = %p, calloc(16, 0) = %p: want two non-NULL blocks", c,
          d);
    free(c);
    free(d);
    void *p = NULL;
    int rc = posix_memalign(&p, 64, 0);
    CHECK(rc == 0, "posix_memalign(64, 0) returned %d", rc);
    free(p);
    void *v = opaque(valloc(0));
    CHECK(v != NULL, "valloc(0) returned NULL");
    free(v);
    void *m = opaque(memalign(32, 0));
    CHECK(m != NULL, "memalign(32, 0) returned NULL");
    free(m);
    free(NULL);
}

static void check_realloc_edges(void) {
    void *p = opaque(realloc(NULL, 100));
    REQUIRE(p != NULL, "realloc(NULL, 100) returned NULL");
    EXPECT_FRESH(p, 100, "realloc(NULL, 100) (as malloc)");
    // glibc: realloc(p, 0) frees p and returns NULL.
    void *q = realloc(p, 0);
    CHECK(q == NULL, "realloc(p, 0) returned %p, glibc returns NULL (and frees p)", q);
    if (q) free(q);
    p = opaque(realloc(NULL, 0));
    CHECK(p != NULL, "realloc(NULL, 0) returned NULL; as malloc(0) it returns a block");
    free(p);
    // A failed realloc leaves the block as it was.
    for (size_t size = 100; size <= 4 * MIB; size *= 200) {
        p = opaque(malloc(size));
        REQUIRE(p != NULL, "malloc(%zu) returned NULL", size);
        stamp(p, size, 7);
        errno = 0;
        char call[64];
        snprintf(call, sizeof call, "realloc(malloc(%zu), SIZE_MAX)", size);
        expect_enomem(realloc_v(p, v_size_max), call);
        errno = 0;
        snprintf(call, sizeof call, "realloc(malloc(%zu), 1 << 62)", size);
        expect_enomem(realloc_v(p, v_two62), call);
        EXPECT_STAMP(p, size, 7, "block of %zu after failed reallocs", size);
        errno = 0;
        expect_enomem(reallocarray_v(p, v_half, 3), "reallocarray(p, SIZE_MAX / 2, 3)");
        EXPECT_STAMP(p, size, 7, "block of %zu after a failed reallocarray", size);
        free(p);
    }
    errno = 0;
    expect_enomem(realloc(NULL, v_size_max), "realloc(NULL, SIZE_MAX)");
}

static void check_impossible_sizes(void) {
    errno = 0;
    expect_enomem(malloc(v_size_max), "malloc(SIZE_MAX)");
    errno = 0;
    expect_enomem(malloc(v_two62), "malloc(1 << 62)");
    errno = 0;
    expect_enomem(malloc(v_size_max - 4096), "malloc(SIZE_MAX - 4096)");
    errno = 0;
    expect_enomem(calloc(v_half, 3), "calloc(SIZE_MAX / 2, 3)");
    errno = 0;
    expect_enomem(calloc((size_t)1 << 40, opaque_size((size_t)1 << 40)), "calloc(1 << 40, 1 << 40)");
    errno = 0;
    expect_enomem(calloc(1, v_two62), "calloc(1, 1 << 62)");
    errno = 0;
    expect_enomem(reallocarray(NULL, v_half, 3), "reallocarray(NULL, SIZE_MAX / 2, 3)");
    errno = 0;
    expect_enomem(memalign(64, v_size_max), "memalign(64, SIZE_MAX)");
    errno = 0;
    expect_enomem(aligned_alloc(64, v_two62), "aligned_alloc(64, 1 << 62)");
    errno = 0;
    expect_enomem(valloc(v_size_max), "valloc(SIZE_MAX)");
    errno = 0;
    expect_enomem(pvalloc(v_size_max), "pvalloc(SIZE_MAX)");
    errno = 0;
    expect_enomem(pvalloc(v_size_max - 100), "pvalloc(SIZE_MAX - 100)");
}

// posix_memalign reports through its result and leaves errno alone.
static void check_posix_memalign_errors(void) {
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, (size_t)3 << 20};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)0x1234;
        errno = 77;
        int rc = posix_memalign(&p, bad[i], 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu, 64) returned %d, expected EINVAL", bad[i], rc);
        CHECK(errno == 77, "posix_memalign(align %zu, 64) changed errno to %d", bad[i], errno);
        if (rc == 0) free(p);
    }
    const size_t huge[] = {v_size_max, v_two62, v_size_max - 8192};
    for (size_t i = 0; i < 3; i++) {
        void *p = (void *)0x1234;
        errno = 77;
        int rc = posix_memalign(&p, 64, huge[i]);
        CHECK(rc == ENOMEM, "posix_memalign(64, %zu) returned %d, expected ENOMEM", huge[i], rc);
        // glibc 2.36 sets errno here as well; DESIGN.md section 6 says it is left alone.
        if (!glibc_mode) CHECK(errno == 77, "posix_memalign(64, %zu) changed errno to %d", huge[i], errno);
        if (rc == 0) free(p);
    }
    // Good alignments succeed and keep errno too.
    for (size_t align = sizeof(void *); align <= 2 * MIB; align *= 2) {
        void *p = NULL;
        errno = 77;
        int rc = posix_memalign(&p, align, 10);
        CHECK(rc == 0 && p != NULL && (uintptr_t)p % align == 0, "posix_memalign(%zu, 10) = %d, %p", align, rc, p);
        CHECK(errno == 77, "posix_memalign(%zu, 10) changed errno to %d", align, errno);
        if (rc == 0) free(p);
    }
}

// C7: alignments that are not powers of two are refused by aligned_alloc and
// memalign too (glibc 2.36 rounds them up instead, so not in the control run).
static void check_bad_alignments(void) {
    static const size_t bad[] = {3, 24, 48, 100, 4097, (size_t)3 << 20};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char call[64];
        errno = 0;
        snprintf(call, sizeof call, "aligned_alloc(%zu, %zu)", bad[i], bad[i] * 4);
        expect_einval(aligned_alloc(opaque_size(bad[i]), bad[i] * 4), call);
        errno = 0;
        snprintf(call, sizeof call, "memalign(%zu, 100)", bad[i]);
        expect_einval(memalign(opaque_size(bad[i]), 100), call);
    }
}

// Alignments below a pointer's size are fine for aligned_alloc and memalign
// (memalign(1, n) is malloc(n)); sizes that are not multiples of the alignment too.
static void check_small_alignments(void) {
    static const size_t ok[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        void *a = opaque(aligned_alloc(ok[i], 40));
        void *m = opaque(memalign(ok[i], 40));
        CHECK(a != NULL && (uintptr_t)a % ok[i] == 0, "aligned_alloc(%zu, 40) = %p", ok[i], a);
        CHECK(m != NULL && (uintptr_t)m % ok[i] == 0, "memalign(%zu, 40) = %p", ok[i], m);
        if (a) EXPECT_FRESH(a, 40, "aligned_alloc(%zu, 40)", ok[i]);
        if (m) EXPECT_FRESH(m, 40, "memalign(%zu, 40)", ok[i]);
        free(a);
        free(m);
    }
    void *p = opaque(aligned_alloc(64, 100));
    CHECK(p != NULL && (uintptr_t)p % 64 == 0, "aligned_alloc(64, 100) = %p (glibc accepts any size)", p);
    if (p) EXPECT_FRESH(p, 100, "aligned_alloc(64, 100)");
    free(p);
}

static void check_free_keeps_errno(void) {
    static const size_t sizes[] = {1, 100, 3000, 32768, 40000, 100000, 600000, MIB, 4 * MIB, 70 * MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = opaque(malloc(sizes[i]));
        REQUIRE(p != NULL, "malloc(%zu) returned NULL", sizes[i]);
        dirty(p, sizes[i], 1);
        errno = 1234;
        free(p);
        CHECK(errno == 1234, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    // Many large blocks freed together: the large cache overflows and unmaps.
    void *blocks[40];
    for (int i = 0; i < 40; i++) {
        blocks[i] = opaque(malloc(MIB + (size_t)i * 65536));
        REQUIRE(blocks[i] != NULL, "malloc(%zu) returned NULL", MIB + (size_t)i * 65536);
    }
    for (int i = 0; i < 40; i++) {
        errno = 1234;
        free(blocks[i]);
        CHECK(errno == 1234, "free of large block %d changed errno to %d", i, errno);
    }
    errno = 1234;
    free(NULL);
    CHECK(errno == 1234, "free(NULL) changed errno to %d", errno);
    void *r = opaque(malloc(5000));
    REQUIRE(r != NULL, "malloc(5000) returned NULL");
    r = realloc(r, 0);
    CHECK(r == NULL, "realloc(p, 0) returned %p", r);
}

static void check_page_rounding(void) {
    long page = sysconf(_SC_PAGESIZE);
    REQUIRE(page == 4096, "page size %ld", page);
    static const size_t asked[] = {0, 1, 100, 4095, 4096, 4097, 10000, 100000};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        void *p = opaque(pvalloc(asked[i]));
        REQUIRE(p != NULL, "pvalloc(%zu) returned NULL", asked[i]);
        // pvalloc(0) is one page (glibc 2.36 gives a minimal chunk instead).
        size_t want = asked[i] == 0 && glibc_mode ? 0 : round_up_(asked[i] ? asked[i] : 1, 4096);
        CHECK((uintptr_t)p % 4096 == 0, "pvalloc(%zu) = %p is not page aligned", asked[i], p);
        CHECK(malloc_usable_size(p) >= want, "pvalloc(%zu): usable %zu, expected at least %zu", asked[i],
              malloc_usable_size(p), want);
        EXPECT_FRESH(p, want, "pvalloc(%zu)", asked[i]);
        dirty(p, malloc_usable_size(p), 3);
        free(p);
        void *v = opaque(valloc(asked[i]));
        REQUIRE(v != NULL, "valloc(%zu) returned NULL", asked[i]);
        CHECK((uintptr_t)v % 4096 == 0, "valloc(%zu) = %p is not page aligned", asked[i], v);
        EXPECT_FRESH(v, asked[i], "valloc(%zu)", asked[i]);
        free(v);
    }
}

static void check_usable_sizes(void) {
    for (size_t size = 1; size <= 8 * MIB; size = size * 2 + 1) {
        void *p = opaque(malloc(size));
        REQUIRE(p != NULL, "malloc(%zu) returned NULL", size);
        size_t usable = malloc_usable_size(p);
        CHECK(usable >= size, "malloc(%zu): usable %zu", size, usable);
        // Every usable byte is the program's to write.
        memset(p, 0x42, usable);
        opaque(p);
        void *q = opaque(malloc(size));
        REQUIRE(q != NULL, "malloc(%zu) returned NULL", size);
        EXPECT_FRESH(q, size, "malloc(%zu) next to a block written over its whole usable size", size);
        free(q);
        free(p);
    }
}

int main(void) {
    setup_expectations();
    check_zero_sizes();
    check_realloc_edges();
    check_impossible_sizes();
    check_posix_memalign_errors();
    if (!glibc_mode) check_bad_alignments();
    check_small_alignments();
    check_free_keeps_errno();
    check_page_rounding();
    check_usable_sizes();
    return finish("compat");
}
