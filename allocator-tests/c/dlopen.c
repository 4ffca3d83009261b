// dlopen of a library that allocates and frees across the boundary: blocks
// the library mallocs are freed by the program, blocks the program mallocs
// are freed (and reallocated) by the library, strdup'd strings travel back,
// and a block from the library's constructor is freed after dlclose. Three
// load/unload cycles, one more with RTLD_DEEPBIND (glibc's blocks reach the
// preloaded free and realloc), then plain allocation goes on.
// Usage: dlopen path/to/libdl_lib.so
#include "common.h"

typedef void *(*alloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef char *(*strdup_fn)(const char *);
typedef char *(*block_fn)(void);
typedef void *(*addr_fn)(void);

static void *need(void *h, const char *name) {
    void *f = dlsym(h, name);
    REQUIRE(f != NULL, "dlsym(%s): %s", name, dlerror());
    return f;
}

// RTLD_DEEPBIND: the library's own malloc binds to glibc's (DESIGN.md section
// 6), so its blocks are foreign to the preloaded allocator, which must hand
// them back to glibc when the program frees or reallocates them. (The other
// direction, the library freeing the program's block, cannot work and is not
// tried; nor are page-aligned foreign blocks, which the library counts as its own.)
static void check_deepbind(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    REQUIRE(h != NULL, "dlopen(%s, RTLD_DEEPBIND): %s", path, dlerror());
    alloc_fn l_malloc = (alloc_fn)need(h, "lib_malloc");
    calloc_fn l_calloc = (calloc_fn)need(h, "lib_calloc");
    strdup_fn l_strdup = (strdup_fn)need(h, "lib_strdup");
    block_fn l_ctor = (block_fn)need(h, "lib_constructor_block");
    addr_fn l_addr = (addr_fn)need(h, "lib_malloc_address");
    if (!glibc_mode)
        CHECK(l_addr() != dlsym(RTLD_DEFAULT, "malloc"), "RTLD_DEEPBIND: the library's malloc is the preloaded one");
    free(l_ctor());
    for (size_t size = 10; size <= 100000; size *= 10) {
        unsigned char *a = (unsigned char *)opaque(l_malloc(size));
        REQUIRE(a != NULL, "deepbind lib_malloc(%zu) returned NULL", size);
        CHECK(malloc_usable_size(a) >= size, "deepbind: malloc_usable_size of glibc's block of %zu is %zu", size,
              malloc_usable_size(a));
        stamp(a, size, size);
        unsigned char *b = (unsigned char *)opaque(realloc(a, size * 3));
        REQUIRE(b != NULL, "deepbind: realloc of glibc's block of %zu returned NULL", size);
        EXPECT_STAMP(b, size, size, "deepbind: glibc's block of %zu after realloc in the program", size);
        free(b);
        void *z = opaque(l_calloc(size, 1));
        REQUIRE(z != NULL, "deepbind lib_calloc(%zu, 1) returned NULL", size);
        EXPECT_BYTES(z, size, 0, "deepbind: calloc(%zu, 1) of glibc", size);
        free(z);
    }
    for (int i = 0; i < 50; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "deepbind %d", i);
        char *s = l_strdup(buf);
        REQUIRE(s != NULL, "deepbind lib_strdup returned NULL");
        CHECK(strcmp(s, buf) == 0, "deepbind strdup gave \"%s\"", s);
        free(s);
    }
    REQUIRE(dlclose(h) == 0, "dlclose: %s", dlerror());
}

int main(int argc, char **argv) {
    setup_expectations();
    REQUIRE(argc > 1, "usage: dlopen path/to/libdl_lib.so");
    static const size_t sizes[] = {1, 16, 100, 1000, 5000, 32768, 40000, 300000, 2 * MIB};
    for (int cycle = 0; cycle < 3; cycle++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        REQUIRE(h != NULL, "dlopen(%s): %s", argv[1], dlerror());
        alloc_fn l_malloc = (alloc_fn)need(h, "lib_malloc");
        calloc_fn l_calloc = (calloc_fn)need(h, "lib_calloc");
        realloc_fn l_realloc = (realloc_fn)need(h, "lib_realloc");
        free_fn l_free = (free_fn)need(h, "lib_free");
        strdup_fn l_strdup = (strdup_fn)need(h, "lib_strdup");
        block_fn l_ctor = (block_fn)need(h, "lib_constructor_block");
        addr_fn l_addr = (addr_fn)need(h, "lib_malloc_address");
        void *ours = expect_ours("malloc");
        CHECK(l_addr() == ours, "malloc inside the library is %p, in the program %p", l_addr(), ours);

        char *ctor = l_ctor();
        REQUIRE(ctor != NULL, "the library's constructor could not allocate");
        CHECK(strcmp(ctor, "made by the constructor") == 0, "constructor block reads \"%.30s\"", ctor);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t size = sizes[i];
            // Library mallocs, program frees.
            void *a = opaque(l_malloc(size));
            REQUIRE(a != NULL, "lib_malloc(%zu) returned NULL", size);
            EXPECT_FRESH(a, size, "cycle %d: malloc(%zu) in the library", cycle, size);
            stamp(a, size, i);
            EXPECT_STAMP(a, size, i, "cycle %d: block of the library", cycle);
            free(a);
            void *z = opaque(l_calloc(1, size));
            REQUIRE(z != NULL, "lib_calloc(1, %zu) returned NULL", size);
            EXPECT_ZERO(z, size, "cycle %d: calloc(1, %zu) in the library", cycle, size);
            free(z);
            // Program mallocs, library reallocs and frees.
            void *b = opaque(malloc(size));
            REQUIRE(b != NULL, "malloc(%zu) returned NULL", size);
            EXPECT_FRESH(b, size, "cycle %d: malloc(%zu) in the program", cycle, size);
            stamp(b, size, i + 100);
            void *c = opaque(l_realloc(b, size * 2 + 1));
            REQUIRE(c != NULL, "lib_realloc(%zu -> %zu) returned NULL", size, size * 2 + 1);
            EXPECT_STAMP(c, size, i + 100, "cycle %d: realloc in the library, kept prefix", cycle);
            EXPECT_FRESH_TAIL(c, size, "cycle %d: realloc(%zu -> %zu) in the library", cycle, size, size * 2 + 1);
            l_free(c);
        }
        // strdup inside the library (libc's strdup calls malloc): freed here.
        char *names[50];
        for (int i = 0; i < 50; i++) {
            char buf[64];
            snprintf(buf, sizeof buf, "string %d of cycle %d", i, cycle);
            names[i] = l_strdup(buf);
            REQUIRE(names[i] != NULL, "lib_strdup returned NULL");
            CHECK(strcmp(names[i], buf) == 0, "strdup gave \"%s\", expected \"%s\"", names[i], buf);
            size_t len = strlen(buf) + 1;
            EXPECT_FRESH_TAIL(names[i], len, "past the end of strdup(\"%s\")", buf);
        }
        for (int i = 0; i < 50; i++) free(names[i]);
        REQUIRE(dlclose(h) == 0, "dlclose: %s", dlerror());
        // The library is gone; its block is still ours to free.
        CHECK(strcmp(ctor, "made by the constructor") == 0, "constructor block changed after dlclose");
        free(ctor);
    }
    check_deepbind(argv[1]);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = opaque(malloc(sizes[i]));
        REQUIRE(p != NULL, "malloc(%zu) returned NULL", sizes[i]);
        EXPECT_FRESH(p, sizes[i], "malloc(%zu) after dlclose", sizes[i]);
        free(p);
    }
    return finish("dlopen");
}
