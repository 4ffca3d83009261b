// A library that dlopen.c loads: it allocates and frees with the malloc it
// binds to (the preloaded one, through the global scope), also from its
// constructor, before the program has called into it.
#include <stdlib.h>
#include <string.h>

static char *from_constructor;

__attribute__((constructor)) static void lib_init(void) {
    from_constructor = malloc(1000);
    if (from_constructor) strcpy(from_constructor, "made by the constructor");
}

// Handed over to the caller, who frees it.
char *lib_constructor_block(void) {
    char *p = from_constructor;
    from_constructor = NULL;
    return p;
}

void *lib_malloc(size_t n) {
    return malloc(n);
}

void *lib_calloc(size_t n, size_t m) {
    return calloc(n, m);
}

void *lib_realloc(void *p, size_t n) {
    return realloc(p, n);
}

void lib_free(void *p) {
    free(p);
}

char *lib_strdup(const char *s) {
    return strdup(s);
}

// What `malloc` means inside the library.
void *lib_malloc_address(void) {
    return (void *)&malloc;
}
