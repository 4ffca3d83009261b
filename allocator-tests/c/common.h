// Shared by the C and C++ programs that allocator-tests/tests/preload_*.rs run
// under LD_PRELOAD=libpattern_alloc.so.
//
// Environment (set by the Rust side, src/preload.rs):
//   EXPECT_FILL=0xNN   what unwritten bytes of a fresh block read as (default 0xaa);
//   EXPECT_FILL=class  class_patterns=1: one byte per class, 0xA0 + class;
//   EXPECT_FREE_FILL=0xNN  free_fill is on: a freed small block reads as it past byte 16;
//   EXPECT_GLIBC=1     running under plain glibc (control run): skip every check
//                      that only pattern-alloc promises (contents, strict EINVAL);
//   PA_LIB=path        the preloaded library: exported names must resolve to it.
//
// A failed check prints one line "FAIL file:line: reason" on stderr and the
// program goes on, so one run shows every failed check (the first 40 are
// printed); finish() makes the exit status 1. Checks that make going on
// pointless (a NULL block) exit at once.
//
// Fresh memory is uninitialized to the compiler (DESIGN.md section 9): it is
// read only through volatile pointers, and allocation results pass through
// opaque() so no allocation/free pair can be elided or folded.
#ifndef PA_COMMON_H
#define PA_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE_SIZE_ 4096UL
#define KIB 1024UL
#define MIB (1024UL * 1024UL)
#define MAX_REPORTED 40
// Not every program uses every helper.
#define PA_FN static inline __attribute__((unused))

static int failures;
static unsigned long checks;
static int glibc_mode;
static int class_mode;
static unsigned char fill_byte = 0xAA;
static int free_fill_on;
static unsigned char free_fill_byte;
// Class-pattern mode: which bytes fresh blocks read as, to see that classes differ.
static unsigned char seen_patterns[256];

PA_FN void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

PA_FN size_t opaque_size(size_t n) {
    __asm__ volatile("" : "+r"(n));
    return n;
}

// One line to stderr with a single write(2), so threads do not interleave.
PA_FN void emit_line(const char *prefix, const char *file, int line, const char *fmt, va_list ap) {
    char buf[600];
    int n = snprintf(buf, sizeof buf, "%s %s:%d: ", prefix, file, line);
    if (n < 0 || (size_t)n >= sizeof buf) n = 0;
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    if (m < 0) m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2) len = sizeof buf - 2;
    buf[len++] = '\n';
    ssize_t w = write(2, buf, len);
    (void)w;
}

__attribute__((format(printf, 3, 4))) PA_FN void fail_at(const char *file, int line, const char *fmt, ...) {
    int n = __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    if (n > MAX_REPORTED) return;
    va_list ap;
    va_start(ap, fmt);
    emit_line("FAIL", file, line, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4), noreturn)) PA_FN void fatal_at(const char *file, int line, const char *fmt,
                                                                      ...) {
    va_list ap;
    va_start(ap, fmt);
    emit_line("FAIL (fatal)", file, line, fmt, ap);
    va_end(ap);
    _exit(1);
}

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define FATAL(...) fatal_at(__FILE__, __LINE__, __VA_ARGS__)
#define COUNT_CHECK() __atomic_add_fetch(&checks, 1, __ATOMIC_RELAXED)
#define CHECK(cond, ...)                  \
    do {                                  \
        COUNT_CHECK();                    \
        if (!(cond)) FAIL(__VA_ARGS__);   \
    } while (0)
#define REQUIRE(cond, ...)                \
    do {                                  \
        COUNT_CHECK();                    \
        if (!(cond)) FATAL(__VA_ARGS__);  \
    } while (0)

PA_FN unsigned char parse_byte_env(const char *name, const char *value) {
    char *end;
    unsigned long v = strtoul(value, &end, 0);
    if (*value == 0 || *end != 0 || v > 255) FATAL("%s=%s is not a byte", name, value);
    return (unsigned char)v;
}

// Reads the EXPECT_* variables; call first in main (and in a dlopened library's users).
PA_FN void setup_expectations(void) {
    const char *g = getenv("EXPECT_GLIBC");
    glibc_mode = g && strcmp(g, "1") == 0;
    const char *f = getenv("EXPECT_FILL");
    if (f && strcmp(f, "class") == 0)
        class_mode = 1;
    else if (f)
        fill_byte = parse_byte_env("EXPECT_FILL", f);
    const char *ff = getenv("EXPECT_FREE_FILL");
    if (ff) {
        free_fill_on = 1;
        free_fill_byte = parse_byte_env("EXPECT_FREE_FILL", ff);
    }
}

// Index of the first byte of [p, p + len) that is not `want`, or -1.
PA_FN long first_mismatch(const volatile unsigned char *p, size_t len, unsigned char want) {
    size_t i = 0;
    uint64_t word = 0x0101010101010101ULL * want;
    while (i < len && ((uintptr_t)(p + i) & 7) != 0) {
        if (p[i] != want) return (long)i;
        i++;
    }
    while (i + 8 <= len) {
        if (*(const volatile uint64_t *)(p + i) != word) {
            for (size_t j = i; j < i + 8; j++)
                if (p[j] != want) return (long)j;
        }
        i += 8;
    }
    for (; i < len; i++)
        if (p[i] != want) return (long)i;
    return -1;
}

PA_FN size_t count_mismatches(const volatile unsigned char *p, size_t len, unsigned char want) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += p[i] != want;
    return n;
}

// Checks that [p, p + len) reads as `want`; returns 1 if it does.
__attribute__((format(printf, 6, 7))) PA_FN int expect_bytes_at(const char *file, int line, const void *p,
                                                                size_t len, unsigned char want, const char *fmt,
                                                                ...) {
    const volatile unsigned char *v = (const volatile unsigned char *)opaque((void *)p);
    COUNT_CHECK();
    long i = first_mismatch(v, len, want);
    if (i < 0) return 1;
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char dump[64] = "";
    for (size_t j = (size_t)i, k = 0; j < len && k < 8; j++, k++)
        snprintf(dump + 3 * k, sizeof dump - 3 * k, "%02x ", v[j]);
    fail_at(file, line, "%s: byte %ld of %zu at %p reads 0x%02x, expected 0x%02x (%zu bytes differ; from there: %s)",
            what, i, len, (const void *)v, v[i], want, count_mismatches(v, len, want), dump);
    return 0;
}
#define EXPECT_BYTES(p, len, want, ...) expect_bytes_at(__FILE__, __LINE__, (p), (len), (want), __VA_ARGS__)

// Class-pattern mode: the byte a block reads as must be one of the table's
// (0xA0 + class, 41 rows) and the same over the whole block.
PA_FN unsigned char expected_fill_of(const void *p, size_t len) {
    if (!class_mode || len == 0) return fill_byte;
    unsigned char b = *(const volatile unsigned char *)opaque((void *)p);
    if (b < 0xA0 || b > 0xA0 + 40) return 0xA0; // reported as a mismatch at byte 0
    seen_patterns[b] = 1;
    return b;
}

// malloc_usable_size(p) into *usable; a failed check (and 0) when it is below `size`.
PA_FN int usable_at_least(const char *file, int line, const void *p, size_t size, const char *what, size_t *usable) {
    *usable = malloc_usable_size((void *)p);
    COUNT_CHECK();
    if (*usable >= size) return 1;
    fail_at(file, line, "%s: malloc_usable_size is %zu, below the %zu requested", what, *usable, size);
    return 0;
}

// A fresh block of `size` from any allocation function: it has at least
// `size` usable bytes, and all of them read as the pattern (C1).
#define EXPECT_FRESH(p, size, ...) expect_fresh_at(__FILE__, __LINE__, (p), (size), __VA_ARGS__)
__attribute__((format(printf, 5, 6))) PA_FN int expect_fresh_at(const char *file, int line, const void *p,
                                                                size_t size, const char *fmt, ...) {
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t usable;
    if (!usable_at_least(file, line, p, size, what, &usable)) return 0;
    if (glibc_mode) return 1;
    return expect_bytes_at(file, line, p, usable, expected_fill_of(p, usable), "%s (usable %zu)", what, usable);
}

// [p + from, p + usable) reads as the pattern: growth by realloc (C3).
#define EXPECT_FRESH_TAIL(p, from, ...) expect_fresh_tail_at(__FILE__, __LINE__, (p), (from), __VA_ARGS__)
__attribute__((format(printf, 5, 6))) PA_FN int expect_fresh_tail_at(const char *file, int line, const void *p,
                                                                     size_t from, const char *fmt, ...) {
    if (glibc_mode) return 1;
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t usable = malloc_usable_size((void *)p);
    const unsigned char *tail = (const unsigned char *)p + from;
    if (usable <= from) return 1;
    if (class_mode) {
        // realloc in C knows only the old block's usable size, not what was
        // asked for, so it copies the unwritten end of the old block too: the
        // tail is the old class's byte up to there, then the new class's.
        const volatile unsigned char *v = (const volatile unsigned char *)opaque((void *)tail);
        size_t len = usable - from, split = 0;
        while (split < len && v[split] == v[0]) split++;
        if (!expect_bytes_at(file, line, tail, split, expected_fill_of(tail, split),
                             "%s: bytes %zu..%zu past the old size", what, from, from + split))
            return 0;
        return expect_bytes_at(file, line, tail + split, len - split, expected_fill_of(tail + split, len - split),
                               "%s: bytes %zu..%zu past the old size", what, from + split, usable);
    }
    return expect_bytes_at(file, line, tail, usable - from, expected_fill_of(tail, usable - from),
                           "%s: bytes %zu..%zu past the old size", what, from, usable);
}

// Zeros over the whole usable size (C2).
#define EXPECT_ZERO(p, size, ...) expect_zero_at(__FILE__, __LINE__, (p), (size), __VA_ARGS__)
__attribute__((format(printf, 5, 6))) PA_FN int expect_zero_at(const char *file, int line, const void *p,
                                                               size_t size, const char *fmt, ...) {
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t usable;
    if (!usable_at_least(file, line, p, size, what, &usable)) return 0;
    // glibc's calloc promises only the requested size.
    return expect_bytes_at(file, line, p, glibc_mode ? size : usable, 0, "%s (usable %zu)", what, usable);
}

// A byte other than the pattern, for writes that must not survive a free.
PA_FN unsigned char dirty_byte(unsigned k) {
    unsigned char b = (unsigned char)(0x11 + 0x22 * (k % 7));
    if (b == fill_byte || (b >= 0xA0 && b <= 0xA0 + 40) || b == 0) b = 0x3C;
    return b;
}

// memset, kept even right before a free (the asm tells the compiler the bytes are used).
PA_FN void dirty(void *p, size_t len, unsigned char byte) {
    memset(p, byte, len);
    opaque(p);
}

PA_FN unsigned char stamp_byte(unsigned long seed, size_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ULL + (i >> 3) * 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 29;
    return (unsigned char)(z >> (8 * (i & 7)));
}

// Writes data that identifies (seed, offset), so a moved or clobbered byte is seen.
PA_FN void stamp(void *p, size_t len, unsigned long seed) {
    unsigned char *c = (unsigned char *)p;
    for (size_t i = 0; i < len; i++) c[i] = stamp_byte(seed, i);
    opaque(p);
}

#define EXPECT_STAMP(p, len, seed, ...) expect_stamp_at(__FILE__, __LINE__, (p), (len), (seed), __VA_ARGS__)
__attribute__((format(printf, 6, 7))) PA_FN int expect_stamp_at(const char *file, int line, const void *p,
                                                                size_t len, unsigned long seed, const char *fmt,
                                                                ...) {
    const volatile unsigned char *v = (const volatile unsigned char *)opaque((void *)p);
    COUNT_CHECK();
    for (size_t i = 0; i < len; i++) {
        if (v[i] != stamp_byte(seed, i)) {
            char what[300];
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(what, sizeof what, fmt, ap);
            va_end(ap);
            fail_at(file, line, "%s: byte %zu of %zu at %p reads 0x%02x, the program wrote 0x%02x", what, i, len,
                    (const void *)v, v[i], stamp_byte(seed, i));
            return 0;
        }
    }
    return 1;
}

// Under LD_PRELOAD the library must be first in the global scope: the name
// resolves to the library's own definition. Returns the address (NULL if the
// name is not defined anywhere).
PA_FN void *expect_ours(const char *name) {
    void *global = dlsym(RTLD_DEFAULT, name);
    if (glibc_mode) return global;
    const char *lib = getenv("PA_LIB");
    if (!lib) FATAL("PA_LIB is not set");
    void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    if (!h) FATAL("%s is not loaded in this process (LD_PRELOAD not in effect?): %s", lib, dlerror());
    void *own = dlsym(h, name);
    CHECK(own != NULL, "%s: the library does not define it", name);
    CHECK(global == own, "%s resolves to %p, not to the library's %p", name, global, own);
    dlclose(h);
    return global;
}

PA_FN int finish(const char *name) {
    if (failures) {
        printf("%s: %d of %lu checks FAILED\n", name, failures, checks);
        fflush(stdout);
        return 1;
    }
    printf("%s: all %lu checks passed%s\n", name, checks, glibc_mode ? " (glibc control run)" : "");
    fflush(stdout);
    return 0;
}

PA_FN size_t round_up_(size_t x, size_t to) {
    return (x + to - 1) / to * to;
}

#endif
