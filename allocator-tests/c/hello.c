// A small C program for the report options: `stats=1` must summarize its
// allocations on stderr at exit, `verbose=1` print the configuration at start.
// It makes a known number of allocations, so the counts can be checked.
// Usage: hello [allocations]
#include "common.h"

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    void *keep = NULL;
    for (int i = 0; i < n; i++) {
        void *p = opaque(malloc((size_t)(16 + i % 2000)));
        if (!p) {
            printf("malloc failed\n");
            return 1;
        }
        free(keep);
        keep = p;
    }
    // One block left live at exit, and one large one freed.
    void *big = opaque(malloc(200000));
    free(big);
    printf("hello: %d allocations\n", n);
    return 0;
}
