/* conv_dnnl.c -- conv2d forward and both backward passes through Debian's
 * oneDNN (libdnnl 2.6), when nnlua is built with it (NN_HAVE_DNNL).
 *
 * Why: im2col + sgemm writes N L K patch values and runs one small sgemm
 * per image and group; for the 16-64 channel, 7-28 pixel layers of a
 * small ResNet that is memory traffic and call overhead, not arithmetic
 * (measured: 46 GFLOP/s for 16 channels at 28x28). oneDNN's JIT kernels
 * convolve directly in a blocked layout (nChw16c).
 *
 * Each call takes plain tensors (x nchw, w oihw / goihw, y nchw). The
 * primitive is built with "any" layouts so oneDNN picks its best; the
 * arguments are reordered to and from them (skipped when the choice is
 * plain); x's reordered copy is kept for the weight gradient and dy is
 * reordered once for both gradients (ResNet-14 step, batch 128: 130 -> 102
 * reorders a step, their time 27 -> 21 ms by DNNL_VERBOSE). Building a
 * primitive costs milliseconds, so every thread keeps a small cache keyed
 * by the geometry. A call returns 1 when done, 0 when
 * oneDNN cannot do it (the caller falls back to im2col), -1 on an error. */
#include "conv_dnnl.h"

#include "internal.h"
#include "nn_layers.h"

#include <stdlib.h>
#include <string.h>

#ifdef NN_HAVE_DNNL
#include <dnnl.h>

typedef enum { NN_DNNL_FORWARD, NN_DNNL_BACKWARD_DATA, NN_DNNL_BACKWARD_WEIGHTS } nn_dnnl_kind;

#define CACHE 48
#define MAX_ARGS 5

typedef struct {
    int id;                            /* DNNL_ARG_... */
    dnnl_memory_desc_t user, prim;     /* plain, and what the primitive wants */
    dnnl_primitive_t reorder;          /* between them, or NULL */
    int output;
} conv_arg;

typedef struct {
    int used, failed;
    unsigned stamp; /* T.call when last looked up */
    nn_dnnl_kind kind;
    nn_conv_geom g;
    int bias;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    conv_arg args[MAX_ARGS];
    int nargs;
} entry;

static _Thread_local struct {
    int ready, broken, next;
    unsigned call;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    entry cache[CACHE];
} T;

static int same_geom(const nn_conv_geom *a, const nn_conv_geom *b) {
    return a->n == b->n && a->ci == b->ci && a->h == b->h && a->w == b->w && a->co == b->co &&
           a->kh == b->kh && a->kw == b->kw && a->sh == b->sh && a->sw == b->sw &&
           a->ph == b->ph && a->pw == b->pw && a->dh == b->dh && a->dw == b->dw &&
           a->groups == b->groups;
}

static int ready(void) {
    if (T.ready) return !T.broken;
    T.ready = 1;
    const char *want = getenv("NNLUA_CONV");
    T.broken = (want && !strcmp(want, "im2col")) ||
               dnnl_engine_create(&T.engine, dnnl_cpu, 0) != dnnl_success ||
               dnnl_stream_create(&T.stream, T.engine, dnnl_stream_default_flags) != dnnl_success;
    return !T.broken;
}

static void md(dnnl_memory_desc_t *d, int nd, const int64_t *dims, dnnl_format_tag_t tag) {
    dnnl_dims_t v;
    for (int i = 0; i < nd; i++) v[i] = dims[i];
    dnnl_memory_desc_init_by_tag(d, nd, v, dnnl_f32, tag);
}

/* the plain descriptors of x, w, b, y */
static void plain(const nn_conv_geom *g, dnnl_memory_desc_t *x, dnnl_memory_desc_t *w,
                  dnnl_memory_desc_t *b, dnnl_memory_desc_t *y, dnnl_format_tag_t tag_data,
                  dnnl_format_tag_t tag_w) {
    int64_t G = g->groups;
    md(x, 4, (int64_t[]){g->n, g->ci, g->h, g->w}, tag_data);
    md(y, 4, (int64_t[]){g->n, g->co, g->oh, g->ow}, tag_data);
    if (G > 1)
        md(w, 5, (int64_t[]){G, g->co / G, g->ci / G, g->kh, g->kw},
           tag_w == dnnl_format_tag_any ? tag_w : dnnl_goihw);
    else
        md(w, 4, (int64_t[]){g->co, g->ci, g->kh, g->kw}, tag_w == dnnl_format_tag_any ? tag_w : dnnl_oihw);
    md(b, 1, (int64_t[]){g->co}, dnnl_x);
}

static int conv_desc(const nn_conv_geom *g, nn_dnnl_kind kind, int bias, dnnl_convolution_desc_t *d) {
    dnnl_memory_desc_t x, w, b, y;
    plain(g, &x, &w, &b, &y, dnnl_format_tag_any, dnnl_format_tag_any);
    b = (dnnl_memory_desc_t){0};
    md(&b, 1, (int64_t[]){g->co}, dnnl_format_tag_any);
    dnnl_dims_t s = {g->sh, g->sw}, dil = {g->dh - 1, g->dw - 1}, pl = {g->ph, g->pw};
    dnnl_dims_t pr = {(g->oh - 1) * g->sh + g->dh * (g->kh - 1) + 1 - g->h - g->ph,
                      (g->ow - 1) * g->sw + g->dw * (g->kw - 1) + 1 - g->w - g->pw};
    dnnl_status_t st;
    if (kind == NN_DNNL_FORWARD)
        st = dnnl_dilated_convolution_forward_desc_init(d, dnnl_forward_training, dnnl_convolution_direct,
                                                        &x, &w, bias ? &b : NULL, &y, s, dil, pl, pr);
    else if (kind == NN_DNNL_BACKWARD_DATA)
        st = dnnl_dilated_convolution_backward_data_desc_init(d, dnnl_convolution_direct, &x, &w, &y,
                                                              s, dil, pl, pr);
    else
        st = dnnl_dilated_convolution_backward_weights_desc_init(d, dnnl_convolution_direct, &x, &w,
                                                                 bias ? &b : NULL, &y, s, dil, pl, pr);
    return st == dnnl_success ? 0 : -1;
}

/* one argument of the entry: plain user layout u, the primitive's layout
 * (queried by q) and the reorder between them when they differ */
static int add_arg(entry *e, int id, const dnnl_memory_desc_t *u, dnnl_query_t q, int output) {
    conv_arg *a = &e->args[e->nargs++];
    const dnnl_memory_desc_t *p = dnnl_primitive_desc_query_md(e->pd, q, 0);
    if (!p) return -1;
    *a = (conv_arg){id, *u, *p, NULL, output};
    if (dnnl_memory_desc_equal(u, p)) return 0;
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = output ? p : u, *to = output ? u : p;
    if (dnnl_reorder_primitive_desc_create(&rpd, from, T.engine, to, T.engine, NULL) != dnnl_success)
        return -1;
    dnnl_status_t st = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return st == dnnl_success ? 0 : -1;
}

static void release(entry *e) {
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].reorder) dnnl_primitive_destroy(e->args[i].reorder);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    memset(e, 0, sizeof *e);
}

static int build(entry *e) {
    const nn_conv_geom *g = &e->g;
    dnnl_convolution_desc_t d, fd;
    dnnl_primitive_desc_t hint = NULL;
    if (conv_desc(g, e->kind, e->bias, &d) < 0) return -1;
    if (e->kind != NN_DNNL_FORWARD) { /* backward needs the forward's descriptor as a hint */
        if (conv_desc(g, NN_DNNL_FORWARD, e->bias, &fd) < 0 ||
            dnnl_primitive_desc_create(&hint, &fd, NULL, T.engine, NULL) != dnnl_success)
            return -1;
    }
    dnnl_status_t st = dnnl_primitive_desc_create(&e->pd, &d, NULL, T.engine, hint);
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (st != dnnl_success) return -1;
    if (dnnl_primitive_create(&e->prim, e->pd) != dnnl_success) return -1;
    dnnl_memory_desc_t x, w, b, y;
    plain(g, &x, &w, &b, &y, dnnl_nchw, dnnl_oihw);
    int rc = 0;
    if (e->kind == NN_DNNL_FORWARD) {
        rc |= add_arg(e, DNNL_ARG_SRC, &x, dnnl_query_src_md, 0);
        rc |= add_arg(e, DNNL_ARG_WEIGHTS, &w, dnnl_query_weights_md, 0);
        rc |= add_arg(e, DNNL_ARG_DST, &y, dnnl_query_dst_md, 1);
    } else if (e->kind == NN_DNNL_BACKWARD_DATA) {
        rc |= add_arg(e, DNNL_ARG_DIFF_DST, &y, dnnl_query_diff_dst_md, 0);
        rc |= add_arg(e, DNNL_ARG_WEIGHTS, &w, dnnl_query_weights_md, 0);
        rc |= add_arg(e, DNNL_ARG_DIFF_SRC, &x, dnnl_query_diff_src_md, 1);
    } else {
        rc |= add_arg(e, DNNL_ARG_SRC, &x, dnnl_query_src_md, 0);
        rc |= add_arg(e, DNNL_ARG_DIFF_DST, &y, dnnl_query_diff_dst_md, 0);
        rc |= add_arg(e, DNNL_ARG_DIFF_WEIGHTS, &w, dnnl_query_diff_weights_md, 1);
    }
    return rc ? -1 : 0;
}

/* the cached primitive for (kind, g, bias), built on a miss in a slot not
 * looked up since the last begin() (entries the caller still holds) */
static void begin(void) { T.call++; }

static entry *lookup(nn_dnnl_kind kind, const nn_conv_geom *g, int bias) {
    for (int i = 0; i < CACHE; i++) {
        entry *e = &T.cache[i];
        if (e->used && e->kind == kind && e->bias == bias && same_geom(&e->g, g)) {
            e->stamp = T.call;
            return e;
        }
    }
    while (T.cache[T.next].stamp == T.call) T.next = (T.next + 1) % CACHE;
    entry *e = &T.cache[T.next];
    T.next = (T.next + 1) % CACHE;
    release(e);
    *e = (entry){.used = 1, .kind = kind, .g = *g, .bias = bias};
    if (build(e) < 0) {
        release(e);
        *e = (entry){.used = 1, .failed = 1, .kind = kind, .g = *g, .bias = bias};
    }
    e->stamp = T.call;
    return e;
}

/* a buffer for an argument in the primitive's layout */
static nn_tensor *layout_buffer(const conv_arg *a) {
    return nn_empty(NN_F32, 1, (int64_t[]){(int64_t)(dnnl_memory_desc_get_size(&a->prim) / 4)});
}

/* Runs entry e. ptr[i] is the plain data of e->args[i]. An input whose
 * layout differs is reordered into a buffer, unless pre[i] already holds
 * it in that layout; keep[i] (when given) receives the reordered buffer. */
static int run(entry *e, void *const *ptr, nn_tensor *const *pre, nn_tensor **const *keep,
               const float *bias, float *out_bias) {
    dnnl_memory_t mem[MAX_ARGS + 1] = {0}, user[MAX_ARGS] = {0};
    nn_tensor *buf[MAX_ARGS] = {0};
    dnnl_exec_arg_t exec[MAX_ARGS + 1];
    int n = 0, rc = 0;
    for (int i = 0; i < e->nargs && rc == 0; i++) {
        conv_arg *a = &e->args[i];
        if (!a->reorder) {
            rc = dnnl_memory_create(&mem[i], &a->user, T.engine, ptr[i]) == dnnl_success ? 0 : -1;
        } else if (pre && pre[i]) {
            rc = dnnl_memory_create(&mem[i], &a->prim, T.engine, nn_f32(pre[i])) == dnnl_success ? 0 : -1;
        } else {
            buf[i] = layout_buffer(a);
            rc = buf[i] && dnnl_memory_create(&mem[i], &a->prim, T.engine, nn_f32(buf[i])) == dnnl_success &&
                         dnnl_memory_create(&user[i], &a->user, T.engine, ptr[i]) == dnnl_success
                     ? 0 : -1;
            if (rc == 0 && !a->output) {
                dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, user[i]}, {DNNL_ARG_TO, mem[i]}};
                rc = dnnl_primitive_execute(a->reorder, T.stream, 2, r) == dnnl_success ? 0 : -1;
            }
        }
        exec[n++] = (dnnl_exec_arg_t){a->id, mem[i]};
    }
    dnnl_memory_t bmem = NULL;
    if (rc == 0 && (bias || out_bias)) { /* plain 1-D: no reorder */
        dnnl_memory_desc_t b;
        md(&b, 1, (int64_t[]){e->g.co}, dnnl_x);
        rc = dnnl_memory_create(&bmem, &b, T.engine, bias ? (void *)bias : out_bias) == dnnl_success ? 0 : -1;
        exec[n++] = (dnnl_exec_arg_t){bias ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS, bmem};
    }
    if (rc == 0) rc = dnnl_primitive_execute(e->prim, T.stream, n, exec) == dnnl_success ? 0 : -1;
    for (int i = 0; rc == 0 && i < e->nargs; i++) {
        conv_arg *a = &e->args[i];
        if (!a->output || !a->reorder) continue;
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, mem[i]}, {DNNL_ARG_TO, user[i]}};
        rc = dnnl_primitive_execute(a->reorder, T.stream, 2, r) == dnnl_success ? 0 : -1;
    }
    if (rc == 0) rc = dnnl_stream_wait(T.stream) == dnnl_success ? 0 : -1;
    for (int i = 0; i < e->nargs; i++) {
        if (mem[i]) dnnl_memory_destroy(mem[i]);
        if (user[i]) dnnl_memory_destroy(user[i]);
        if (rc == 0 && keep && keep[i] && buf[i]) *keep[i] = nn_retain(buf[i]);
        nn_release(buf[i]);
    }
    if (bmem) dnnl_memory_destroy(bmem);
    if (rc < 0) return nn_failed(0, "conv2d: oneDNN failed to run a convolution it had built");
    return 1;
}

/* e's argument a takes what f's argument b was reordered to (so a buffer
 * made for b serves a) */
static int same_layout(const entry *e, int a, const entry *f, int b) {
    return e->args[a].reorder && f->args[b].reorder &&
           dnnl_memory_desc_equal(&e->args[a].prim, &f->args[b].prim);
}

/* argument order as build() adds them */
enum { FWD_SRC, FWD_W, FWD_DST };
enum { BWD_DST, BWD_W, BWD_DX };
enum { BWW_SRC, BWW_DST, BWW_DW };

int nn_dnnl_conv_forward(const nn_conv_geom *g, const float *x, const float *w, const float *bias,
                         float *y, nn_tensor **keep_x) {
    if (keep_x) *keep_x = NULL;
    if (g->bf16 || !ready()) return 0;
    begin();
    entry *e = lookup(NN_DNNL_FORWARD, g, bias != NULL);
    if (e->failed) return 0;
    /* the weight gradient's primitive (with or without a bias gradient)
     * takes x in the layout it is about to be reordered to: keep that copy */
    nn_tensor **kx = NULL;
    if (keep_x) {
        entry *b0 = lookup(NN_DNNL_BACKWARD_WEIGHTS, g, 0), *b1 = lookup(NN_DNNL_BACKWARD_WEIGHTS, g, 1);
        if (!b0->failed && !b1->failed && same_layout(b0, BWW_SRC, e, FWD_SRC) &&
            same_layout(b1, BWW_SRC, e, FWD_SRC))
            kx = keep_x;
    }
    void *ptr[] = {(void *)x, (void *)w, y};
    return run(e, ptr, NULL, (nn_tensor **[]){kx, NULL, NULL}, bias, NULL);
}

int nn_dnnl_conv_backward(const nn_conv_geom *g, const float *dy, const float *w, const float *x,
                          nn_tensor *x_kept, float *dx, float *dw, float *db) {
    if (g->bf16 || !ready()) return 0;
    begin();
    entry *bd = dx ? lookup(NN_DNNL_BACKWARD_DATA, g, 0) : NULL;
    entry *bw = dw ? lookup(NN_DNNL_BACKWARD_WEIGHTS, g, db != NULL) : NULL;
    if ((bd && bd->failed) || (bw && bw->failed)) return 0;
    nn_tensor *dy_kept = NULL; /* one reorder of dy serves both when they take one layout */
    int rc = 1;
    if (dx) {
        int share = bw && same_layout(bw, BWW_DST, bd, BWD_DST);
        void *ptr[] = {(void *)dy, (void *)w, dx};
        rc = run(bd, ptr, NULL, (nn_tensor **[]){share ? &dy_kept : NULL, NULL, NULL}, NULL, NULL);
    }
    if (rc == 1 && dw) {
        void *ptr[] = {(void *)x, (void *)dy, dw};
        rc = run(bw, ptr, (nn_tensor *[]){x_kept, dy_kept, NULL}, NULL, NULL, db);
    }
    nn_release(dy_kept);
    return rc;
}

const char *nn_conv_backend(void) { return "onednn"; }

#else

const char *nn_conv_backend(void) { return "im2col"; }

int nn_dnnl_conv_forward(const nn_conv_geom *g, const float *x, const float *w, const float *bias,
                         float *y, nn_tensor **keep_x) {
    (void)g, (void)x, (void)w, (void)bias, (void)y;
    if (keep_x) *keep_x = NULL;
    return 0;
}

int nn_dnnl_conv_backward(const nn_conv_geom *g, const float *dy, const float *w, const float *x,
                          nn_tensor *x_kept, float *dx, float *dw, float *db) {
    (void)g, (void)dy, (void)w, (void)x, (void)x_kept, (void)dx, (void)dw, (void)db;
    return 0;
}

#endif
