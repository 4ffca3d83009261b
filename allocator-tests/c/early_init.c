// The allocator's first calls come from another library's constructor and
// from threads it started before main (early_lib.c, preloaded ahead of
// libpattern_alloc.so; the program finds early_join through the global scope).
// Usage: early_init   (LD_PRELOAD="libearly_lib.so libpattern_alloc.so")
#include "common.h"

int main(void) {
    setup_expectations();
    int (*join)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "early_join");
    REQUIRE(join != NULL, "early_join not found: libearly_lib.so is not preloaded");
    int failed = join();
    CHECK(failed == 0, "%d allocations or pattern checks failed in the early threads", failed);
    unsigned char *p = opaque(malloc(100));
    REQUIRE(p != NULL, "malloc after the early threads");
    EXPECT_FRESH(p, 100, "malloc after the early threads");
    free(p);
    return finish("early_init");
}
