// fork while other threads allocate (DESIGN.md section 2: a child of a
// multi-threaded parent must be able to allocate). Each child allocates small
// and large blocks, checks that they read as the pattern, frees a block the
// parent made before the fork, starts a thread, and leaves with exit() (so
// atexit handlers, the allocator's too, run). An alarm turns a deadlock in
// the child into a SIGALRM death that the parent reports.
// Usage: fork [forks]
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "common.h"

#define BUSY_THREADS 2
#define CHILD_ALARM_S 10

static volatile int stop;

static void *busy(void *arg) {
    unsigned id = (unsigned)(intptr_t)arg;
    void *held[64] = {0};
    unsigned long n = 0;
    while (!stop) {
        size_t size = n % 23 == 0 ? 40000 + n % 300000 : 1 + (n * 97 + id * 13) % 4000;
        unsigned slot = (unsigned)(n % 64);
        free(held[slot]);
        unsigned char *p = (unsigned char *)opaque(malloc(size));
        REQUIRE(p != NULL, "busy thread: malloc(%zu) returned NULL", size);
        if (n % 16 == 0) EXPECT_FRESH(p, size, "busy thread: malloc(%zu)", size);
        p[0] = 1;
        p[size - 1] = 2;
        held[slot] = p;
        n++;
    }
    for (int i = 0; i < 64; i++) free(held[i]);
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        void *p = opaque(malloc(100 + (size_t)i * 50));
        REQUIRE(p != NULL, "thread in child: malloc returned NULL");
        EXPECT_FRESH(p, 100 + (size_t)i * 50, "thread in child: malloc(%d)", 100 + i * 50);
        free(p);
    }
    return NULL;
}

static void child(int iteration, unsigned char *parent_block, size_t parent_size) {
    alarm(CHILD_ALARM_S);
    static const size_t sizes[] = {1, 24, 100, 1000, 3000, 8000, 20000, 32768, 40000, 100000, MIB, 3 * MIB};
    void *held[200];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 200; i++) {
            size_t size = i < 188 ? 1 + (size_t)((i * 37 + round) % 3000) : sizes[i - 188];
            held[i] = opaque(malloc(size));
            REQUIRE(held[i] != NULL, "child %d: malloc(%zu) returned NULL", iteration, size);
            EXPECT_FRESH(held[i], size, "child %d round %d: malloc(%zu)", iteration, round, size);
            dirty(held[i], size, 0x33);
        }
        for (int i = 0; i < 200; i++) free(held[i]);
    }
    void *z = opaque(calloc(1, 200000));
    REQUIRE(z != NULL, "child %d: calloc returned NULL", iteration);
    EXPECT_ZERO(z, 200000, "child %d: calloc(1, 200000)", iteration);
    free(z);
    EXPECT_STAMP(parent_block, parent_size, (unsigned long)iteration, "child %d: block made before the fork",
                 iteration);
    free(parent_block);
    if (iteration % 5 == 0) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, child_thread, NULL) == 0, "child %d: pthread_create failed", iteration);
        pthread_join(t, NULL);
    }
    exit(failures ? 1 : 0);
}

int main(int argc, char **argv) {
    setup_expectations();
    int forks = argc > 1 ? atoi(argv[1]) : 50;
    pthread_t t[BUSY_THREADS];
    for (int i = 0; i < BUSY_THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, busy, (void *)(intptr_t)i) == 0, "pthread_create failed");
    usleep(2000);
    int ok = 0, hung = 0, other = 0;
    for (int i = 0; i < forks; i++) {
        size_t parent_size = i % 2 ? 5000 : 150000;
        unsigned char *block = (unsigned char *)opaque(malloc(parent_size));
        REQUIRE(block != NULL, "malloc(%zu) returned NULL", parent_size);
        stamp(block, parent_size, (unsigned long)i);
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork failed: %s", strerror(errno));
        if (pid == 0) child(i, block, parent_size);
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid failed");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            hung++;
            FAIL("child %d deadlocked (killed by its %d s alarm)", i, CHILD_ALARM_S);
        } else {
            other++;
            if (WIFEXITED(status))
                FAIL("child %d exited with status %d", i, WEXITSTATUS(status));
            else
                FAIL("child %d died of signal %d", i, WTERMSIG(status));
        }
        EXPECT_STAMP(block, parent_size, (unsigned long)i, "parent: its block after fork %d", i);
        free(block);
    }
    stop = 1;
    for (int i = 0; i < BUSY_THREADS; i++) pthread_join(t[i], NULL);
    printf("fork: %d forks, %d children ok, %d deadlocked, %d failed otherwise\n", forks, ok, hung, other);
    return finish("fork");
}
