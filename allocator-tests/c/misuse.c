// Misuse through the C ABI, one per run: `misuse ACTION`. Prints
// "misuse=ACTION" (flushed) right before the misuse and "survived=1" if the
// process is still alive after it; the Rust side expects SIGABRT and one
// `pattern-alloc: ...` line (or glibc's message, for what goes to glibc).
#include <sys/resource.h>

#include "common.h"

// Using a freed pointer is the point of this program.
#pragma GCC diagnostic ignored "-Wuse-after-free"

static void about_to(const char *action) {
    // No core file for the expected abort.
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    printf("misuse=%s\n", action);
    fflush(stdout);
}

static void survived(void) {
    printf("survived=1\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) FATAL("usage: misuse ACTION");
    const char *a = argv[1];
    char *small = opaque(malloc(64));
    char *large = opaque(malloc(200000));
    REQUIRE(small && large, "malloc failed");
    if (!strcmp(a, "double-free-small")) {
        free(small);
        about_to(a);
        free(opaque(small));
    } else if (!strcmp(a, "double-free-large")) {
        free(large);
        about_to(a);
        free(opaque(large));
    } else if (!strcmp(a, "interior-small")) {
        about_to(a);
        free(opaque(small + 16));
    } else if (!strcmp(a, "interior-large-page")) {
        about_to(a);
        free(opaque(large + 8192));
    } else if (!strcmp(a, "interior-large-unaligned")) {
        about_to(a);
        free(opaque(large + 8));
    } else if (!strcmp(a, "realloc-freed-small")) {
        free(small);
        about_to(a);
        opaque(realloc(opaque(small), 100));
    } else if (!strcmp(a, "realloc-freed-large")) {
        free(large);
        about_to(a);
        opaque(realloc(opaque(large), 300000));
    } else if (!strcmp(a, "usable-size-freed-large")) {
        free(large);
        about_to(a);
        printf("usable=%zu\n", malloc_usable_size(opaque(large)));
    } else {
        FATAL("unknown action %s", a);
    }
    survived();
    return 0;
}
