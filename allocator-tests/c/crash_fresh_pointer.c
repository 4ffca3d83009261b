// The crash handler's test program (tests/cli_crash.rs): reads a pointer from
// a fresh heap block and dereferences it. Under pattern-alloc the pointer is
// the pattern (0xaaaa... by default, non-canonical on x86_64): SIGSEGV.
// Usage: crash_fresh_pointer SIZE [main|thread|raise]
//   main    fault on the main thread (the one that installed the alternate stack);
//   thread  fault on a thread created later (no alternate stack of ours);
//   raise   no fault: the program sends itself SIGSEGV with kill().
#include <pthread.h>
#include <signal.h>

#include "common.h"

static size_t block_size = 64;

__attribute__((noinline)) static void *follow_fresh_pointer(void *unused) {
    (void)unused;
    void **block = opaque(malloc(block_size));
    int *pointer = ((void *volatile *)block)[0];
    printf("pointer read from fresh memory: %p\n", (void *)pointer);
    fflush(stdout);
    return (void *)(long)*(volatile int *)pointer;
}

int main(int argc, char **argv) {
    block_size = argc > 1 ? (size_t)atol(argv[1]) : 64;
    const char *where = argc > 2 ? argv[2] : "main";
    free(opaque(malloc(16)));  // initialize the library (and the handler) on the main thread
    if (!strcmp(where, "thread")) {
        pthread_t thread;
        pthread_create(&thread, NULL, follow_fresh_pointer, NULL);
        pthread_join(thread, NULL);
    } else if (!strcmp(where, "raise")) {
        kill(getpid(), SIGSEGV);
    } else {
        follow_fresh_pointer(NULL);
    }
    printf("survived\n");
    return 0;
}
