/* grads.c -- averaging the gradients of a model's parameters over the
 * ranks (what data-parallel training does after each backward).
 *
 * Dense gradients are packed into buckets of a fixed size and each bucket
 * is all-reduced in one call: a hundred small all-reduces cost a hundred
 * latencies, one per bucket costs one. Row-sparse gradients travel as
 * their touched rows. Every rank walks the parameters in the same order,
 * so the collectives pair up. */
#include "nn_dist.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* the parameters some rank has a dense gradient for: flags[i] becomes 1
 * when any rank has one (a parameter one rank did not use gets zeros
 * there, as the others' gradients still count) */
static int agree_on_grads(int n, nn_tensor *const *params, int64_t *flags) {
    for (int i = 0; i < n; i++) flags[i] = !nn_has_sparse_grad(params[i]) && params[i]->grad;
    if (n == 0) return 0;
    nn_tensor *f = nn_empty(NN_I64, 1, (int64_t[]){n});
    if (!f) return -1;
    memcpy(nn_data(f), flags, (size_t)n * sizeof *flags);
    int rc = nn_dist_all_reduce(f, NN_DIST_MAX);
    if (rc == 0) memcpy(flags, nn_data(f), (size_t)n * sizeof *flags);
    nn_release(f);
    return rc;
}

/* the parameter's gradient as a contiguous f32 tensor it owns (made, as
 * zeros, when this rank has none) */
static nn_tensor *dense_grad(nn_tensor *p, int i) {
    char s[96];
    if (!p->grad) {
        p->grad = nn_zeros(NN_F32, p->ndim, p->shape);
        return p->grad;
    }
    if (p->grad->dtype != NN_F32)
        return nn_fail(1, "parameter %d has a %s gradient (f32 expected)", i + 1,
                       nn_dtype_name(p->grad->dtype));
    if (nn_numel(p->grad) != nn_numel(p))
        return nn_fail(1, "parameter %d's gradient %s does not match it", i + 1,
                       nn_shape_str(p->grad, s, sizeof s));
    if (!nn_is_contiguous(p->grad)) {
        nn_tensor *c = nn_contiguous(p->grad);
        if (!c) return NULL;
        nn_release(p->grad);
        p->grad = c;
    }
    return p->grad;
}

/* reduces the gradients of params[from..to) packed in bucket */
static int reduce_bucket(nn_tensor *bucket, nn_tensor *const *params, const int64_t *flags,
                         int from, int to) {
    float *buf = nn_f32(bucket);
    int64_t at = 0;
    for (int i = from; i < to; i++) {
        if (!flags[i]) continue;
        int64_t k = nn_numel(params[i]);
        memcpy(buf + at, nn_f32(params[i]->grad), (size_t)k * sizeof(float));
        at += k;
    }
    if (at == 0) return 0;
    nn_tensor *used = nn_narrow(bucket, 0, 0, at);
    if (!used) return -1;
    int rc = nn_dist_all_reduce(used, NN_DIST_AVG);
    nn_release(used);
    if (rc < 0) return -1;
    at = 0;
    for (int i = from; i < to; i++) {
        if (!flags[i]) continue;
        int64_t k = nn_numel(params[i]);
        memcpy(nn_f32(params[i]->grad), buf + at, (size_t)k * sizeof(float));
        nn_bump_version(params[i]->grad);
        at += k;
    }
    return 0;
}

int nn_dist_all_reduce_grads(int n, nn_tensor *const *params, int64_t bucket_elems) {
    if (n < 0) return nn_failed(1, "%d parameters", n);
    if (bucket_elems < 1) return nn_failed(2, "bucket of %lld values",
                                           (long long)bucket_elems);
    for (int i = 0; i < n; i++)
        if (params[i]->dtype != NN_F32)
            return nn_failed(1, "parameter %d is %s (f32 expected)", i + 1,
                             nn_dtype_name(params[i]->dtype));
    if (nn_dist_world_size() == 1) return 0;
    int64_t *flags = malloc((size_t)(n ? n : 1) * sizeof *flags);
    if (!flags) return nn_failed(0, "out of memory");
    nn_tensor *bucket = NULL;
    int rc = agree_on_grads(n, params, flags);
    for (int i = 0; i < n && rc == 0; i++)
        if (flags[i] && !dense_grad(params[i], i)) rc = -1;
    if (rc == 0) {
        int64_t biggest = 0, sum = 0;
        for (int i = 0; i < n; i++)
            if (flags[i]) biggest = nn_numel(params[i]) > biggest ? nn_numel(params[i]) : biggest;
        for (int i = 0; i < n; i++) sum += flags[i] ? nn_numel(params[i]) : 0;
        int64_t size = bucket_elems > biggest ? bucket_elems : biggest;
        size = size < sum ? size : sum;
        if (size > 0 && !(bucket = nn_empty(NN_F32, 1, &size))) rc = -1;
    }
    /* buckets: runs of parameters whose gradients fit together */
    int from = 0;
    int64_t filled = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t k = flags[i] ? nn_numel(params[i]) : 0;
        if (filled + k > bucket_elems && filled > 0) {
            rc = reduce_bucket(bucket, params, flags, from, i);
            from = i;
            filled = 0;
        }
        filled += k;
    }
    if (rc == 0 && filled > 0) rc = reduce_bucket(bucket, params, flags, from, n);
    for (int i = 0; i < n && rc == 0; i++)
        if (nn_has_sparse_grad(params[i])) rc = nn_dist_sparse_grad_all_reduce(params[i], 1);
    nn_release(bucket);
    free(flags);
    return rc;
}
