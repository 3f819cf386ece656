/* profile.c -- where the time goes: scopes (an op called from a host, a
 * layer's forward, a backward node) entered and left on the calling thread,
 * summed by name and kind.
 *
 * Off (the default) it costs one load of a flag where the engine checks
 * it. On, each scope reads the monotonic clock, the process CPU clock (so
 * CPU time over wall time tells how many threads worked, spinning ones
 * included) and the bytes of tensor storage allocated so far; a scope's
 * self time is its time minus that of the scopes inside it. Names are
 * interned for good (they are op and layer names, a bounded set), so a
 * node recorded under one profile may still name its layer in the next. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int nn_profiling;

#define MAX_NAMES 4096
#define MAX_ROWS 8192 /* names x kinds in use; a power of two */
#define MAX_DEPTH 128

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int name_count; /* names interned (never freed) */
static nn_profile_row rows[MAX_ROWS];
static int row_of[MAX_ROWS]; /* open addressing on (name, kind): row + 1, 0 empty */
static int row_count;

typedef struct {
    int row; /* -1: not counted (the table is full) */
    double t0, cpu0, child_t, child_cpu;
    int64_t bytes0, child_bytes;
} frame;

static _Thread_local frame stack[MAX_DEPTH];
static _Thread_local int depth;
static _Thread_local const char *layer_now; /* the innermost layer being run */

static double cpu_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* the interned copy of name (NULL when the table is full); under the lock */
static const char *intern(const char *name) {
    static const char *slots[2 * MAX_NAMES];
    for (uint64_t i = hash_str(name) & (2 * MAX_NAMES - 1);; i = (i + 1) & (2 * MAX_NAMES - 1)) {
        if (!slots[i]) {
            if (name_count == MAX_NAMES) return NULL;
            size_t len = strlen(name) + 1;
            char *copy = malloc(len);
            if (!copy) return NULL;
            memcpy(copy, name, len);
            name_count++;
            return slots[i] = copy;
        }
        if (strcmp(slots[i], name) == 0) return slots[i];
    }
}

/* the row of (interned name, kind), made when new; -1 when full */
static int row_for(const char *name, nn_profile_kind kind) {
    uint64_t h = ((uint64_t)(uintptr_t)name * 31 + (uint64_t)kind) * 0x9e3779b97f4a7c15ull;
    for (uint64_t i = h >> 51;; i = (i + 1) & (MAX_ROWS - 1)) {
        int r = row_of[i] - 1;
        if (r < 0) {
            if (row_count == MAX_ROWS / 2) return -1; /* keep the table sparse */
            r = row_count++;
            rows[r] = (nn_profile_row){.name = name, .kind = kind};
            row_of[i] = r + 1;
            return r;
        }
        if (rows[r].name == name && rows[r].kind == kind) return r;
    }
}

void nn_profile_start(void) {
    pthread_mutex_lock(&lock);
    memset(row_of, 0, sizeof row_of);
    row_count = 0;
    pthread_mutex_unlock(&lock);
    depth = 0;
    __atomic_store_n(&nn_profiling, 1, __ATOMIC_RELAXED);
}

void nn_profile_stop(void) { __atomic_store_n(&nn_profiling, 0, __ATOMIC_RELAXED); }

int nn_profile_enter(const char *name, nn_profile_kind kind) {
    if (!__atomic_load_n(&nn_profiling, __ATOMIC_RELAXED) || depth == MAX_DEPTH) return 0;
    pthread_mutex_lock(&lock);
    const char *s = intern(name ? name : "?");
    int r = s ? row_for(s, kind) : -1;
    pthread_mutex_unlock(&lock);
    frame *f = &stack[depth++];
    *f = (frame){.row = r, .bytes0 = nn_allocated_bytes()};
    f->cpu0 = cpu_clock();
    f->t0 = nn_clock();
    return 1;
}

void nn_profile_leave(void) {
    if (depth == 0) return; /* a start in between emptied the stack */
    double t = nn_clock();
    double cpu = cpu_clock();
    frame *f = &stack[--depth];
    double dt = t - f->t0, dcpu = cpu - f->cpu0;
    int64_t db = nn_allocated_bytes() - f->bytes0;
    if (depth > 0) {
        stack[depth - 1].child_t += dt;
        stack[depth - 1].child_cpu += dcpu;
        stack[depth - 1].child_bytes += db;
    }
    if (f->row < 0) return;
    pthread_mutex_lock(&lock);
    nn_profile_row *row = &rows[f->row];
    row->calls++;
    row->total += dt;
    if (depth == 0) row->outer += dt;
    row->self += dt - f->child_t;
    row->cpu += dcpu;
    row->self_cpu += dcpu - f->child_cpu;
    row->bytes += db;
    row->self_bytes += db - f->child_bytes;
    pthread_mutex_unlock(&lock);
}

int nn_profile_layer_enter(const char *name, const char **prev) {
    *prev = layer_now;
    if (!__atomic_load_n(&nn_profiling, __ATOMIC_RELAXED)) return 0;
    pthread_mutex_lock(&lock);
    const char *s = intern(name ? name : "?");
    pthread_mutex_unlock(&lock);
    if (s) layer_now = s;
    return nn_profile_enter(name, NN_PROFILE_LAYER);
}

void nn_profile_layer_leave(int entered, const char *prev) {
    if (entered) nn_profile_leave();
    layer_now = prev;
}

const char *nn_profile_current_layer(void) { return layer_now; }

int nn_profile_rows(nn_profile_row *out, int cap) {
    pthread_mutex_lock(&lock);
    int n = row_count;
    if (out) memcpy(out, rows, (size_t)(n < cap ? n : cap) * sizeof *out);
    pthread_mutex_unlock(&lock);
    return n;
}
