/* check.h -- a minimal harness for the engine's C tests.
 * TEST(name) { CHECK(...); CHECK_NEAR(a, b, tol); } and in main:
 * RUN(name); ... return check_summary("tensor"); */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>

#include "internal.h" /* tests may look inside */
#include "nn.h"

extern int check_failures_in_test;
void check_fail(const char *file, int line, const char *what);
void check_run(const char *name, void (*fn)(void));
int check_summary(const char *suite);

#define TEST(name) static void name(void)
#define RUN(name) check_run(#name, name)
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) check_fail(__FILE__, __LINE__, #cond);                 \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                               \
    do {                                                                    \
        double a_ = (a), b_ = (b);                                          \
        if (!(a_ - b_ <= (tol) && b_ - a_ <= (tol))) {                      \
            char m_[256];                                                   \
            snprintf(m_, sizeof m_, "%s = %.9g, expected %.9g", #a, a_, b_); \
            check_fail(__FILE__, __LINE__, m_);                             \
        }                                                                   \
    } while (0)

/* helpers */
nn_tensor *check_tensor(int ndim, const int64_t *shape, const float *data);
/* |t - expected| <= tol everywhere (any layout) */
int check_values(const nn_tensor *t, const float *expected, double tol);

#endif
