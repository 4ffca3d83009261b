// Programs for the pattern-alloc tool's tests (tests/cli_*.rs), chosen by the
// first argument:
//   correct       allocates, writes and frees blocks of many sizes, prints results
//                 that depend only on what it wrote: hunt must find nothing;
//   stdin         reads all of stdin into a growing heap buffer and prints a
//                 summary of it: the same input must reach every run;
//   nondeterministic  prints its process id: differs from run to run by itself;
//   checked-pointer   reads a pointer from a fresh block and follows it when not
//                 NULL: exits 0 under fill=0x00, crashes under any other pattern;
//   spin          sleeps 1 ms as many times as a fresh block's 4th int says:
//                 returns at once under fill=0x00, runs for weeks under 0xaa;
//   fresh-byte    prints what byte 10 of a fresh 64-byte block reads as;
//   exit N        exits with status N after allocating.
#include "common.h"

static int correct(void) {
    unsigned long sum = 0;
    for (size_t size = 1; size <= 70000; size = size * 3 + 1) {
        unsigned char *block = opaque(malloc(size));
        if (!block) {
            return 2;
        }
        for (size_t i = 0; i < size; i++) {
            block[i] = (unsigned char)(i * 7 + size);
        }
        for (size_t i = 0; i < size; i++) {
            sum += ((volatile unsigned char *)block)[i];
        }
        unsigned char *zeroed = opaque(calloc(size, 1));
        sum += ((volatile unsigned char *)zeroed)[size - 1];
        free(zeroed);
        free(block);
        printf("size %zu: running sum %lu\n", size, sum);
    }
    return 0;
}

static int summarize_stdin(void) {
    size_t capacity = 16, length = 0, lines = 0;
    unsigned long hash = 5381;
    char *buffer = malloc(capacity);
    int c;
    while (buffer && (c = getchar()) != EOF) {
        if (length == capacity) {
            capacity *= 2;
            buffer = realloc(buffer, capacity);
            if (!buffer) {
                break;
            }
        }
        buffer[length++] = (char)c;
        lines += c == '\n';
    }
    if (!buffer) {
        return 2;
    }
    for (size_t i = 0; i < length; i++) {
        hash = hash * 33 + (unsigned char)buffer[i];
    }
    printf("stdin: %zu bytes, %zu lines, hash %lx\n", length, lines, hash);
    free(buffer);
    return 0;
}

__attribute__((noinline)) static void **fresh_block(size_t size) {
    return opaque(malloc(size));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "correct")) {
        return correct();
    }
    if (!strcmp(mode, "stdin")) {
        return summarize_stdin();
    }
    if (!strcmp(mode, "nondeterministic")) {
        void *p = opaque(malloc(32));
        printf("pid %ld\n", (long)getpid());
        free(p);
        return 0;
    }
    if (!strcmp(mode, "checked-pointer")) {
        void **block = fresh_block(64);
        int *pointer = ((void *volatile *)block)[1];
        if (pointer != NULL) {
            printf("following the pointer\n");
            fflush(stdout);
            return *(volatile int *)pointer;
        }
        printf("no pointer\n");
        return 0;
    }
    if (!strcmp(mode, "spin")) {
        unsigned *block = opaque(malloc(64));
        unsigned rounds = ((volatile unsigned *)block)[3];
        for (unsigned i = 0; i < rounds; i++) {
            usleep(1000);
        }
        printf("%u rounds\n", rounds);
        free(block);
        return 0;
    }
    if (!strcmp(mode, "fresh-byte")) {
        unsigned char *block = opaque(malloc(64));
        printf("0x%02x\n", ((volatile unsigned char *)block)[10]);
        free(block);
        return 0;
    }
    if (!strcmp(mode, "exit") && argc > 2) {
        free(opaque(malloc(100)));
        return atoi(argv[2]);
    }
    fprintf(stderr, "usage: hunt_subjects correct|stdin|nondeterministic|checked-pointer|spin|fresh-byte|exit N\n");
    return 2;
}
