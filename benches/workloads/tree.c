/* Binary trees: build a full tree of 24-byte nodes (depth 15, 64k nodes),
 * walk it to check every node, tear it down; repeated. Each thread builds
 * its own trees. */
#include "common.h"

#define DEPTH 15

struct node {
    struct node *left, *right;
    uint64_t value;
};

static struct node *build(unsigned depth, uint64_t value) {
    struct node *n = checked_malloc(sizeof(*n));
    n->value = value;
    if (depth == 0) {
        n->left = n->right = NULL;
    } else {
        n->left = build(depth - 1, 2 * value);
        n->right = build(depth - 1, 2 * value + 1);
    }
    return n;
}

static uint64_t check(const struct node *n, uint64_t value) {
    if (n->value != value)
        die("tree: a node lost its contents");
    if (!n->left)
        return 1;
    return 1 + check(n->left, 2 * value) + check(n->right, 2 * value + 1);
}

static void teardown(struct node *n) {
    if (n->left) {
        teardown(n->left);
        teardown(n->right);
    }
    free(n);
}

static void *worker(void *arg) {
    unsigned index = (unsigned)(uintptr_t)arg;
    uint64_t trees = workload_share(12, index);
    uint64_t nodes = 0;
    for (uint64_t t = 0; t < trees; t++) {
        struct node *root = build(DEPTH, 1);
        nodes += check(root, 1);
        teardown(root);
    }
    workload_sink += nodes;
    return NULL;
}

int main(int argc, char **argv) {
    workload_args(argc, argv);
    run_threads(workload_threads, worker);
    return 0;
}
