// The C++ operators new and delete, called directly: plain, array, nothrow,
// sized and std::align_val_t variants (every one the library exports). Fresh
// blocks read as the pattern over their whole usable size (C1), aligned ones
// at every alignment from 8 bytes to 2 MiB; impossible sizes throw
// std::bad_alloc, or give nullptr for the nothrow forms; default-initialized
// objects and arrays read as the pattern where the constructor wrote nothing.
#include <cstddef>
#include <cstdint>
#include <new>

#include "common.h"

static const size_t sizes[] = {1, 8, 24, 100, 1000, 4096, 5000, 32768, 32769, 40000, 100000, MIB, 3 * MIB + 5};
static volatile size_t v_huge = SIZE_MAX / 2;
static volatile size_t v_two62 = (size_t)1 << 62;

enum Form { PLAIN, ARRAY, NOTHROW, ARRAY_NOTHROW };
static const char *form_name[] = {"operator new", "operator new[]", "operator new(nothrow)",
                                  "operator new[](nothrow)"};

static void *allocate(Form form, size_t size) {
    switch (form) {
    case PLAIN:
        return ::operator new(size);
    case ARRAY:
        return ::operator new[](size);
    case NOTHROW:
        return ::operator new(size, std::nothrow);
    default:
        return ::operator new[](size, std::nothrow);
    }
}

// Each way to give a block back, picked by `how`: plain, sized, nothrow.
static void release(Form form, void *p, size_t size, int how) {
    bool array = form == ARRAY || form == ARRAY_NOTHROW;
    if (how == 0) {
        if (array)
            ::operator delete[](p);
        else
            ::operator delete(p);
    } else if (how == 1) {
        if (array)
            ::operator delete[](p, size);
        else
            ::operator delete(p, size);
    } else {
        if (array)
            ::operator delete[](p, std::nothrow);
        else
            ::operator delete(p, std::nothrow);
    }
}

static void *allocate_aligned(Form form, size_t size, std::align_val_t al) {
    switch (form) {
    case PLAIN:
        return ::operator new(size, al);
    case ARRAY:
        return ::operator new[](size, al);
    case NOTHROW:
        return ::operator new(size, al, std::nothrow);
    default:
        return ::operator new[](size, al, std::nothrow);
    }
}

static void release_aligned(Form form, void *p, size_t size, std::align_val_t al, int how) {
    bool array = form == ARRAY || form == ARRAY_NOTHROW;
    if (how == 0) {
        if (array)
            ::operator delete[](p, al);
        else
            ::operator delete(p, al);
    } else if (how == 1) {
        if (array)
            ::operator delete[](p, size, al);
        else
            ::operator delete(p, size, al);
    } else {
        if (array)
            ::operator delete[](p, al, std::nothrow);
        else
            ::operator delete(p, al, std::nothrow);
    }
}

static void check_plain_forms() {
    for (int f = 0; f < 4; f++) {
        Form form = (Form)f;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t size = sizes[s];
            for (int round = 0; round < 3; round++) {
                void *p = opaque(allocate(form, size));
                REQUIRE(p != nullptr, "%s(%zu) returned nullptr", form_name[f], size);
                CHECK((uintptr_t)p % 16 == 0, "%s(%zu) = %p is not 16-byte aligned", form_name[f], size, p);
                EXPECT_FRESH(p, size, "%s(%zu) round %d", form_name[f], size, round);
                dirty(p, malloc_usable_size(p), dirty_byte((unsigned)round));
                release(form, p, size, round);
            }
        }
    }
}

static void check_aligned_forms() {
    for (int f = 0; f < 4; f++) {
        Form form = (Form)f;
        for (size_t align = 8; align <= 2 * MIB; align *= 2) {
            std::align_val_t al{align};
            const size_t asked[] = {1, align, align + 1, 5000, 100000};
            for (size_t s = 0; s < sizeof asked / sizeof asked[0]; s++) {
                size_t size = asked[s];
                for (int round = 0; round < 3; round++) {
                    void *p = opaque(allocate_aligned(form, size, al));
                    REQUIRE(p != nullptr, "%s(%zu, align %zu) returned nullptr", form_name[f], size, align);
                    CHECK((uintptr_t)p % align == 0, "%s(%zu, align %zu) = %p is not aligned", form_name[f], size,
                          align, p);
                    EXPECT_FRESH(p, size, "%s(%zu, align %zu) round %d", form_name[f], size, align, round);
                    dirty(p, malloc_usable_size(p), dirty_byte((unsigned)round));
                    release_aligned(form, p, size, al, round);
                }
            }
        }
    }
}

static void check_impossible_sizes() {
    const size_t huge[] = {v_huge, v_two62};
    for (size_t i = 0; i < 2; i++) {
        for (int f = 0; f < 2; f++) {
            bool threw = false;
            try {
                void *p = opaque(allocate((Form)f, huge[i]));
                FAIL("%s(%zu) returned %p instead of throwing", form_name[f], huge[i], p);
            } catch (const std::bad_alloc &) {
                threw = true;
            }
            CHECK(threw, "%s(%zu) did not throw std::bad_alloc", form_name[f], huge[i]);
            threw = false;
            try {
                void *p = opaque(allocate_aligned((Form)f, huge[i], std::align_val_t{4096}));
                FAIL("%s(%zu, align 4096) returned %p instead of throwing", form_name[f], huge[i], p);
            } catch (const std::bad_alloc &) {
                threw = true;
            }
            CHECK(threw, "%s(%zu, align 4096) did not throw std::bad_alloc", form_name[f], huge[i]);
        }
        for (int f = 2; f < 4; f++) {
            void *p = allocate((Form)f, huge[i]);
            CHECK(p == nullptr, "%s(%zu) returned %p, expected nullptr", form_name[f], huge[i], p);
            p = allocate_aligned((Form)f, huge[i], std::align_val_t{64});
            CHECK(p == nullptr, "%s(%zu, align 64) returned %p, expected nullptr", form_name[f], huge[i], p);
        }
    }
    // A new-expression of an impossible array.
    bool threw = false;
    try {
        unsigned char *a = new unsigned char[v_huge];
        FAIL("new unsigned char[%zu] returned %p", v_huge, (void *)a);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "new unsigned char[SIZE_MAX / 2] did not throw");
}

// Objects whose constructors write only some of their bytes.
struct Partly {
    int written;
    unsigned char untouched[60];
    Partly() : written(7) {}
};

struct alignas(256) Wide {
    unsigned char untouched[300];
    Wide() {}
};

struct Base {
    virtual ~Base() {}
    virtual int value() const { return 1; }
};

struct Derived : Base {
    long payload[20];
    Derived() { payload[0] = 42; }
    int value() const override { return (int)payload[0]; }
};

static void check_objects() {
    for (int round = 0; round < 3; round++) {
        Partly *p = new Partly;
        CHECK(p->written == 7, "Partly::written is %d", p->written);
        if (!glibc_mode)
            EXPECT_BYTES(p->untouched, sizeof p->untouched, expected_fill_of(p->untouched, 1),
                         "new Partly: bytes its constructor did not write");
        dirty(p->untouched, sizeof p->untouched, 0x11);
        delete p;

        Partly *arr = new Partly[100];
        for (int i = 0; i < 100; i++) CHECK(arr[i].written == 7, "Partly[%d].written is %d", i, arr[i].written);
        if (!glibc_mode)
            EXPECT_BYTES(arr[99].untouched, sizeof arr[99].untouched, expected_fill_of(arr[99].untouched, 1),
                         "new Partly[100]: bytes the constructors did not write");
        delete[] arr;

        Wide *w = new Wide;
        CHECK((uintptr_t)w % 256 == 0, "new Wide (alignas 256) = %p", (void *)w);
        EXPECT_FRESH(w, sizeof *w, "new Wide (alignas 256)");
        dirty(w, sizeof *w, 0x22);
        delete w;

        Wide *ws = new Wide[5];
        CHECK((uintptr_t)ws % 256 == 0, "new Wide[5] = %p", (void *)ws);
        delete[] ws;

        Base *b = new Derived;
        CHECK(b->value() == 42, "virtual call gave %d", b->value());
        delete b;

        // Default-initialized bytes are the pattern; value-initialized are zero.
        size_t n = round ? 100000 : 1000;
        unsigned char *raw = new unsigned char[n];
        EXPECT_FRESH(raw, n, "new unsigned char[%zu]", n);
        dirty(raw, n, 0x33);
        delete[] raw;
        unsigned char *zeroed = new unsigned char[n]();
        EXPECT_BYTES(zeroed, n, 0, "new unsigned char[%zu]()", n);
        delete[] zeroed;
    }
}

int main() {
    setup_expectations();
    static const char *names[] = {
        "_Znwm",
        "_Znam",
        "_ZnwmRKSt9nothrow_t",
        "_ZnamRKSt9nothrow_t",
        "_ZnwmSt11align_val_t",
        "_ZnamSt11align_val_t",
        "_ZnwmSt11align_val_tRKSt9nothrow_t",
        "_ZnamSt11align_val_tRKSt9nothrow_t",
        "_ZdlPv",
        "_ZdaPv",
        "_ZdlPvm",
        "_ZdaPvm",
        "_ZdlPvSt11align_val_t",
        "_ZdaPvSt11align_val_t",
        "_ZdlPvmSt11align_val_t",
        "_ZdaPvmSt11align_val_t",
        "_ZdlPvRKSt9nothrow_t",
        "_ZdaPvRKSt9nothrow_t",
        "_ZdlPvSt11align_val_tRKSt9nothrow_t",
        "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    };
    for (const char *name : names) expect_ours(name);
    check_plain_forms();
    check_aligned_forms();
    check_impossible_sizes();
    check_objects();
    // Blocks cross between the C and C++ faces: one heap behind both.
    void *p = opaque(::operator new(5000));
    free(p);
    p = opaque(malloc(5000));
    ::operator delete(p);
    return finish("cxx_operators");
}
