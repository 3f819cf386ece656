/* blas.c -- OpenBLAS loaded at run time with the right kernels, threads,
 * build facts and the clock.
 *
 * Debian's OpenBLAS 0.3.21 picks its kernels once, in its constructor, and
 * mis-detects recent Xeons as "Prescott" (SSE3, ~6x slower sgemm). Linking
 * it normally would run that constructor before any code of ours, so the
 * library is dlopen'ed here after OPENBLAS_CORETYPE is set from the CPU's
 * features (unless the user set it). This works the same in the nnlua
 * executable, in a module loaded by stock lua5.4, and in a C host.
 *
 * Debian ships OpenBLAS built for pthreads (the default) and for OpenMP.
 * The OpenMP build shares libgomp's thread pool with the engine's own
 * parallel loops; with the pthread build the two pools spin against each
 * other on every op (measured here: an MLP training step 3x slower on 2
 * cores). So the OpenMP build is preferred when installed; NNLUA_BLAS
 * names another library. */
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef NN_BUILD_FLAGS
#define NN_BUILD_FLAGS "unknown"
#endif

enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *,
                         int, const float *, int, float, float *, int);

static struct {
    pthread_once_t once;
    int ok;
    char error[256];
    char choice[128];
    char library[256];
    void *handle;
    sgemm_fn sgemm;
    void (*set_threads)(int);
    char *(*corename)(void);
} blas = {.once = PTHREAD_ONCE_INIT};

static int num_threads;             /* read and written atomically */
static _Thread_local int team_size; /* what this thread's OpenMP ICV holds */

static const char *choose_coretype(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

static void load_blas(void) {
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user && *user) {
        snprintf(blas.choice, sizeof blas.choice,
                 "OPENBLAS_CORETYPE=%s set by the user", user);
    } else {
        const char *core = choose_coretype();
        if (core) {
            setenv("OPENBLAS_CORETYPE", core, 1);
            snprintf(blas.choice, sizeof blas.choice,
                     "%s chosen by nnlua from the CPU's features", core);
        } else {
            snprintf(blas.choice, sizeof blas.choice,
                     "OpenBLAS's own detection");
        }
    }
    static const char *const names[] = {
        "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "libopenblas.so.0", "libopenblas.so"};
    const char *user_lib = getenv("NNLUA_BLAS");
    if (user_lib && *user_lib) {
        blas.handle = dlopen(user_lib, RTLD_NOW | RTLD_LOCAL);
        snprintf(blas.library, sizeof blas.library, "%s", user_lib);
    }
    for (size_t i = 0; i < sizeof names / sizeof *names && !blas.handle; i++) {
        blas.handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        snprintf(blas.library, sizeof blas.library, "%s", names[i]);
    }
    if (!blas.handle) {
        snprintf(blas.error, sizeof blas.error,
                 "cannot load OpenBLAS (libopenblas.so.0): %s", dlerror());
        return;
    }
    *(void **)&blas.sgemm = dlsym(blas.handle, "cblas_sgemm");
    *(void **)&blas.set_threads = dlsym(blas.handle, "openblas_set_num_threads");
    *(void **)&blas.corename = dlsym(blas.handle, "openblas_get_corename");
    if (!blas.sgemm) {
        snprintf(blas.error, sizeof blas.error, "OpenBLAS has no cblas_sgemm");
        return;
    }
#ifdef _OPENMP
    __atomic_store_n(&num_threads, omp_get_max_threads(), __ATOMIC_RELAXED);
#else
    __atomic_store_n(&num_threads, 1, __ATOMIC_RELAXED);
#endif
    if (blas.set_threads) blas.set_threads(num_threads);
    blas.ok = 1;
}

int nn_init(void) {
    pthread_once(&blas.once, load_blas);
    return blas.ok ? 0 : nn_failed(0, "%s", blas.error);
}

/* One count for the whole process: omp_set_num_threads reaches only the
 * calling thread, so every thread that creates tensors (nn_empty) or enters
 * a binding catches up through nn_sync_threads. */
void nn_set_num_threads(int n) {
    if (n < 1) n = 1;
    nn_init();
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock); /* the count and OpenBLAS's change together */
    __atomic_store_n(&num_threads, n, __ATOMIC_RELAXED);
    if (blas.set_threads) blas.set_threads(n);
    pthread_mutex_unlock(&lock);
    nn_sync_threads();
}

int nn_get_num_threads(void) {
    nn_init();
    return __atomic_load_n(&num_threads, __ATOMIC_RELAXED);
}

void nn_sync_threads(void) {
    int n = __atomic_load_n(&num_threads, __ATOMIC_RELAXED);
    if (n == team_size || n < 1) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    team_size = n;
}

const char *nn_blas_core(void) {
    if (nn_init() < 0) return "none";
    return blas.corename ? blas.corename() : "unknown";
}

const char *nn_blas_library(void) {
    nn_init();
    return blas.library;
}

const char *nn_blas_choice(void) {
    nn_init();
    return blas.choice;
}

const char *nn_build_flags(void) { return NN_BUILD_FLAGS; }

double nn_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
             float alpha, const float *a, int64_t lda, const float *b,
             int64_t ldb, float beta, float *c, int64_t ldc) {
    if (nn_init() < 0) return -1;
    const int64_t lim = 0x7fffffff;
    if (m > lim || n > lim || k > lim || lda > lim || ldb > lim || ldc > lim)
        return nn_failed(0, "matrix too large for 32-bit BLAS (%lldx%lldx%lld)",
                         (long long)m, (long long)n, (long long)k);
    blas.sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
               trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
               alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
    return 0;
}
