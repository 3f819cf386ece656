/* dist.c -- nn_dist.h over MPI, or a one-process world without it.
 *
 * Blocking collectives only: on this kind of machine (shared memory, no
 * MPI progress thread) MPI_Iallreduce measured 2-2.5x slower than
 * MPI_Allreduce for 10-100 MB and overlapped nothing, so callers batch
 * tensors into buckets and reduce them in one call each. */
#include "nn_dist.h"
#include "autograd.h" /* the row-sparse gradient's layout */
#include "internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef NN_HAVE_MPI
#include <dlfcn.h>
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#endif

static struct {
    int initialized, mpi, rank, world;
} dist = {0, 0, 0, 1};

struct nn_dist_request {
    nn_tensor *t;
    nn_dist_op op;
    int done;
#ifdef NN_HAVE_MPI
    MPI_Request req;
#endif
};

int nn_dist_is_initialized(void) { return dist.initialized; }
int nn_dist_rank(void) { return dist.rank; }
int nn_dist_world_size(void) { return dist.world; }

/* ---- checks shared by both builds ------------------------------------------------ */

/* what moves as bytes (broadcast, all_gather) needs only to be contiguous */
static int check_layout(const nn_tensor *t, int arg) {
    if (!nn_is_contiguous(t))
        return nn_failed(arg, "the tensor must be contiguous (call contiguous() first)");
    return 0;
}

/* what is reduced is f32 or i64 as well */
static int check_tensor(const nn_tensor *t, int arg) {
    if (t->dtype != NN_F32 && t->dtype != NN_I64)
        return nn_failed(arg, "tensors must be f32 or i64, got %s", nn_dtype_name(t->dtype));
    return check_layout(t, arg);
}

static int check_op(const nn_tensor *t, nn_dist_op op) {
    if (op < NN_DIST_SUM || op > NN_DIST_MIN) return nn_failed(2, "unknown reduction %d", (int)op);
    if (op == NN_DIST_AVG && t->dtype != NN_F32)
        return nn_failed(2, "'avg' needs an f32 tensor, got %s", nn_dtype_name(t->dtype));
    return 0;
}

static int check_inplace(nn_tensor *t, nn_dist_op op) {
    if (check_tensor(t, 1) < 0 || check_op(t, op) < 0) return -1;
    return nn_check_writable(t, 1);
}

/* the (world, ...) result of all_gather, or the part of reduce_scatter */
static nn_tensor *gather_result(const nn_tensor *t) {
    int64_t shape[NN_MAX_DIMS];
    if (t->ndim + 1 > NN_MAX_DIMS) return nn_fail(1, "at most %d dims", NN_MAX_DIMS - 1);
    shape[0] = dist.world;
    memcpy(shape + 1, t->shape, (size_t)t->ndim * sizeof *shape);
    return nn_empty(t->dtype, t->ndim + 1, shape);
}

static nn_tensor *scatter_result(const nn_tensor *t) {
    char s[96];
    if (t->ndim < 1 || t->shape[0] % dist.world)
        return nn_fail(1, "the first dim of %s must split into %d equal parts",
                       nn_shape_str(t, s, sizeof s), dist.world);
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, t->shape, (size_t)t->ndim * sizeof *shape);
    shape[0] /= dist.world;
    return nn_empty(t->dtype, t->ndim, shape);
}

#ifdef NN_HAVE_MPI
/* ---- MPI ----------------------------------------------------------------------- */

int nn_dist_has_mpi(void) { return 1; }

/* divides n floats by the world size (the avg reduction) */
static void average(float *x, int64_t n) {
    float w = (float)dist.world;
    for (int64_t i = 0; i < n; i++) x[i] /= w;
}

const char *nn_dist_backend(void) {
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!version[0]) {
        int len = 0;
        MPI_Get_library_version(version, &len);
        char *nl = strchr(version, ',');
        if (nl) *nl = 0;
    }
    return version;
}

/* the watchdog: the collective running and since when (seconds) */
static _Atomic(const char *) in_call;
static _Atomic double call_start;
static double watchdog_limit;

static void *watchdog(void *unused) {
    (void)unused;
    for (;;) {
        sleep(1);
        const char *fn = atomic_load(&in_call);
        double waited = nn_clock() - atomic_load(&call_start);
        if (fn && waited > watchdog_limit) {
            fprintf(stderr, "nn.dist: rank %d of %d waited %.0f s in %s for the other ranks "
                            "(timeout %g s); stopping\n", dist.rank, dist.world, waited, fn,
                    watchdog_limit);
            _exit(3);
        }
    }
    return NULL;
}

static void enter(const char *fn) {
    atomic_store(&call_start, nn_clock());
    atomic_store(&in_call, fn);
}

static int leave(int rc, const char *call) {
    atomic_store(&in_call, NULL);
    if (rc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return nn_failed(0, "%s failed on rank %d: %s", call, dist.rank, msg);
}

/* exit with a failure status: stop the other ranks too; else finalize */
static void at_exit(int status, void *unused) {
    (void)unused;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (status != 0) {
        MPI_Abort(MPI_COMM_WORLD, status);
    } else {
        enter("finalize"); /* waits for the other ranks: the watchdog's too */
        MPI_Finalize();
        leave(MPI_SUCCESS, NULL);
    }
}

static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int nn_dist_init(double timeout_s) {
    if (dist.initialized) return 0;
    if (!launched_by_mpirun()) { /* a one-process world, no MPI */
        dist.initialized = 1;
        return 0;
    }
    /* Loaded as a Lua module (dlopen, RTLD_LOCAL), libmpi's own plugins
     * could not see its symbols: make them global first. */
    Dl_info info;
    if (dladdr((void *)MPI_Init, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return nn_failed(0, "MPI_Init_thread failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist.world);
    dist.mpi = 1;
    dist.initialized = 1;
    on_exit(at_exit, NULL);
    if (timeout_s > 0) {
        watchdog_limit = timeout_s;
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, watchdog, NULL);
        pthread_attr_destroy(&attr);
        if (rc) return nn_failed(0, "could not start the watchdog thread");
    }
    return 0;
}

static MPI_Datatype mpi_type(const nn_tensor *t) {
    return t->dtype == NN_F32 ? MPI_FLOAT : MPI_INT64_T;
}

static MPI_Op mpi_op(nn_dist_op op) {
    return op == NN_DIST_MAX ? MPI_MAX : op == NN_DIST_MIN ? MPI_MIN : MPI_SUM;
}

/* MPI counts are int: large tensors go in pieces of at most this many */
#define CHUNK ((int64_t)1 << 30)

/* an in-place all-reduce of n values of esize bytes, in pieces */
static int allreduce_inplace(void *p, int64_t n, size_t esize, MPI_Datatype type, MPI_Op op) {
    for (int64_t at = 0; at < n; at += CHUNK) {
        int count = (int)(n - at < CHUNK ? n - at : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)p + at * esize, count, type, op, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return leave(rc, "MPI_Allreduce");
    }
    return leave(MPI_SUCCESS, NULL);
}

int nn_dist_barrier(void) {
    if (!dist.mpi) return 0;
    enter("barrier");
    return leave(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

int nn_dist_all_reduce(nn_tensor *t, nn_dist_op op) {
    if (check_inplace(t, op) < 0) return -1;
    nn_bump_version(t);
    if (!dist.mpi) return 0;
    int64_t n = nn_numel(t);
    enter("all_reduce");
    if (allreduce_inplace(nn_data(t), n, nn_dtype_size(t->dtype), mpi_type(t), mpi_op(op)) < 0)
        return -1;
    if (op == NN_DIST_AVG) average(nn_data(t), n);
    return 0;
}

nn_dist_request *nn_dist_iall_reduce(nn_tensor *t, nn_dist_op op) {
    if (check_inplace(t, op) < 0) return NULL;
    int64_t n = nn_numel(t);
    if (n > INT_MAX) return nn_fail(1, "at most %d values in a non-blocking all-reduce", INT_MAX);
    nn_dist_request *r = calloc(1, sizeof *r);
    if (!r) return nn_fail(0, "out of memory");
    r->t = nn_retain(t);
    r->op = op;
    nn_bump_version(t);
    if (!dist.mpi) {
        r->done = 1;
        return r;
    }
    int rc = MPI_Iallreduce(MPI_IN_PLACE, nn_data(t), (int)n, mpi_type(t), mpi_op(op), MPI_COMM_WORLD,
                            &r->req);
    if (leave(rc, "MPI_Iallreduce") < 0) {
        nn_release(r->t);
        free(r);
        return NULL;
    }
    return r;
}

static void finished(nn_dist_request *r) {
    r->done = 1;
    if (r->op == NN_DIST_AVG) average(nn_data(r->t), nn_numel(r->t));
}

int nn_dist_test(nn_dist_request *r) {
    if (r->done) return 1;
    int flag = 0;
    if (leave(MPI_Test(&r->req, &flag, MPI_STATUS_IGNORE), "MPI_Test") < 0) return -1;
    if (flag) finished(r);
    return flag;
}

int nn_dist_wait(nn_dist_request *r) {
    if (r->done) return 0;
    enter("wait");
    if (leave(MPI_Wait(&r->req, MPI_STATUS_IGNORE), "MPI_Wait") < 0) return -1;
    finished(r);
    return 0;
}

void nn_dist_request_free(nn_dist_request *r) {
    if (!r) return;
    if (!r->done) MPI_Wait(&r->req, MPI_STATUS_IGNORE); /* MPI writes into t until then */
    nn_release(r->t);
    free(r);
}

int nn_dist_broadcast(nn_tensor *t, int root) {
    if (check_layout(t, 1) < 0 || nn_check_writable(t, 1) < 0) return -1;
    if (root < 0 || root >= dist.world)
        return nn_failed(2, "root %d is not a rank (world of %d)", root, dist.world);
    nn_bump_version(t);
    if (!dist.mpi) return 0;
    int64_t n = nn_numel(t) * (int64_t)nn_dtype_size(t->dtype);
    char *p = nn_data(t);
    enter("broadcast");
    for (int64_t at = 0; at < n; at += CHUNK) {
        int count = (int)(n - at < CHUNK ? n - at : CHUNK);
        int rc = MPI_Bcast(p + at, count, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return leave(rc, "MPI_Bcast");
    }
    return leave(MPI_SUCCESS, NULL);
}

nn_tensor *nn_dist_all_gather(const nn_tensor *t) {
    if (check_layout(t, 1) < 0) return NULL;
    int64_t n = nn_numel(t) * (int64_t)nn_dtype_size(t->dtype);
    if (n > INT_MAX) return nn_fail(1, "at most %d bytes a rank", INT_MAX);
    nn_tensor *out = gather_result(t);
    if (!out) return NULL;
    if (!dist.mpi) {
        memcpy(nn_data(out), nn_data(t), (size_t)n);
        return out;
    }
    enter("all_gather");
    int rc = MPI_Allgather(nn_data(t), (int)n, MPI_BYTE, nn_data(out), (int)n, MPI_BYTE,
                           MPI_COMM_WORLD);
    if (leave(rc, "MPI_Allgather") < 0) {
        nn_release(out);
        return NULL;
    }
    return out;
}

nn_tensor *nn_dist_reduce_scatter(const nn_tensor *t, nn_dist_op op) {
    if (check_tensor(t, 1) < 0 || check_op(t, op) < 0)
        return NULL;
    nn_tensor *out = scatter_result(t);
    if (!out) return NULL;
    int64_t part = nn_numel(out);
    if (part > INT_MAX) {
        nn_release(out);
        return nn_fail(1, "at most %d elements a part", INT_MAX);
    }
    if (!dist.mpi) {
        memcpy(nn_data(out), nn_data(t), (size_t)part * nn_dtype_size(t->dtype));
        return out;
    }
    enter("reduce_scatter");
    int rc = MPI_Reduce_scatter_block(nn_data(t), nn_data(out), (int)part, mpi_type(t),
                                      mpi_op(op), MPI_COMM_WORLD);
    if (leave(rc, "MPI_Reduce_scatter_block") < 0) {
        nn_release(out);
        return NULL;
    }
    if (op == NN_DIST_AVG) average(nn_data(out), part);
    return out;
}

int nn_dist_check_same(int64_t n, const int64_t *values, int *bad_rank, int64_t *bad_pos) {
    *bad_rank = -1;
    *bad_pos = -1;
    if (!dist.mpi) return 1;
    /* the lengths first: the lists can only be gathered when they agree */
    int64_t *lens = malloc((size_t)dist.world * sizeof *lens);
    if (!lens) return nn_failed(0, "out of memory");
    enter("check_same");
    int rc = MPI_Allgather(&n, 1, MPI_INT64_T, lens, 1, MPI_INT64_T, MPI_COMM_WORLD);
    if (leave(rc, "MPI_Allgather") < 0) {
        free(lens);
        return -1;
    }
    for (int r = 1; r < dist.world; r++)
        if (lens[r] != lens[0]) {
            *bad_rank = r;
            free(lens);
            return 0;
        }
    free(lens);
    if (n == 0) return 1;
    if (n > INT_MAX / dist.world) return nn_failed(0, "too many values");
    int64_t *all = malloc((size_t)n * (size_t)dist.world * sizeof *all);
    if (!all) return nn_failed(0, "out of memory");
    enter("check_same");
    rc = MPI_Allgather(values, (int)n, MPI_INT64_T, all, (int)n, MPI_INT64_T, MPI_COMM_WORLD);
    if (leave(rc, "MPI_Allgather") < 0) {
        free(all);
        return -1;
    }
    int same = 1;
    for (int r = 1; r < dist.world && same; r++)
        for (int64_t i = 0; i < n; i++)
            if (all[r * n + i] != all[i]) {
                *bad_rank = r;
                *bad_pos = i;
                same = 0;
                break;
            }
    free(all);
    return same;
}

/* When the ranks touched many rows, the whole (V, D) gradient (untouched
 * rows zeroed) is all-reduced instead, and the touched flags with it, so
 * the rows stay the union of the ranks'. Each rank receives about
 * (w-1)/w * total * (4d + 8) bytes gathering rows and 2(w-1)/w * V * 4d
 * all-reducing the table: rows while total < 8Vd / (4d + 8), about 2V,
 * which with 2 ranks always holds. */
static int sparse_as_dense(nn_tensor *t) {
    struct nn_rowgrad *rg = t->rowgrad;
    size_t row = (size_t)rg->d * sizeof(float);
    for (int64_t r = 0; r < rg->v; r++)
        if (!rg->touched[r]) memset(rg->buf + r * rg->d, 0, row);
    enter("sparse_grad_all_reduce");
    if (allreduce_inplace(rg->buf, rg->v * rg->d, sizeof(float), MPI_FLOAT, MPI_SUM) < 0) return -1;
    enter("sparse_grad_all_reduce");
    if (allreduce_inplace(rg->touched, rg->v, 1, MPI_UNSIGNED_CHAR, MPI_MAX) < 0) return -1;
    rg->nrows = 0;
    for (int64_t r = 0; r < rg->v; r++)
        if (rg->touched[r]) rg->rows[rg->nrows++] = r;
    return 0;
}

/* every rank's touched rows (row numbers, then rows), gathered */
int nn_dist_sparse_grad_all_reduce(nn_tensor *t, int average_rows) {
    if (!nn_has_sparse_grad(t))
        return nn_failed(1, "the tensor keeps no sparse gradient");
    const int64_t *rows;
    int64_t n = nn_sparse_grad_rows(t, &rows), d = t->shape[1];
    if (!dist.mpi || dist.world == 1) return 0;
    int w = dist.world, rc;
    int64_t *counts = malloc((size_t)w * sizeof *counts);
    int *icount = malloc((size_t)w * sizeof *icount), *idisp = malloc((size_t)w * sizeof *idisp);
    int *fcount = malloc((size_t)w * sizeof *fcount), *fdisp = malloc((size_t)w * sizeof *fdisp);
    int64_t *all_rows = NULL, *mine = NULL;
    float *all_data = NULL, *packed = NULL;
    int status = -1;
    if (!counts || !icount || !idisp || !fcount || !fdisp) {
        nn_failed(0, "out of memory");
        goto done;
    }
    enter("sparse_grad_all_reduce");
    rc = MPI_Allgather(&n, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD);
    if (leave(rc, "MPI_Allgather") < 0) goto done;
    int64_t total = 0;
    for (int r = 0; r < w; r++) total += counts[r];
    if ((double)total * (double)(4 * d + 8) > 8.0 * (double)t->shape[0] * (double)d) {
        status = sparse_as_dense(t);
        if (status == 0 && average_rows) nn_sparse_grad_scale(t, 1.0f / (float)w);
        goto done;
    }
    total = 0;
    for (int r = 0; r < w; r++) {
        if (total > INT_MAX || (total + counts[r]) * d > INT_MAX) {
            nn_failed(1, "more than %d gradient values to exchange", INT_MAX);
            goto done;
        }
        icount[r] = (int)counts[r];
        idisp[r] = (int)total;
        fcount[r] = (int)(counts[r] * d);
        fdisp[r] = (int)(total * d);
        total += counts[r];
    }
    all_rows = malloc((size_t)(total ? total : 1) * sizeof *all_rows);
    mine = malloc((size_t)(n ? n : 1) * sizeof *mine);
    all_data = malloc((size_t)(total ? total * d : 1) * sizeof *all_data);
    packed = malloc((size_t)(n ? n * d : 1) * sizeof *packed);
    if (!all_rows || !mine || !all_data || !packed) {
        nn_failed(0, "out of memory for %lld gradient rows", (long long)total);
        goto done;
    }
    const float *buf = nn_sparse_grad_data(t);
    for (int64_t k = 0; k < n; k++) {
        mine[k] = rows[k];
        memcpy(packed + k * d, buf + rows[k] * d, (size_t)d * sizeof(float));
    }
    enter("sparse_grad_all_reduce");
    rc = MPI_Allgatherv(mine, (int)n, MPI_INT64_T, all_rows, icount, idisp, MPI_INT64_T,
                        MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allgatherv(packed, (int)(n * d), MPI_FLOAT, all_data, fcount, fdisp, MPI_FLOAT,
                            MPI_COMM_WORLD);
    if (leave(rc, "MPI_Allgatherv") < 0) goto done;
    /* summed in rank order from zero, so every rank gets the same bits */
    nn_sparse_grad_clear(t);
    for (int r = 0; r < w; r++)
        if (nn_sparse_grad_add(t, counts[r], all_rows + idisp[r], all_data + fdisp[r]) < 0)
            goto done;
    if (average_rows) nn_sparse_grad_scale(t, 1.0f / (float)w);
    status = 0;
done:
    free(counts), free(icount), free(idisp), free(fcount), free(fdisp);
    free(all_rows), free(mine), free(all_data), free(packed);
    return status;
}

#else
/* ---- without MPI: a world of one ----------------------------------------------- */

int nn_dist_has_mpi(void) { return 0; }
const char *nn_dist_backend(void) { return "none"; }

int nn_dist_init(double timeout_s) {
    (void)timeout_s;
    /* under mpirun, N copies each training alone would be a silent mistake */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        return nn_failed(0, "mpirun started %d ranks, but this build has no MPI (install "
                            "libopenmpi-dev and rebuild)", atoi(n));
    dist.initialized = 1;
    return 0;
}

int nn_dist_barrier(void) { return 0; }

int nn_dist_all_reduce(nn_tensor *t, nn_dist_op op) {
    if (check_inplace(t, op) < 0) return -1;
    nn_bump_version(t);
    return 0;
}

nn_dist_request *nn_dist_iall_reduce(nn_tensor *t, nn_dist_op op) {
    if (check_inplace(t, op) < 0) return NULL;
    nn_dist_request *r = calloc(1, sizeof *r);
    if (!r) return nn_fail(0, "out of memory");
    r->t = nn_retain(t);
    r->op = op;
    r->done = 1;
    nn_bump_version(t);
    return r;
}

int nn_dist_test(nn_dist_request *r) { return r->done; }
int nn_dist_wait(nn_dist_request *r) { (void)r; return 0; }

void nn_dist_request_free(nn_dist_request *r) {
    if (!r) return;
    nn_release(r->t);
    free(r);
}

int nn_dist_broadcast(nn_tensor *t, int root) {
    if (check_layout(t, 1) < 0 || nn_check_writable(t, 1) < 0) return -1;
    if (root != 0) return nn_failed(2, "root %d is not a rank (world of 1)", root);
    nn_bump_version(t);
    return 0;
}

nn_tensor *nn_dist_all_gather(const nn_tensor *t) {
    if (check_layout(t, 1) < 0) return NULL;
    nn_tensor *out = gather_result(t);
    if (out) memcpy(nn_data(out), nn_data(t), (size_t)nn_numel(t) * nn_dtype_size(t->dtype));
    return out;
}

nn_tensor *nn_dist_reduce_scatter(const nn_tensor *t, nn_dist_op op) {
    if (check_tensor(t, 1) < 0 || check_op(t, op) < 0)
        return NULL;
    nn_tensor *out = scatter_result(t);
    if (out) memcpy(nn_data(out), nn_data(t), (size_t)nn_numel(t) * nn_dtype_size(t->dtype));
    return out;
}

int nn_dist_check_same(int64_t n, const int64_t *values, int *bad_rank, int64_t *bad_pos) {
    (void)n, (void)values;
    *bad_rank = -1;
    *bad_pos = -1;
    return 1;
}

int nn_dist_sparse_grad_all_reduce(nn_tensor *t, int average_rows) {
    (void)average_rows;
    if (!nn_has_sparse_grad(t))
        return nn_failed(1, "the tensor keeps no sparse gradient");
    return 0;
}
#endif
