/* lfunctional.c -- the fused layer ops and optimizer steps as functions:
 * nn.linear, nn.layer_norm, nn.rms_norm, nn.embedding, nn.dropout,
 * nn.cross_entropy, nn.conv2d, nn.max_pool2d, nn.avg_pool2d, and the
 * in-place nn.sgd_step / adam_step / rmsprop_step / adagrad_step used by
 * lua/nnlua/optim.lua. */
#include "lnnlua.h"

#include <limits.h>
#include <math.h>
#include <string.h>



/* linear(x, weight[, bias]) */
static int l_linear(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *w = nnL_checktensor(L, 2);
    nn_tensor *b = nnL_opttensor(L, 3);
    NNL_RETURN(nn_linear(x, w, b));
}

/* layer_norm(x, n_dims[, weight[, bias[, eps]]]) */
static int l_layer_norm(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer nd = luaL_checkinteger(L, 2);
    nn_tensor *w = nnL_opttensor(L, 3), *b = nnL_opttensor(L, 4);
    double eps = luaL_optnumber(L, 5, 1e-5);
    NNL_RETURN(nn_layer_norm(x, (int)nd, w, b, eps));
}

/* rms_norm(x, n_dims[, weight[, eps]]) */
static int l_rms_norm(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer nd = luaL_checkinteger(L, 2);
    nn_tensor *w = nnL_opttensor(L, 3);
    double eps = luaL_optnumber(L, 4, 1e-6);
    NNL_RETURN(nn_rms_norm(x, (int)nd, w, eps));
}

/* embedding(idx, weight[, padding_idx]) */
static int l_embedding(lua_State *L) {
    nn_tensor *idx = nnL_checktensor(L, 1), *w = nnL_checktensor(L, 2);
    lua_Integer pad = lua_isnoneornil(L, 3) ? -1 - (lua_Integer)w->shape[0]
                                            : luaL_checkinteger(L, 3);
    if (idx->dtype != NN_I64) return luaL_argerror(L, 1, "indices must be an i64 tensor");
    NNL_RETURN(nn_embedding(idx, w, pad, NNL_BASE));
}

/* embedding_renorm_(weight, idx, max_norm[, p]) */
static int l_embedding_renorm_(lua_State *L) {
    nn_tensor *w = nnL_checktensor(L, 1), *idx = nnL_checktensor(L, 2);
    double max_norm = luaL_checknumber(L, 3), p = luaL_optnumber(L, 4, 2);
    if (idx->dtype != NN_I64) return luaL_argerror(L, 2, "indices must be an i64 tensor");
    if (nn_embedding_renorm_(w, idx, max_norm, p, NNL_BASE) < 0) return nnL_engine_error(L);
    return 0;
}

/* dropout(x, p[, training]) */
static int l_dropout(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    double p = luaL_optnumber(L, 2, 0.5);
    int training = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
    NNL_RETURN(nn_dropout(nnL_rng(L), x, p, training));
}

/* cross_entropy(logits, target[, {weight=, ignore_index=, label_smoothing=,
 * reduction='mean'|'sum'|'none'}]) */
static const char *const ce_opts[] = {"weight", "ignore_index", "label_smoothing", "reduction",
                                      NULL};
static const char *const conv_opts[] = {"stride", "padding", "dilation", "groups", NULL};
static const char *const maxpool_opts[] = {"stride", "padding", "ceil_mode", "return_indices", NULL};
static const char *const avgpool_opts[] = {"stride", "padding", "ceil_mode", NULL};
static const char *const attention_opts[] = {"mask", "causal", "scale", "dropout", "training",
                                             "need_weights", NULL};
static const char *const sgd_opts[] = {"lr", "momentum", "dampening", "weight_decay", "nesterov",
                                       "maximize", "first_step", NULL};
static const char *const adam_opts[] = {"lr", "beta1", "beta2", "eps", "weight_decay", "step",
                                        "decoupled", "maximize", NULL};
static const char *const rmsprop_opts[] = {"lr", "alpha", "eps", "weight_decay", "momentum", NULL};
static const char *const adagrad_opts[] = {"lr", "lr_decay", "weight_decay", "eps", "step", NULL};

static int l_cross_entropy(lua_State *L) {
    nnL_checkoptions(L, 3, "cross_entropy", ce_opts);
    nn_tensor *logits = nnL_checktensor(L, 1), *target = nnL_checktensor(L, 2);
    nn_tensor *weight = NULL;
    lua_Integer ignore = -100;
    int reduction = 1;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "weight");
        if (!lua_isnil(L, -1) && !(weight = nnL_testtensor(L, -1)))
            return luaL_argerror(L, 3, "weight must be a tensor");
        lua_getfield(L, 3, "ignore_index");
        ignore = luaL_optinteger(L, -1, -100);
        lua_getfield(L, 3, "reduction");
        static const char *const modes[] = {"none", "mean", "sum", NULL};
        reduction = luaL_checkoption(L, -1, "mean", modes);
        lua_pop(L, 2); /* keep weight referenced on the stack */
    } else if (!lua_isnoneornil(L, 3)) {
        return luaL_typeerror(L, 3, "table of options");
    }
    double smoothing = nnL_optnumfield(L, 3, "label_smoothing", 0);
    NNL_RETURN(nn_cross_entropy(logits, target, weight, ignore, smoothing, reduction,
                                NNL_BASE));
}

/* the integer at idx; errors blame argument arg and name it `what` */
static int pair_element(lua_State *L, int idx, int arg, const char *what) {
    int isint;
    lua_Integer v = lua_tointegerx(L, idx, &isint);
    if (!isint || v < INT_MIN || v > INT_MAX)
        luaL_argerror(L, arg, lua_pushfstring(
            L, "%s must be an integer or a pair {h, w} of integers", what));
    return (int)v;
}

/* the pair at stack index idx (def when nil) */
static void read_pair(lua_State *L, int idx, int arg, const char *what,
                      int *out, int def) {
    if (lua_isnoneornil(L, idx)) {
        out[0] = out[1] = def;
    } else if (lua_istable(L, idx)) {
        lua_geti(L, idx, 1);
        lua_geti(L, idx, 2);
        out[0] = pair_element(L, -2, arg, what);
        out[1] = pair_element(L, -1, arg, what);
        lua_pop(L, 2);
    } else {
        out[0] = out[1] = pair_element(L, idx, arg, what);
    }
}

void nnL_pair(lua_State *L, int arg, const char *what, int *out, int def) {
    read_pair(L, arg, arg, what, out, def);
}

void nnL_pair_field(lua_State *L, int t, const char *k, int *out, int def) {
    if (!lua_istable(L, t)) {
        out[0] = out[1] = def;
        return;
    }
    lua_getfield(L, t, k);
    read_pair(L, lua_gettop(L), t, k, out, def);
    lua_pop(L, 1);
}

int64_t nnL_groups_field(lua_State *L, int t) {
    double groups = nnL_optnumfield(L, t, "groups", 1);
    if (groups != floor(groups) || groups < 1 || groups > 4096)
        luaL_argerror(L, t, "groups must be an integer in 1..4096");
    return (int64_t)groups;
}

/* conv2d(x, weight[, bias[, {stride=, padding=, dilation=, groups = 1}]]) */
static int l_conv2d(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *w = nnL_checktensor(L, 2);
    nn_tensor *b = nnL_opttensor(L, 3);
    int stride[2], padding[2], dilation[2];
    nnL_checkoptions(L, 4, "conv2d", conv_opts);
    nnL_pair_field(L, 4, "stride", stride, 1);
    nnL_pair_field(L, 4, "padding", padding, 0);
    nnL_pair_field(L, 4, "dilation", dilation, 1);
    int64_t groups = nnL_groups_field(L, 4);
    NNL_RETURN(nn_conv2d_groups(x, w, b, stride, padding, dilation, groups));
}

int nnL_max_pool_call(lua_State *L, nn_tensor *x, const int *kernel, const int *stride,
                      const int *padding, int ceil_mode, int with_indices) {
    nn_tensor **slot = nnL_newslot(L), *idx = NULL;
    *slot = nn_max_pool2d_ex(x, kernel, stride, padding, ceil_mode, with_indices ? &idx : NULL,
                             NNL_BASE);
    nnL_finish(L, slot);
    if (!with_indices) return 1;
    nnL_push(L, idx);
    return 2;
}

/* max_pool2d(x, kernel[, {stride = kernel, padding = 0, ceil_mode = false,
 * return_indices = false}]) and avg_pool2d (no return_indices) */
static int pool(lua_State *L, int is_max) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int kernel[2], stride[2], padding[2];
    nnL_checkoptions(L, 3, is_max ? "max_pool2d" : "avg_pool2d", is_max ? maxpool_opts : avgpool_opts);
    nnL_pair(L, 2, "kernel_size", kernel, 0);
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "stride");
        if (lua_isnil(L, -1)) memcpy(stride, kernel, sizeof stride);
        else read_pair(L, lua_gettop(L), 3, "stride", stride, 1);
        lua_pop(L, 1);
    } else {
        memcpy(stride, kernel, sizeof stride);
    }
    nnL_pair_field(L, 3, "padding", padding, 0);
    int ceil_mode = nnL_optboolfield(L, 3, "ceil_mode", 0);
    if (is_max)
        return nnL_max_pool_call(L, x, kernel, stride, padding, ceil_mode,
                                 nnL_optboolfield(L, 3, "return_indices", 0));
    NNL_RETURN(nn_avg_pool2d_ex(x, kernel, stride, padding, ceil_mode));
}

static int l_max_pool2d(lua_State *L) { return pool(L, 1); }
static int l_avg_pool2d(lua_State *L) { return pool(L, 0); }

/* attention(q, k, v[, {mask =, causal =, scale =, dropout =, training = true,
 * need_weights =}]) -> out[, weights] */
static int l_attention(lua_State *L) {
    nn_tensor *q = nnL_checktensor(L, 1), *k = nnL_checktensor(L, 2);
    nn_tensor *v = nnL_checktensor(L, 3);
    nn_attention_args a = {NULL, 0, 0, 0, 1, nnL_rng(L)};
    int need_weights = 0;
    nnL_checkoptions(L, 4, "attention", attention_opts);
    if (lua_istable(L, 4)) {
        lua_getfield(L, 4, "mask");
        if (!lua_isnil(L, -1) && !(a.mask = nnL_testtensor(L, -1)))
            return luaL_argerror(L, 4, "mask must be a tensor");
        /* the mask stays referenced at this stack slot */
        a.causal = nnL_optboolfield(L, 4, "causal", 0);
        a.scale = nnL_optnumfield(L, 4, "scale", 0);
        a.dropout = nnL_optnumfield(L, 4, "dropout", 0);
        a.training = nnL_optboolfield(L, 4, "training", 1);
        need_weights = nnL_optboolfield(L, 4, "need_weights", 0);
    } else if (!lua_isnoneornil(L, 4)) {
        return luaL_typeerror(L, 4, "table of options");
    }
    nn_tensor **out = nnL_newslot(L), **w = need_weights ? nnL_newslot(L) : NULL;
    *out = nn_attention(q, k, v, &a, w);
    if (!*out) return nnL_engine_error(L);
    if (w) { /* out, then weights, already in that order on the stack */
        nnL_finish(L, out);
        nnL_finish(L, w);
        return 2;
    }
    return nnL_finish(L, out);
}

/* ---- optimizer steps: (param, grad, state..., {hyperparameters}) --------- */

static int l_sgd_step(lua_State *L) {
    nn_tensor *p = nnL_checktensor(L, 1), *g = nnL_checktensor(L, 2);
    nn_tensor *buf = nnL_opttensor(L, 3);
    nnL_checkoptions(L, 4, "sgd_step", sgd_opts);
    nn_sgd_args a = {nnL_optnumfield(L, 4, "lr", 1e-3), nnL_optnumfield(L, 4, "momentum", 0),
                     nnL_optnumfield(L, 4, "dampening", 0), nnL_optnumfield(L, 4, "weight_decay", 0),
                     nnL_optboolfield(L, 4, "nesterov", 0), nnL_optboolfield(L, 4, "maximize", 0),
                     nnL_optboolfield(L, 4, "first_step", 0)};
    if (nn_sgd_step(p, g, buf, &a) < 0) return nnL_engine_error(L);
    return 0;
}

static int l_adam_step(lua_State *L) {
    nn_tensor *p = nnL_checktensor(L, 1), *g = nnL_opttensor(L, 2); /* nil: sparse */
    nn_tensor *m = nnL_checktensor(L, 3), *v = nnL_checktensor(L, 4);
    nn_tensor *vmax = nnL_opttensor(L, 5);
    nnL_checkoptions(L, 6, "adam_step", adam_opts);
    nn_adam_args a = {nnL_optnumfield(L, 6, "lr", 1e-3), nnL_optnumfield(L, 6, "beta1", 0.9),
                      nnL_optnumfield(L, 6, "beta2", 0.999), nnL_optnumfield(L, 6, "eps", 1e-8),
                      nnL_optnumfield(L, 6, "weight_decay", 0), (int64_t)nnL_optnumfield(L, 6, "step", 1),
                      nnL_optboolfield(L, 6, "decoupled", 0), nnL_optboolfield(L, 6, "maximize", 0)};
    if (nn_adam_step(p, g, m, v, vmax, &a) < 0) return nnL_engine_error(L);
    return 0;
}

static int l_rmsprop_step(lua_State *L) {
    nn_tensor *p = nnL_checktensor(L, 1), *g = nnL_checktensor(L, 2);
    nn_tensor *sq = nnL_checktensor(L, 3), *buf = nnL_opttensor(L, 4), *avg = nnL_opttensor(L, 5);
    nnL_checkoptions(L, 6, "rmsprop_step", rmsprop_opts);
    nn_rmsprop_args a = {nnL_optnumfield(L, 6, "lr", 1e-2), nnL_optnumfield(L, 6, "alpha", 0.99),
                         nnL_optnumfield(L, 6, "eps", 1e-8), nnL_optnumfield(L, 6, "weight_decay", 0),
                         nnL_optnumfield(L, 6, "momentum", 0)};
    if (nn_rmsprop_step(p, g, sq, buf, avg, &a) < 0) return nnL_engine_error(L);
    return 0;
}

static int l_adagrad_step(lua_State *L) {
    nn_tensor *p = nnL_checktensor(L, 1), *g = nnL_opttensor(L, 2); /* nil: sparse */
    nn_tensor *sum = nnL_checktensor(L, 3);
    nnL_checkoptions(L, 4, "adagrad_step", adagrad_opts);
    nn_adagrad_args a = {nnL_optnumfield(L, 4, "lr", 1e-2), nnL_optnumfield(L, 4, "lr_decay", 0),
                         nnL_optnumfield(L, 4, "weight_decay", 0), nnL_optnumfield(L, 4, "eps", 1e-10),
                         (int64_t)nnL_optnumfield(L, 4, "step", 1)};
    if (nn_adagrad_step(p, g, sum, &a) < 0) return nnL_engine_error(L);
    return 0;
}

void nnL_open_functional(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"linear", l_linear}, {"layer_norm", l_layer_norm}, {"rms_norm", l_rms_norm},
        {"embedding", l_embedding}, {"embedding_renorm_", l_embedding_renorm_},
        {"dropout", l_dropout}, {"cross_entropy", l_cross_entropy},
        {"conv2d", l_conv2d}, {"max_pool2d", l_max_pool2d},
        {"avg_pool2d", l_avg_pool2d}, {"attention", l_attention},
        {"sgd_step", l_sgd_step},
        {"adam_step", l_adam_step}, {"rmsprop_step", l_rmsprop_step},
        {"adagrad_step", l_adagrad_step}, {NULL, NULL}};
    static const nnL_options options[] = {
        {"cross_entropy", ce_opts}, {"conv2d", conv_opts}, {"max_pool2d", maxpool_opts},
        {"avg_pool2d", avgpool_opts}, {"attention", attention_opts}, {"sgd_step", sgd_opts},
        {"adam_step", adam_opts}, {"rmsprop_step", rmsprop_opts},
        {"adagrad_step", adagrad_opts}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
