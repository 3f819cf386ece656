/* llayers.c -- built-in layers as C userdata: nn.Linear(784, 256) is
 * callable, holds its parameter tensors (in its user value, a table),
 * and has parameters(), named_parameters(), train(), eval(), zero_grad()
 * and readable fields (layer.weight, layer.in_features, layer.training).
 * Parameters are initialised as PyTorch 1.13 does by default. Forward
 * calls the engine's fused ops; the layer keeps no activations. */
#include "lnnlua.h"

#include <math.h>
#include <string.h>

#define NNL_LAYER "nnlua.Layer"

typedef enum {
    L_LINEAR, L_EMBEDDING, L_LAYERNORM, L_RMSNORM, L_DROPOUT, L_RELU, L_GELU,
    L_SILU, L_TANH, L_SIGMOID, L_SOFTMAX, L_LEAKYRELU, L_CONV2D, L_MAXPOOL2D,
    L_AVGPOOL2D, L_FLATTEN, L_KIND_COUNT
} layer_kind;

static const char *const kind_names[L_KIND_COUNT] = {
    "Linear", "Embedding", "LayerNorm", "RMSNorm", "Dropout", "ReLU", "GELU",
    "SiLU", "Tanh", "Sigmoid", "Softmax", "LeakyReLU", "Conv2d", "MaxPool2d",
    "AvgPool2d", "Flatten"};

/* Named integer and float settings, per kind, in a fixed order. */
typedef struct {
    layer_kind kind;
    int training;
    int nint, nflt;
    const char *int_names[8];
    int64_t ints[8];
    const char *flt_names[4];
    double flts[4];
} layer;

static layer *checklayer(lua_State *L, int arg) {
    return luaL_checkudata(L, arg, NNL_LAYER);
}

static void set_int(layer *l, const char *name, int64_t v) {
    l->int_names[l->nint] = name;
    l->ints[l->nint++] = v;
}

static void set_flt(layer *l, const char *name, double v) {
    l->flt_names[l->nflt] = name;
    l->flts[l->nflt++] = v;
}

/* two ints in one setting, without shifting negative values */
static int64_t pack2(int a, int b) {
    return (int64_t)(((uint64_t)(uint32_t)b << 32) | (uint32_t)a);
}

static int64_t get_int(const layer *l, const char *name) {
    for (int i = 0; i < l->nint; i++)
        if (!strcmp(l->int_names[i], name)) return l->ints[i];
    return 0;
}

static double get_flt(const layer *l, const char *name) {
    for (int i = 0; i < l->nflt; i++)
        if (!strcmp(l->flt_names[i], name)) return l->flts[i];
    return 0;
}

/* ---- construction --------------------------------------------------------- */

static layer *new_layer(lua_State *L, layer_kind kind) {
    lua_settop(L, 8); /* arguments keep their indices (nil when absent) */
    layer *l = lua_newuserdatauv(L, sizeof *l, 1);
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->training = 1;
    luaL_setmetatable(L, NNL_LAYER);
    lua_newtable(L); /* parameters by name, and "_order": their names */
    lua_newtable(L);
    lua_setfield(L, -2, "_order");
    lua_setiuservalue(L, -2, 1);
    return l;
}

/* adds a parameter (stealing t) to the layer on top of the stack */
static void add_param(lua_State *L, const char *name, nn_tensor *t) {
    if (!t) nnL_engine_error(L);
    nn_set_requires_grad(t, 1);
    lua_getiuservalue(L, -1, 1);
    nnL_push(L, t);
    lua_setfield(L, -2, name);
    lua_getfield(L, -1, "_order");
    lua_pushstring(L, name);
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    lua_pop(L, 2);
}

static nn_tensor *uniform(lua_State *L, int ndim, const int64_t *shape, double bound) {
    nn_tensor *u = nn_rand(nnL_rng(L), ndim, shape);
    if (!u) return NULL;
    float *d = nn_data(u);
    for (int64_t i = 0; i < nn_numel(u); i++) d[i] = (float)((2 * d[i] - 1) * bound);
    return u;
}

static int64_t checkpos(lua_State *L, int arg, const char *what) {
    lua_Integer v = luaL_checkinteger(L, arg);
    if (v < 1) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be positive", what));
    return v;
}


/* Linear(in, out[, {bias = true}]): weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)) */
static int new_linear(lua_State *L) {
    int64_t in = checkpos(L, 1, "in_features"), out = checkpos(L, 2, "out_features");
    int bias = nnL_optboolfield(L, 3, "bias", 1);
    layer *l = new_layer(L, L_LINEAR);
    set_int(l, "in_features", in);
    set_int(l, "out_features", out);
    set_int(l, "with_bias", bias);
    double bound = 1.0 / sqrt((double)in);
    add_param(L, "weight", uniform(L, 2, (int64_t[]){out, in}, bound));
    if (bias) add_param(L, "bias", uniform(L, 1, &out, bound));
    return 1;
}

/* Embedding(num, dim[, {padding_idx=, max_norm=, norm_type=2}]): N(0, 1),
 * the padding row zero */
static int new_embedding(lua_State *L) {
    int64_t num = checkpos(L, 1, "num_embeddings"), dim = checkpos(L, 2, "embedding_dim");
    lua_Integer pad = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "padding_idx");
        pad = luaL_optinteger(L, -1, 0);
        lua_pop(L, 1);
        if (pad < 0) pad += num + 1;
        if (pad && (pad < 1 || pad > num))
            return luaL_argerror(L, 3, "padding_idx out of range");
    }
    layer *l = new_layer(L, L_EMBEDDING);
    set_int(l, "num_embeddings", num);
    set_int(l, "embedding_dim", dim);
    set_int(l, "padding_idx", pad); /* 0: none (indices count from 1) */
    set_flt(l, "max_norm", nnL_optnumfield(L, 3, "max_norm", 0));
    set_flt(l, "norm_type", nnL_optnumfield(L, 3, "norm_type", 2));
    nn_tensor *w = nn_randn(nnL_rng(L), 2, (int64_t[]){num, dim});
    if (w && pad) memset((float *)nn_data(w) + (pad - 1) * dim, 0, dim * sizeof(float));
    add_param(L, "weight", w);
    return 1;
}

/* normalized shape: a number or a table of trailing sizes */
static int64_t norm_features(lua_State *L, int arg, int64_t *shape, int *nd) {
    if (lua_istable(L, arg)) *nd = nnL_checkshape(L, arg, shape);
    else { shape[0] = checkpos(L, arg, "normalized size"); *nd = 1; }
    if (*nd < 1) luaL_argerror(L, arg, "empty normalized shape");
    int64_t c = 1;
    for (int i = 0; i < *nd; i++) c *= shape[i];
    return c;
}

/* LayerNorm(shape[, {eps = 1e-5, elementwise_affine = true, bias = true}]) */
static int new_layernorm(lua_State *L) {
    int64_t shape[NN_MAX_DIMS];
    int nd;
    norm_features(L, 1, shape, &nd);
    int affine = nnL_optboolfield(L, 2, "elementwise_affine", 1), bias = nnL_optboolfield(L, 2, "bias", 1);
    layer *l = new_layer(L, L_LAYERNORM);
    set_int(l, "ndims", nd);
    set_flt(l, "eps", nnL_optnumfield(L, 2, "eps", 1e-5));
    if (affine) add_param(L, "weight", nn_full(nd, shape, 1));
    if (affine && bias) add_param(L, "bias", nn_zeros(NN_F32, nd, shape));
    return 1;
}

/* RMSNorm(shape[, {eps = 1e-6, elementwise_affine = true}]) */
static int new_rmsnorm(lua_State *L) {
    int64_t shape[NN_MAX_DIMS];
    int nd;
    norm_features(L, 1, shape, &nd);
    layer *l = new_layer(L, L_RMSNORM);
    set_int(l, "ndims", nd);
    set_flt(l, "eps", nnL_optnumfield(L, 2, "eps", 1e-6));
    if (nnL_optboolfield(L, 2, "elementwise_affine", 1)) add_param(L, "weight", nn_full(nd, shape, 1));
    return 1;
}

static int new_dropout(lua_State *L) {
    double p = luaL_optnumber(L, 1, 0.5);
    if (!(p >= 0 && p <= 1)) return luaL_argerror(L, 1, "probability must be in [0, 1]");
    set_flt(new_layer(L, L_DROPOUT), "p", p);
    return 1;
}

static int simple(lua_State *L, layer_kind k) { new_layer(L, k); return 1; }
static int new_relu(lua_State *L) { return simple(L, L_RELU); }
static int new_silu(lua_State *L) { return simple(L, L_SILU); }
static int new_tanh(lua_State *L) { return simple(L, L_TANH); }
static int new_sigmoid(lua_State *L) { return simple(L, L_SIGMOID); }

/* GELU([{approximate = 'none' | 'tanh'}]) */
static int new_gelu(lua_State *L) {
    int tanh_form = 0;
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "approximate");
        static const char *const modes[] = {"none", "tanh", NULL};
        tanh_form = luaL_checkoption(L, -1, "none", modes);
        lua_pop(L, 1);
    }
    set_int(new_layer(L, L_GELU), "tanh", tanh_form);
    return 1;
}

static int new_softmax(lua_State *L) {
    lua_Integer d = luaL_optinteger(L, 1, -1);
    if (d == 0) return luaL_argerror(L, 1, "dims count from 1 (or -1 for the last)");
    set_int(new_layer(L, L_SOFTMAX), "dim", d);
    return 1;
}

static int new_leakyrelu(lua_State *L) {
    double slope = luaL_optnumber(L, 1, 0.01);
    set_flt(new_layer(L, L_LEAKYRELU), "negative_slope", slope);
    return 1;
}

/* Flatten([first = 2[, last = -1]]): keeps the batch dim */
static int new_flatten(lua_State *L) {
    lua_Integer first = luaL_optinteger(L, 1, 2), last = luaL_optinteger(L, 2, -1);
    if (first == 0 || last == 0) return luaL_argerror(L, first ? 2 : 1, "dims count from 1");
    layer *l = new_layer(L, L_FLATTEN);
    set_int(l, "start_dim", first);
    set_int(l, "end_dim", last);
    return 1;
}

/* Conv2d(in, out, kernel[, {stride=1, padding=0, dilation=1, bias=true}]) */
static int new_conv2d(lua_State *L) {
    int64_t in = checkpos(L, 1, "in_channels"), out = checkpos(L, 2, "out_channels");
    int k[2], s[2], p[2], d[2];
    luaL_checkany(L, 3);
    nnL_pair(L, 3, "kernel_size", k, 0);
    nnL_pair_field(L, 4, "stride", s, 1);
    nnL_pair_field(L, 4, "padding", p, 0);
    nnL_pair_field(L, 4, "dilation", d, 1);
    int bias = nnL_optboolfield(L, 4, "bias", 1);
    if (k[0] < 1 || k[1] < 1) return luaL_argerror(L, 3, "kernel_size must be positive");
    if (s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || p[0] < 0 || p[1] < 0)
        return luaL_argerror(L, 4, "stride and dilation must be >= 1, padding >= 0");
    layer *l = new_layer(L, L_CONV2D);
    set_int(l, "in_channels", in);
    set_int(l, "out_channels", out);
    set_int(l, "kh", k[0]); set_int(l, "kw", k[1]);
    set_int(l, "stride", pack2(s[0], s[1]));
    set_int(l, "padding", pack2(p[0], p[1]));
    set_int(l, "dilation", pack2(d[0], d[1]));
    double bound = 1.0 / sqrt((double)(in * k[0] * k[1]));
    add_param(L, "weight", uniform(L, 4, (int64_t[]){out, in, k[0], k[1]}, bound));
    if (bias) add_param(L, "bias", uniform(L, 1, &out, bound));
    return 1;
}

/* MaxPool2d(kernel[, {stride = kernel, padding = 0}]) and AvgPool2d */
static int new_pool(lua_State *L, layer_kind kind) {
    int k[2], s[2], p[2];
    luaL_checkany(L, 1);
    nnL_pair(L, 1, "kernel_size", k, 0);
    nnL_pair_field(L, 2, "stride", s, 0);
    if (s[0] == 0) memcpy(s, k, sizeof s);
    nnL_pair_field(L, 2, "padding", p, 0);
    if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1 || p[0] < 0 || p[1] < 0)
        return luaL_argerror(L, 1, "kernel and stride must be >= 1, padding >= 0");
    layer *l = new_layer(L, kind);
    set_int(l, "kernel", pack2(k[0], k[1]));
    set_int(l, "stride", pack2(s[0], s[1]));
    set_int(l, "padding", pack2(p[0], p[1]));
    return 1;
}

static int new_maxpool(lua_State *L) { return new_pool(L, L_MAXPOOL2D); }
static int new_avgpool(lua_State *L) { return new_pool(L, L_AVGPOOL2D); }

/* ---- forward ------------------------------------------------------------- */

/* The layer's parameter `name` (NULL when it has none), left on the stack
 * for the rest of the call so that replacing it mid-call cannot free it. */
static nn_tensor *param(lua_State *L, int layer_idx, const char *name) {
    lua_getiuservalue(L, layer_idx, 1);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) return NULL;
    nnL_tensor *u = luaL_testudata(L, -1, NNL_TENSOR);
    if (!u || !u->t)
        nnL_error(L, "%s.%s is %s", kind_names[checklayer(L, layer_idx)->kind],
                  name, u ? "a closed tensor" : luaL_typename(L, -1));
    return u->t;
}

static void unpack2(int64_t v, int *out) {
    out[0] = (int32_t)(uint32_t)((uint64_t)v & 0xffffffffu);
    out[1] = (int32_t)(uint32_t)((uint64_t)v >> 32);
}

static int layer_call(lua_State *L) {
    layer *l = checklayer(L, 1);
    nn_tensor *x = nnL_checktensor(L, 2);
    nn_tensor *w = param(L, 1, "weight"), *b = param(L, 1, "bias");
    int dims[NN_MAX_DIMS];
    switch (l->kind) {
    case L_LINEAR: NNL_RETURN(nn_linear(x, w, b));
    case L_EMBEDDING: {
        if (x->dtype != NN_I64) return luaL_argerror(L, 2, "indices must be an i64 tensor");
        if (get_flt(l, "max_norm") > 0) {
            int prev = nn_set_grad_enabled(0);
            int rc = nn_embedding_renorm_(w, x, get_flt(l, "max_norm"),
                                          get_flt(l, "norm_type"), NNL_BASE);
            nn_set_grad_enabled(prev);
            if (rc < 0) return nnL_engine_error(L);
        }
        int64_t pad = get_int(l, "padding_idx");
        NNL_RETURN(nn_embedding(x, w, pad ? pad : -1, NNL_BASE));
    }
    case L_LAYERNORM:
        NNL_RETURN(nn_layer_norm(x, (int)get_int(l, "ndims"), w, b, get_flt(l, "eps")));
    case L_RMSNORM:
        NNL_RETURN(nn_rms_norm(x, (int)get_int(l, "ndims"), w, get_flt(l, "eps")));
    case L_DROPOUT: NNL_RETURN(nn_dropout(nnL_rng(L), x, get_flt(l, "p"), l->training));
    case L_RELU: NNL_RETURN(nn_unary(NN_RELU, x, 0, 0));
    case L_GELU: NNL_RETURN(nn_unary(get_int(l, "tanh") ? NN_GELU_TANH : NN_GELU, x, 0, 0));
    case L_SILU: NNL_RETURN(nn_unary(NN_SILU, x, 0, 0));
    case L_TANH: NNL_RETURN(nn_unary(NN_TANH, x, 0, 0));
    case L_SIGMOID: NNL_RETURN(nn_unary(NN_SIGMOID, x, 0, 0));
    case L_LEAKYRELU: NNL_RETURN(nn_unary(NN_LEAKY_RELU, x, get_flt(l, "negative_slope"), 0));
    case L_SOFTMAX: {
        int64_t d = get_int(l, "dim");
        if (d > x->ndim || d < -x->ndim)
            return nnL_error(L, "Softmax over dim %d of a %d-dim input", (int)d, x->ndim);
        NNL_RETURN(nn_softmax(x, d > 0 ? (int)d - 1 : (int)d));
    }
    case L_FLATTEN: {
        int64_t a = get_int(l, "start_dim"), e = get_int(l, "end_dim");
        a = a < 0 ? a + x->ndim : a - 1;
        e = e < 0 ? e + x->ndim : e - 1;
        if (a < 0 || e >= x->ndim || e < a)
            return nnL_error(L, "Flatten dims out of range for a %d-dim input", x->ndim);
        int64_t shape[NN_MAX_DIMS];
        int k = 0;
        for (int i = 0; i < a; i++) shape[k++] = x->shape[i];
        shape[k] = 1;
        for (int64_t i = a; i <= e; i++) shape[k] *= x->shape[i];
        k++;
        for (int64_t i = e + 1; i < x->ndim; i++) shape[k++] = x->shape[i];
        NNL_RETURN(nn_reshape(x, k, shape));
    }
    case L_CONV2D: {
        int s[2], p[2], d[2];
        unpack2(get_int(l, "stride"), s);
        unpack2(get_int(l, "padding"), p);
        unpack2(get_int(l, "dilation"), d);
        NNL_RETURN(nn_conv2d(x, w, b, s, p, d));
    }
    case L_MAXPOOL2D:
    case L_AVGPOOL2D: {
        int k[2], s[2], p[2];
        unpack2(get_int(l, "kernel"), k);
        unpack2(get_int(l, "stride"), s);
        unpack2(get_int(l, "padding"), p);
        NNL_RETURN(l->kind == L_MAXPOOL2D ? nn_max_pool2d(x, k, s, p)
                                          : nn_avg_pool2d(x, k, s, p));
    }
    case L_KIND_COUNT: break;
    }
    (void)dims;
    return 0;
}

/* ---- methods --------------------------------------------------------------- */

/* named_parameters([prefix]): an iterator of name, tensor in order */
static int named_iter(lua_State *L) {
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(2));
    lua_getfield(L, lua_upvalueindex(1), "_order");
    if (lua_rawgeti(L, -1, i) == LUA_TNIL) return 0;
    const char *name = lua_tostring(L, -1);
    lua_pushfstring(L, "%s%s", lua_tostring(L, lua_upvalueindex(3)), name);
    lua_getfield(L, lua_upvalueindex(1), name);
    return 2;
}

static int l_named_parameters(lua_State *L) {
    checklayer(L, 1);
    const char *prefix = luaL_optstring(L, 2, "");
    lua_getiuservalue(L, 1, 1);
    lua_pushinteger(L, 0);
    if (*prefix) lua_pushfstring(L, "%s.", prefix);
    else lua_pushliteral(L, "");
    nnL_pushcclosure(L, named_iter, 3);
    return 1;
}

static int l_parameters(lua_State *L) {
    checklayer(L, 1);
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "_order");
    lua_Integer n = luaL_len(L, -1);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_gettable(L, -4);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

static int l_train(lua_State *L) {
    checklayer(L, 1)->training = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    lua_settop(L, 1);
    return 1;
}

static int l_eval(lua_State *L) {
    checklayer(L, 1)->training = 0;
    lua_settop(L, 1);
    return 1;
}

static int l_zero_grad(lua_State *L) {
    checklayer(L, 1);
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "_order");
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
        lua_gettable(L, -3);
        nn_tensor *t = nnL_testtensor(L, -1);
        if (t) {
            nn_release(t->grad);
            t->grad = NULL;
        }
        lua_pop(L, 1);
    }
    return 0;
}

static int l_tostring(lua_State *L) {
    layer *l = checklayer(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, kind_names[l->kind]);
    luaL_addchar(&b, '(');
    for (int i = 0; i < l->nint; i++) {
        if (i) luaL_addstring(&b, ", ");
        lua_pushfstring(L, "%s=%I", l->int_names[i], (lua_Integer)l->ints[i]);
        luaL_addvalue(&b);
    }
    for (int i = 0; i < l->nflt; i++) {
        if (i || l->nint) luaL_addstring(&b, ", ");
        lua_pushfstring(L, "%s=%f", l->flt_names[i], l->flts[i]);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    return 1;
}

static int l_index(lua_State *L) {
    layer *l = checklayer(L, 1);
    const char *key = luaL_checkstring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    lua_getiuservalue(L, 1, 1);
    if (lua_getfield(L, -1, key) != LUA_TNIL && strcmp(key, "_order")) return 1;
    if (!strcmp(key, "training")) return lua_pushboolean(L, l->training), 1;
    if (!strcmp(key, "kind")) return lua_pushstring(L, kind_names[l->kind]), 1;
    for (int i = 0; i < l->nint; i++)
        if (!strcmp(key, l->int_names[i])) return lua_pushinteger(L, l->ints[i]), 1;
    for (int i = 0; i < l->nflt; i++)
        if (!strcmp(key, l->flt_names[i])) return lua_pushnumber(L, l->flts[i]), 1;
    return 0;
}

/* layer.weight = t: replaces a parameter with a tensor of the same shape */
static int l_newindex(lua_State *L) {
    layer *l = checklayer(L, 1);
    const char *key = luaL_checkstring(L, 2);
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, key);
    nn_tensor *old = strcmp(key, "_order") ? nnL_testtensor(L, -1) : NULL;
    if (!old)
        return nnL_error(L, "%s has no parameter '%s'", kind_names[l->kind], key);
    nn_tensor *t = nnL_checktensor(L, 3);
    if (!nn_same_shape(t, old) || t->dtype != NN_F32) {
        char a[96], b[96];
        return nnL_error(L, "%s.%s must be an f32 tensor of shape %s (got %s)",
                         kind_names[l->kind], key, nn_shape_str(old, a, 96),
                         nn_shape_str(t, b, 96));
    }
    if (!nn_is_leaf(t)) return nnL_error(L, "a parameter must be a leaf tensor");
    nn_set_requires_grad(t, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -3, key);
    return 0;
}

static int l_is_layer(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, NNL_LAYER) != NULL);
    return 1;
}

void nnL_open_layers(lua_State *L) {
    static const luaL_Reg ctors[] = {
        {"Linear", new_linear}, {"Embedding", new_embedding},
        {"LayerNorm", new_layernorm}, {"RMSNorm", new_rmsnorm},
        {"Dropout", new_dropout}, {"ReLU", new_relu}, {"GELU", new_gelu},
        {"SiLU", new_silu}, {"Tanh", new_tanh}, {"Sigmoid", new_sigmoid},
        {"Softmax", new_softmax}, {"LeakyReLU", new_leakyrelu},
        {"Conv2d", new_conv2d}, {"MaxPool2d", new_maxpool},
        {"AvgPool2d", new_avgpool}, {"Flatten", new_flatten},
        {"is_layer", l_is_layer}, {NULL, NULL}};
    static const luaL_Reg methods[] = {
        {"forward", layer_call}, {"parameters", l_parameters},
        {"named_parameters", l_named_parameters}, {"train", l_train},
        {"eval", l_eval}, {"zero_grad", l_zero_grad}, {NULL, NULL}};
    nnL_setfuncs(L, ctors, 0);
    luaL_newmetatable(L, NNL_LAYER);
    nnL_pushcclosure(L, layer_call, 0);
    lua_setfield(L, -2, "__call");
    nnL_pushcclosure(L, l_tostring, 0);
    lua_setfield(L, -2, "__tostring");
    nnL_pushcclosure(L, l_newindex, 0);
    lua_setfield(L, -2, "__newindex");
    lua_newtable(L);
    nnL_setfuncs(L, methods, 0);
    nnL_pushcclosure(L, l_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
