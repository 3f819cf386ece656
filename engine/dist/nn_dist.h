/*
 * nn_dist.h -- collectives between processes, over MPI.
 *
 * Built with Open MPI when the Makefile finds it (NN_HAVE_MPI); without
 * it, or in a process not started by mpirun, the world is this process
 * alone and every call below works as a one-process collective.
 *
 *     nn_dist_init(0);                        // rank, world from mpirun
 *     nn_dist_all_reduce(grad, NN_DIST_AVG);  // in place, every rank
 *
 * Tensors given to collectives are contiguous f32 or i64 and have the
 * same shape on every rank (not checked: a mismatch is a wrong program,
 * as in MPI; nn_dist_check_same lets a caller check once). Errors from
 * MPI come back as -1 with the MPI message, naming the call. MPI is
 * initialised for one calling thread: call these from the thread that
 * called nn_dist_init.
 */
#ifndef NN_DIST_H
#define NN_DIST_H

#include "nn_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NN_DIST_SUM, NN_DIST_AVG, NN_DIST_MAX, NN_DIST_MIN } nn_dist_op;

/* Joins the job mpirun started (once; later calls return 0). timeout_s > 0
 * starts a watchdog: a collective that waits longer than that for the
 * other ranks prints which one and ends the process (exit status 3), so
 * mpirun stops the job instead of it hanging. A rank whose process exits
 * with a non-zero status after init aborts the job (MPI_Abort), so the
 * other ranks stop too; a zero status finalizes MPI. */
int nn_dist_init(double timeout_s);
int nn_dist_is_initialized(void);
int nn_dist_rank(void);
int nn_dist_world_size(void);
/* 1 when built with MPI, 0 otherwise */
int nn_dist_has_mpi(void);
/* the MPI library's version string, or "none" */
const char *nn_dist_backend(void);
int nn_dist_barrier(void);
/* t (in place) becomes the reduction of every rank's t */
int nn_dist_all_reduce(nn_tensor *t, nn_dist_op op);
/* t (in place) becomes root's t */
int nn_dist_broadcast(nn_tensor *t, int root);
/* A non-blocking all-reduce of t in place (at most INT_MAX values),
 * holding t until freed: nn_dist_test says whether it is done (MPI moves
 * it along inside MPI calls), nn_dist_wait finishes it (NN_DIST_AVG
 * divides then). Every rank starts its requests in the same order. */
typedef struct nn_dist_request nn_dist_request;
nn_dist_request *nn_dist_iall_reduce(nn_tensor *t, nn_dist_op op);
int nn_dist_test(nn_dist_request *r); /* 1 done, 0 running, -1 error */
int nn_dist_wait(nn_dist_request *r);
void nn_dist_request_free(nn_dist_request *r); /* waits first if running */
/* (world, ...t's shape): every rank's t, in rank order */
nn_tensor *nn_dist_all_gather(const nn_tensor *t);
/* t's first dim split in world parts; this rank gets its part of the
 * reduction of every rank's t */
nn_tensor *nn_dist_reduce_scatter(const nn_tensor *t, nn_dist_op op);
/* Row-sparse gradient of a (V, D) table: every rank's touched rows are
 * exchanged (an all-gather of the row numbers and of the rows, not the
 * table) and summed into each rank's gradient in rank order, so all ranks
 * hold the same bits; average divides by the world size. */
int nn_dist_sparse_grad_all_reduce(nn_tensor *t, int average);
/* Averages the gradients of n parameters (the same list, in the same
 * order, on every rank): dense ones packed into buckets of bucket_elems
 * floats (a larger gradient goes alone), row-sparse ones as rows. A
 * parameter with no gradient here but one on another rank gets zeros
 * first; one no rank has a gradient for is left without. */
int nn_dist_all_reduce_grads(int n, nn_tensor *const *params, int64_t bucket_elems);
/* 1 when every rank passed the same n int64 values, 0 when one differs
 * (*bad_rank: the first such rank; *bad_pos: the first value it differs
 * at, -1 when the counts differ), -1 on an MPI error */
int nn_dist_check_same(int64_t n, const int64_t *values, int *bad_rank, int64_t *bad_pos);

#ifdef __cplusplus
}
#endif

#endif
