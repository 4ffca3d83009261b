// Threads exist first; then the program dlopens many copies of a TLS library
// (libtls_lib.so under distinct names, prepared by the test) and every thread
// touches each copy's TLS while allocating. ld.so then calls malloc/free from
// inside TLS access (__tls_get_addr: new TLS blocks, DTV resizing), the path
// on which a malloc that itself used dynamic TLS could recurse forever. Two
// rounds: load all, unload all but one, load again.
// Usage: tls_dlopen DIR COUNT   (DIR holds tls_0.so .. tls_{COUNT-1}.so)
#include "common.h"

#include <pthread.h>

#define THREADS 8
#define MAX_LIBS 64

typedef unsigned long (*touch_fn)(unsigned long);

static const char *dir;
static int lib_count;
static void *handles[MAX_LIBS];
static touch_fn touches[MAX_LIBS];
static pthread_barrier_t loaded, touched;

static void load_all(void) {
    for (int i = 0; i < lib_count; i++) {
        if (handles[i]) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/tls_%d.so", dir, i);
        handles[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        REQUIRE(handles[i] != NULL, "dlopen(%s): %s", path, dlerror());
        touches[i] = (touch_fn)dlsym(handles[i], "tls_touch");
        REQUIRE(touches[i] != NULL, "dlsym(tls_touch) in %s", path);
    }
}

static void unload_all_but_first(void) {
    for (int i = 1; i < lib_count; i++) {
        REQUIRE(dlclose(handles[i]) == 0, "dlclose: %s", dlerror());
        handles[i] = NULL;
        touches[i] = NULL;
    }
}

static void *worker(void *arg) {
    unsigned long seed = (unsigned long)arg;
    for (int round = 0; round < 2; round++) {
        pthread_barrier_wait(&loaded);
        for (int i = 0; i < lib_count; i++) {
            unsigned char *p = opaque(malloc(24 + (seed + (unsigned long)i) % 3000));
            REQUIRE(p != NULL, "malloc in a worker");
            EXPECT_FRESH(p, 24, "worker %lu block before touching library %d", seed, i);
            unsigned long got = touches[i](seed + (unsigned long)i);
            CHECK(got >= 1, "tls_touch returned %lu", got);
            free(p);
        }
        pthread_barrier_wait(&touched);
    }
    return NULL;
}

int main(int argc, char **argv) {
    setup_expectations();
    REQUIRE(argc == 3, "usage: tls_dlopen DIR COUNT");
    dir = argv[1];
    lib_count = atoi(argv[2]);
    REQUIRE(lib_count > 0 && lib_count <= MAX_LIBS, "COUNT must be 1..%d", MAX_LIBS);
    pthread_barrier_init(&loaded, NULL, THREADS + 1);
    pthread_barrier_init(&touched, NULL, THREADS + 1);
    pthread_t threads[THREADS];
    for (unsigned long t = 0; t < THREADS; t++)
        REQUIRE(pthread_create(&threads[t], NULL, worker, (void *)t) == 0, "pthread_create");
    for (int round = 0; round < 2; round++) {
        load_all();
        pthread_barrier_wait(&loaded);
        pthread_barrier_wait(&touched);
        if (round == 0) unload_all_but_first();
    }
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    printf("%d threads touched %d TLS libraries twice\n", THREADS, lib_count);
    return finish("tls_dlopen");
}
