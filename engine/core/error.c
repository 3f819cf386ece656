/* error.c -- the engine reports, the caller raises: a per-thread message. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];
static _Thread_local int last_arg;

const char *nn_last_error(void) { return last_error; }
int nn_last_error_arg(void) { return last_arg; }

static void set_error(int arg, const char *fmt, va_list ap) {
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    last_arg = arg;
}

void *nn_fail(int arg, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(arg, fmt, ap);
    va_end(ap);
    return NULL;
}

int nn_failed(int arg, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(arg, fmt, ap);
    va_end(ap);
    return -1;
}

int nn_wrap_dim(int dim, int ndim, int arg) {
    int n = ndim > 0 ? ndim : 1; /* a 0-dim tensor accepts dim 0 / -1 */
    if (dim < -n || dim >= n)
        return nn_failed(arg, "dimension out of range (expected %d..%d, got %d)",
                         -n, n - 1, dim);
    return dim < 0 ? dim + n : dim;
}

int nn_set_error(const char *msg) { return nn_failed(0, "%s", msg); }
