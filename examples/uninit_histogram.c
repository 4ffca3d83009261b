/*
 * A word-length histogram with a classic bug: the count table comes from
 * malloc and is cleared with memset(table, 0, MAX_LENGTH) -- bytes, not
 * counters -- so only the first MAX_LENGTH / sizeof(unsigned) buckets start
 * at zero. Under glibc the table is fresh memory from the top of the heap,
 * which happens to be zeros, so the output is right and nothing looks wrong.
 * Under pattern-alloc the uncleared buckets start at the pattern, and
 * `pattern-alloc hunt` sees the output change with it.
 *
 * Build: cc -O2 -o uninit_histogram examples/uninit_histogram.c
 * Hunt:  target/release/pattern-alloc hunt -- ./uninit_histogram
 *
 * The table is made in a function of its own that is never inlined, so the
 * optimizer cannot see that the counters it later reads were never written
 * (to a compiler that read is undefined, and it could fold it away).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LENGTH 16

static const char TEXT[] =
    "It was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
    "incredulity, it was the season of Light, it was the season of Darkness, it was "
    "the spring of hope, it was the winter of despair.";

__attribute__((noinline)) static unsigned *new_table(void) {
    unsigned *table = malloc(MAX_LENGTH * sizeof *table);
    if (table == NULL) {
        perror("malloc");
        exit(2);
    }
    memset(table, 0, MAX_LENGTH); /* BUG: should be MAX_LENGTH * sizeof *table */
    return table;
}

__attribute__((noinline)) static void count_words(unsigned *table, const char *text) {
    size_t length = 0;
    for (const char *c = text;; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')) {
            length++;
            continue;
        }
        if (length > 0) {
            table[length < MAX_LENGTH ? length : MAX_LENGTH - 1]++;
        }
        length = 0;
        if (*c == '\0') {
            break;
        }
    }
}

int main(void) {
    unsigned *table = new_table();
    count_words(table, TEXT);
    unsigned total = 0;
    for (size_t length = 1; length < MAX_LENGTH; length++) {
        if (table[length] != 0) {
            printf("%2zu letters: %u\n", length, table[length]);
        }
        total += table[length];
    }
    printf("%u words\n", total);
    free(table);
    return 0;
}
