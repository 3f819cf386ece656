/* check.c -- the C test harness. */
#include "check.h"

#include <string.h>

int check_failures_in_test;
static int passed, failed;

void check_fail(const char *file, int line, const char *what) {
    fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, what);
    if (*nn_last_error()) fprintf(stderr, "    (last engine error: %s)\n", nn_last_error());
    check_failures_in_test++;
}

void check_run(const char *name, void (*fn)(void)) {
    check_failures_in_test = 0;
    fn();
    if (check_failures_in_test) {
        fprintf(stderr, "FAIL %s\n", name);
        failed++;
    } else {
        passed++;
    }
}

int check_summary(const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, passed, failed);
    fflush(stdout); /* LeakSanitizer may end the process without flushing */
    return failed ? 1 : 0;
}

nn_tensor *check_tensor(int ndim, const int64_t *shape, const float *data) {
    nn_tensor *t = nn_empty(NN_F32, ndim, shape);
    if (t) memcpy(nn_data(t), data, nn_numel(t) * sizeof(float));
    return t;
}

int check_values(const nn_tensor *t, const float *expected, double tol) {
    if (!t) return 0;
    nn_tensor *c = nn_contiguous((nn_tensor *)t);
    int ok = 1;
    int64_t n = nn_numel(c);
    for (int64_t i = 0; i < n; i++) {
        double v = c->dtype == NN_F32 ? ((float *)nn_data(c))[i]
                                      : (double)((int64_t *)nn_data(c))[i];
        double d = v - expected[i];
        if (!(d <= tol && -d <= tol)) {
            fprintf(stderr, "    element %lld: %.9g, expected %.9g\n",
                    (long long)i, v, expected[i]);
            ok = 0;
            break;
        }
    }
    nn_release(c);
    return ok;
}
