/* lfusionlayers.c -- the cross-modal fusion layers as built-in layers:
 * ConcatFusion, SumFusion, GatedFusion, BilinearFusion (MFB), FiLM and
 * CrossModalAttention. Their sublayers are built-in children (Linear,
 * LayerNorm, MultiheadAttention), called as Lua calls so forward observers
 * see them; the gates and MFB pooling are the fused kernels of
 * engine/nn/fusion.c.
 *
 * Fusion layers take a list of modality tensors (B, d_i) with their own
 * widths and an optional mask (B, M) whose zero entries mark a missing
 * modality for that sample: missing inputs are ignored (zeroed for concat,
 * left out of sums and gates). */
#include "llayer.h"

#include <string.h>

/* the widths setting: a list of 1..NNL_LIST_MAX positive integers */
static void check_dims(lua_State *L, int arg, const char *name, nnL_shape *dims) {
    luaL_checktype(L, arg, LUA_TTABLE);
    int n = nnL_checklen(L, arg, NNL_LIST_MAX);
    if (n < 1) luaL_error(L, "%s: expected 1 to %d modality widths", name, NNL_LIST_MAX);
    dims->n = n;
    for (int i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        int isint;
        lua_Integer d = lua_tointegerx(L, -1, &isint);
        if (!isint || d < 1 || d > ((lua_Integer)1 << 40))
            luaL_error(L, "%s: modality width %d must be a positive integer", name, i + 1);
        dims->v[i] = d;
        lua_pop(L, 1);
    }
}

static int64_t total_width(const nnL_shape *dims) {
    int64_t t = 0;
    for (int i = 0; i < dims->n; i++) t += dims->v[i];
    return t;
}

/* a Linear(in, out[, {bias = bias}]) child in slot `slot` of the layer on top */
static void linear_child(lua_State *L, int slot, int64_t in, int64_t out) {
    lua_pushinteger(L, in);
    lua_pushinteger(L, out);
    nnL_construct(L, &nnL_linear_class, 2);
    nnL_set_child(L, slot);
}

/* a list of Linear(dims[i], out) children in slot `slot` */
static void linear_list_child(lua_State *L, int slot, const nnL_shape *dims, int64_t out) {
    lua_pushinteger(L, dims->n);
    nnL_construct(L, &nnL_list_class, 1);
    for (int i = 0; i < dims->n; i++) linear_child(L, i, dims->v[i], out);
    nnL_set_child(L, slot);
}

/* child(args...): calls the child layer in slot `slot` of the layer at 1
 * with the nargs values on top (replaced by the result tensor) */
static nn_tensor *call_child(lua_State *L, int slot, int nargs) {
    nnL_slot_layer(L, 1, slot);
    lua_insert(L, -nargs - 1);
    lua_call(L, nargs, 1);
    return nnL_checktensor(L, -1);
}

/* entry i of a list child */
static nn_tensor *call_entry(lua_State *L, int slot, int i, nn_tensor *x) {
    nnL_slot_layer(L, 1, slot);
    lua_geti(L, -1, i + 1);
    lua_remove(L, -2);
    nnL_push(L, nn_retain(x));
    lua_call(L, 1, 1);
    return nnL_checktensor(L, -1);
}

/* Reads the list of modality tensors at arg (left on the stack, see
 * lnnlua.h) into xs and checks them and the mask at mask_arg against the
 * widths; returns the batch size. */
static int64_t check_inputs(lua_State *L, const char *name, int arg, const nnL_shape *dims,
                            nn_tensor **xs, nn_tensor **mask, int mask_arg) {
    if (!lua_istable(L, arg) || nnL_checklen(L, arg, NNL_LIST_MAX) != dims->n)
        luaL_error(L, "%s: expected a list of %d modality tensors", name, dims->n);
    int64_t b = 0;
    char s[96];
    for (int i = 0; i < dims->n; i++) {
        lua_geti(L, arg, i + 1);
        nn_tensor *x = nnL_testtensor(L, -1);
        if (!x) luaL_error(L, "%s: modality %d is not a tensor", name, i + 1);
        if (i == 0) b = x->ndim == 2 ? x->shape[0] : 0;
        if (x->ndim != 2 || x->shape[1] != dims->v[i] || x->shape[0] != b)
            luaL_error(L, "%s: modality %d is %s, expected %dx%d", name, i + 1,
                       nn_shape_str(x, s, 96), (int)b, (int)dims->v[i]);
        xs[i] = x;
    }
    *mask = lua_isnoneornil(L, mask_arg) ? NULL : nnL_checktensor(L, mask_arg);
    if (*mask && ((*mask)->ndim != 2 || (*mask)->shape[0] != b || (*mask)->shape[1] != dims->n))
        luaL_error(L, "%s: mask is %s, expected %dx%d", name, nn_shape_str(*mask, s, 96), (int)b,
                   dims->n);
    return b;
}

/* column i of the mask as a (B, 1) f32 factor: 1 where present */
static nn_tensor *present(lua_State *L, nn_tensor *mask, int i) {
    nn_tensor *col = nnL_keep(L, nn_select(mask, 1, i));
    nn_tensor *zero = nnL_keep(L, nn_scalar(col->dtype, 0));
    nn_tensor *on = nnL_keep(L, nn_binary(NN_NE, col, zero));
    return nnL_keep(L, nn_unsqueeze(on, 1));
}

/* the inputs with a missing modality's rows zeroed (xs updated in place) */
static void zero_missing(lua_State *L, nn_tensor **xs, int n, nn_tensor *mask) {
    for (int i = 0; mask && i < n; i++) xs[i] = nnL_keep(L, nn_mul(xs[i], present(L, mask, i)));
}

/* the inputs side by side (B, sum d_i); each is already on the stack */
static nn_tensor *cat_rows(lua_State *L, nn_tensor **xs, int n) {
    return nnL_keep(L, nn_cat(xs, n, 1));
}

typedef struct {
    nnL_shape dims;
    int64_t out;
    int shared;  /* SumFusion */
    int64_t factor; /* BilinearFusion */
} fusion_cfg;

static const nnL_field fusion_fields[] = {
    NNL_FIELD(NNL_F_SHAPE, fusion_cfg, dims),
    NNL_FIELD(NNL_F_INT, fusion_cfg, out), NNL_END_FIELDS};

/* ---- ConcatFusion({d_1, ..., d_M}, out): concatenation, then a projection ---- */

static void concat_build(lua_State *L, nnL_layer *l) {
    fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    check_dims(L, 1, "ConcatFusion", &c->dims);
    c->out = nnL_checkpositive(L, 2, "out");
    linear_child(L, 0, total_width(&c->dims), c->out);
}

static int concat_forward(lua_State *L, nnL_layer *l) {
    const fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    nn_tensor *xs[NNL_LIST_MAX], *mask;
    lua_settop(L, 3);
    check_inputs(L, "ConcatFusion", 2, &c->dims, xs, &mask, 3);
    zero_missing(L, xs, c->dims.n, mask);
    cat_rows(L, xs, c->dims.n);
    call_child(L, 0, 1);
    return 1;
}

static const nnL_slot concat_slots[] = {{"proj", NNL_CHILD}, {NULL, 0}};
static const nnL_layer_class concat_class = {
    "ConcatFusion", sizeof(fusion_cfg), concat_slots, fusion_fields, NULL, 0, concat_build,
    concat_forward, NULL};

/* ---- SumFusion({d_i}, out[, {shared = false}]): the sum of per-modality
 * projections (one shared projection when all widths agree and shared) ---- */

static void sum_build(lua_State *L, nnL_layer *l) {
    fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    check_dims(L, 1, "SumFusion", &c->dims);
    c->out = nnL_checkpositive(L, 2, "out");
    c->shared = nnL_optboolfield(L, 3, "shared", 0);
    if (c->shared) {
        for (int i = 1; i < c->dims.n; i++)
            if (c->dims.v[i] != c->dims.v[0])
                luaL_error(L, "SumFusion: a shared projection needs equal widths");
        linear_child(L, 0, c->dims.v[0], c->out);
    } else {
        linear_list_child(L, 1, &c->dims, c->out);
    }
}

static int sum_forward(lua_State *L, nnL_layer *l) {
    const fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    nn_tensor *xs[NNL_LIST_MAX], *mask, *total = NULL;
    lua_settop(L, 3);
    check_inputs(L, "SumFusion", 2, &c->dims, xs, &mask, 3);
    for (int i = 0; i < c->dims.n; i++) {
        nn_tensor *h;
        if (c->shared) {
            nnL_push(L, nn_retain(xs[i]));
            h = call_child(L, 0, 1);
        } else {
            h = call_entry(L, 1, i, xs[i]);
        }
        if (mask) h = nnL_keep(L, nn_mul(h, present(L, mask, i)));
        total = total ? nnL_keep(L, nn_add(total, h)) : h;
    }
    return 1; /* total, the last tensor kept */
}

static const nnL_slot sum_slots[] = {{"proj", NNL_CHILD}, {"projs", NNL_CHILD}, {NULL, 0}};
static const nnL_field sum_fields[] = {
    NNL_FIELD(NNL_F_SHAPE, fusion_cfg, dims),
    NNL_FIELD(NNL_F_INT, fusion_cfg, out),
    NNL_FIELD(NNL_F_BOOL, fusion_cfg, shared), NNL_END_FIELDS};
static const char *const sum_opts[] = {"shared", NULL};
static const nnL_layer_class sum_class = {
    "SumFusion", sizeof(fusion_cfg), sum_slots, sum_fields, sum_opts, 3, sum_build,
    sum_forward, NULL};

/* ---- GatedFusion({d_i}, out): the gated multimodal unit (Arevalo et al.
 * 2017) for any number of modalities: h_i = W_i x_i, gates z = softmax over
 * modalities of W_z [x_1; ...; x_M] per feature, out = sum_i z_i tanh(h_i) */

static void gated_build(lua_State *L, nnL_layer *l) {
    fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    check_dims(L, 1, "GatedFusion", &c->dims);
    c->out = nnL_checkpositive(L, 2, "out");
    linear_list_child(L, 0, &c->dims, c->out);
    linear_child(L, 1, total_width(&c->dims), c->out * c->dims.n);
}

static int gated_forward(lua_State *L, nnL_layer *l) {
    const fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    nn_tensor *xs[NNL_LIST_MAX], *hs[NNL_LIST_MAX], *mask;
    lua_settop(L, 3);
    int64_t b = check_inputs(L, "GatedFusion", 2, &c->dims, xs, &mask, 3);
    int m = c->dims.n;
    zero_missing(L, xs, m, mask);
    for (int i = 0; i < m; i++) hs[i] = call_entry(L, 0, i, xs[i]);
    cat_rows(L, xs, m);
    nn_tensor *logits = call_child(L, 1, 1);
    logits = nnL_keep(L, nn_view(logits, 3, (int64_t[]){b, m, c->out}));
    nn_tensor *h = nnL_keep(L, nn_stack(hs, m, 1));
    nn_tensor *mf = mask ? nnL_keep(L, nn_to_dtype(mask, NN_F32)) : NULL;
    NNL_RETURN(nn_gated_fusion(h, logits, mf));
}

static const nnL_slot gated_slots[] = {{"projs", NNL_CHILD}, {"gate", NNL_CHILD}, {NULL, 0}};
static const nnL_layer_class gated_class = {
    "GatedFusion", sizeof(fusion_cfg), gated_slots, fusion_fields, NULL, 0, gated_build,
    gated_forward, NULL};

/* ---- BilinearFusion(d_1, d_2, out[, {factor = 5}]): low-rank bilinear
 * pooling (MFB, Yu et al. 2017): (U x_1) * (V x_2) in out*factor dims,
 * sum-pooled over each group of `factor`, then power- (signed sqrt) and
 * L2-normalised -------------------------------------------------------------- */

static void bilinear_build(lua_State *L, nnL_layer *l) {
    fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    c->dims.n = 2;
    c->dims.v[0] = nnL_checkpositive(L, 1, "d_1");
    c->dims.v[1] = nnL_checkpositive(L, 2, "d_2");
    c->out = nnL_checkpositive(L, 3, "out");
    double f = nnL_optnumfield(L, 4, "factor", 5);
    if (f < 1 || f > 1e6 || f != (double)(int64_t)f)
        luaL_error(L, "BilinearFusion: factor must be a positive integer");
    c->factor = (int64_t)f;
    linear_child(L, 0, c->dims.v[0], c->out * c->factor);
    linear_child(L, 1, c->dims.v[1], c->out * c->factor);
}

static int bilinear_forward(lua_State *L, nnL_layer *l) {
    const fusion_cfg *c = NNL_CFG(l, fusion_cfg);
    nn_tensor *xs[2], *mask;
    lua_settop(L, 3);
    check_inputs(L, "BilinearFusion", 2, &c->dims, xs, &mask, 3);
    zero_missing(L, xs, 2, mask); /* a missing modality counts as zeros */
    nnL_push(L, nn_retain(xs[0]));
    nn_tensor *u = call_child(L, 0, 1);
    nnL_push(L, nn_retain(xs[1]));
    nn_tensor *v = call_child(L, 1, 1);
    NNL_RETURN(nn_mfb_pool(u, v, c->factor));
}

static const nnL_slot bilinear_slots[] = {{"u", NNL_CHILD}, {"v", NNL_CHILD}, {NULL, 0}};
static const nnL_field bilinear_fields[] = {
    NNL_FIELD(NNL_F_SHAPE, fusion_cfg, dims),
    NNL_FIELD(NNL_F_INT, fusion_cfg, out),
    NNL_FIELD(NNL_F_INT, fusion_cfg, factor), NNL_END_FIELDS};
static const char *const bilinear_opts[] = {"factor", NULL};
static const nnL_layer_class bilinear_class = {
    "BilinearFusion", sizeof(fusion_cfg), bilinear_slots, bilinear_fields, bilinear_opts, 4,
    bilinear_build, bilinear_forward, NULL};

/* ---- FiLM(cond_dim, channels[, {channel_dim = 2}]): one modality (B,
 * cond_dim) gives a per-channel scale and shift for another whose channels
 * lie along channel_dim (2 for (B, C, H, W), -1 for (B, T, C)):
 * out = (1 + gamma) x + beta ----------------------------------------------------- */

typedef struct { int64_t cond_dim, channels, channel_dim; } film_cfg;

static void film_build(lua_State *L, nnL_layer *l) {
    film_cfg *c = NNL_CFG(l, film_cfg);
    c->cond_dim = nnL_checkpositive(L, 1, "cond_dim");
    c->channels = nnL_checkpositive(L, 2, "channels");
    double cd = nnL_optnumfield(L, 3, "channel_dim", 2);
    if (cd == 0 || cd != (double)(int)cd || cd > NN_MAX_DIMS || cd < -NN_MAX_DIMS)
        luaL_error(L, "FiLM: channel_dim counts from 1 (or from -1 for the last)");
    c->channel_dim = (int64_t)cd;
    linear_child(L, 0, c->cond_dim, 2 * c->channels);
}

static int film_forward(lua_State *L, nnL_layer *l) {
    const film_cfg *c = NNL_CFG(l, film_cfg);
    lua_settop(L, 3);
    nn_tensor *x = nnL_checktensor(L, 2), *cond = nnL_checktensor(L, 3);
    int64_t b = x->ndim ? x->shape[0] : 0, ch = c->channels;
    int64_t cd = c->channel_dim < 0 ? x->ndim + c->channel_dim + 1 : c->channel_dim; /* 1-based */
    if (cond->ndim != 2 || cond->shape[0] != b || cd < 2 || cd > x->ndim ||
        x->shape[cd - 1] != ch) {
        char s1[96], s2[96];
        return luaL_error(L, "FiLM: x %s and cond %s do not fit %d channels in dim %d",
                          nn_shape_str(x, s1, 96), nn_shape_str(cond, s2, 96), (int)ch, (int)cd);
    }
    nnL_push(L, nn_retain(cond));
    nn_tensor *gb = call_child(L, 0, 1);
    int64_t shape[NN_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = d == 0 ? b : d == cd - 1 ? ch : 1;
    nn_tensor *gamma = nnL_keep(L, nn_reshape(nnL_keep(L, nn_narrow(gb, 1, 0, ch)), x->ndim, shape));
    nn_tensor *beta = nnL_keep(L, nn_reshape(nnL_keep(L, nn_narrow(gb, 1, ch, ch)), x->ndim, shape));
    nn_tensor *one = nnL_keep(L, nn_scalar(NN_F32, 1));
    nn_tensor *scale = nnL_keep(L, nn_add(gamma, one));
    nn_tensor *scaled = nnL_keep(L, nn_mul(x, scale));
    NNL_RETURN(nn_add(scaled, beta));
}

static const nnL_slot film_slots[] = {{"film", NNL_CHILD}, {NULL, 0}};
static const nnL_field film_fields[] = {
    NNL_FIELD(NNL_F_INT, film_cfg, cond_dim),
    NNL_FIELD(NNL_F_INT, film_cfg, channels),
    NNL_FIELD(NNL_F_INT, film_cfg, channel_dim), NNL_END_FIELDS};
static const char *const film_opts[] = {"channel_dim", NULL};
static const nnL_layer_class film_class = {
    "FiLM", sizeof(film_cfg), film_slots, film_fields, film_opts, 3, film_build, film_forward,
    NULL};

/* ---- CrossModalAttention(d_query, d_context, heads[, {dropout = 0}]):
 * tokens of one modality (B, Tq, d_query) attend over another's (B, Tk,
 * d_context); context_mask (B, Tk) marks padding with nonzeros:
 * out = LayerNorm(q + attn(q, context, context)) --------------------------- */

typedef struct { int64_t d_query, d_context, heads; double dropout; } cross_cfg;

static void cross_build(lua_State *L, nnL_layer *l) {
    cross_cfg *c = NNL_CFG(l, cross_cfg);
    c->d_query = nnL_checkpositive(L, 1, "d_query");
    c->d_context = nnL_checkpositive(L, 2, "d_context");
    c->heads = nnL_checkpositive(L, 3, "heads");
    c->dropout = nnL_optnumfield(L, 4, "dropout", 0);
    lua_pushinteger(L, c->d_query);
    lua_pushinteger(L, c->heads);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, c->d_context);
    lua_setfield(L, -2, "kdim");
    lua_pushinteger(L, c->d_context);
    lua_setfield(L, -2, "vdim");
    lua_pushnumber(L, c->dropout);
    lua_setfield(L, -2, "dropout");
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_CORE_KEY); /* the MultiheadAttention constructor */
    lua_getfield(L, -1, "MultiheadAttention");
    lua_remove(L, -2);
    lua_insert(L, -4);
    lua_call(L, 3, 1);
    nnL_set_child(L, 0);
    lua_pushinteger(L, c->d_query);
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_CORE_KEY);
    lua_getfield(L, -1, "LayerNorm");
    lua_remove(L, -2);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    nnL_set_child(L, 1);
}

static int cross_forward(lua_State *L, nnL_layer *l) {
    (void)l;
    lua_settop(L, 4);
    nn_tensor *q = nnL_checktensor(L, 2), *ctx = nnL_checktensor(L, 3);
    if (q->ndim != 3 || ctx->ndim != 3 || q->shape[0] != ctx->shape[0]) {
        char s1[96], s2[96];
        return luaL_error(L, "CrossModalAttention: query %s and context %s must be (B, T, d) "
                             "with one batch", nn_shape_str(q, s1, 96), nn_shape_str(ctx, s2, 96));
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 3);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 4);
    lua_setfield(L, -2, "key_padding_mask");
    nn_tensor *a = call_child(L, 0, 4);
    nnL_push(L, nn_add(q, a));
    call_child(L, 1, 1);
    return 1;
}

static const nnL_slot cross_slots[] = {{"attn", NNL_CHILD}, {"norm", NNL_CHILD}, {NULL, 0}};
static const nnL_field cross_fields[] = {
    NNL_FIELD(NNL_F_INT, cross_cfg, d_query),
    NNL_FIELD(NNL_F_INT, cross_cfg, d_context),
    NNL_FIELD(NNL_F_INT, cross_cfg, heads),
    NNL_FIELD(NNL_F_NUM, cross_cfg, dropout), NNL_END_FIELDS};
static const char *const cross_opts[] = {"dropout", NULL};
static const nnL_layer_class cross_class = {
    "CrossModalAttention", sizeof(cross_cfg), cross_slots, cross_fields, cross_opts, 4,
    cross_build, cross_forward, NULL};

void nnL_open_fusion_layers(lua_State *L) {
    static const nnL_layer_class *const classes[] = {
        &concat_class, &sum_class, &gated_class, &bilinear_class, &film_class, &cross_class, NULL};
    nnL_register_layers(L, classes);
}
