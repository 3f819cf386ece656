/* lattnlayers.c -- MultiheadAttention as a built-in layer, with PyTorch
 * 1.13's parameter names (in_proj_weight (3E, E) and in_proj_bias, or
 * q/k/v_proj_weight when kdim or vdim differ from E; out_proj, a Linear)
 * and its default init (xavier_uniform_ projections, zero biases).
 * Inputs are batch-first (B, T, E). The projections are fused linear ops,
 * attention is the fused kernel of engine/nn/attention.c. */
#include "llayer.h"

#include <math.h>
#include <string.h>

typedef struct {
    int64_t embed_dim, num_heads, head_dim, kdim, vdim;
    double dropout;
    int bias;
} mha_cfg;

enum { IN_PROJ_WEIGHT, Q_PROJ_WEIGHT, K_PROJ_WEIGHT, V_PROJ_WEIGHT, IN_PROJ_BIAS, OUT_PROJ };

static void mha_build(lua_State *L, nnL_layer *l) {
    mha_cfg *c = NNL_CFG(l, mha_cfg);
    int64_t e = nnL_checkpositive(L, 1, "embed_dim"), h = nnL_checkpositive(L, 2, "num_heads");
    if (e % h) luaL_error(L, "MultiheadAttention: embed_dim %I is not divisible by num_heads %I",
                          (lua_Integer)e, (lua_Integer)h);
    if (!nnL_optboolfield(L, 3, "batch_first", 1))
        luaL_error(L, "MultiheadAttention: only batch_first = true is implemented");
    double kd = nnL_optnumfield(L, 3, "kdim", (double)e), vd = nnL_optnumfield(L, 3, "vdim", (double)e);
    if (kd < 1 || vd < 1 || kd != floor(kd) || vd != floor(vd) || kd > 1e9 || vd > 1e9)
        luaL_argerror(L, 3, "kdim and vdim must be positive integers");
    double p = nnL_optnumfield(L, 3, "dropout", 0);
    if (!(p >= 0 && p <= 1)) luaL_argerror(L, 3, "dropout must be in [0, 1]");
    *c = (mha_cfg){e, h, e / h, (int64_t)kd, (int64_t)vd, p, nnL_optboolfield(L, 3, "bias", 1)};
    if (c->kdim == e && c->vdim == e) {
        nnL_set_param(L, IN_PROJ_WEIGHT,
                      nnL_uniform(L, 2, (int64_t[]){3 * e, e}, sqrt(6.0 / (double)(4 * e))));
    } else {
        int64_t in[3] = {e, c->kdim, c->vdim};
        for (int i = 0; i < 3; i++)
            nnL_set_param(L, Q_PROJ_WEIGHT + i, nnL_uniform(L, 2, (int64_t[]){e, in[i]},
                                                            sqrt(6.0 / (double)(e + in[i]))));
    }
    if (c->bias) nnL_set_param(L, IN_PROJ_BIAS, nn_zeros(NN_F32, 1, (int64_t[]){3 * e}));
    lua_pushinteger(L, e);
    lua_pushinteger(L, e);
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, c->bias);
    lua_setfield(L, -2, "bias");
    nnL_construct(L, &nnL_linear_class, 3);
    if (c->bias) { /* PyTorch zeroes out_proj.bias */
        nn_tensor *b = nnL_slot_tensor(L, lua_gettop(L), 1);
        nn_fill_(b, 0);
        lua_pop(L, 1);
    }
    nnL_set_child(L, OUT_PROJ);
}

/* (B, T, H * D) -> (B, H, T, D), a view */
static nn_tensor *heads(lua_State *L, const mha_cfg *c, nn_tensor *x) {
    if (x->ndim != 3 || x->shape[2] != c->embed_dim) {
        char s[96];
        luaL_error(L, "MultiheadAttention: a projection of shape %s", nn_shape_str(x, s, 96));
    }
    nn_tensor *v = nnL_keep(L, nn_view(x, 4, (int64_t[]){x->shape[0], x->shape[1], c->num_heads,
                                                     c->head_dim}));
    return nnL_keep(L, nn_transpose(v, 1, 2));
}

/* input i's projection: rows i of in_proj_weight / in_proj_bias, or its own weight */
static nn_tensor *project(lua_State *L, const mha_cfg *c, nn_tensor *x, int i) {
    nn_tensor *w = nnL_slot_tensor(L, 1, IN_PROJ_WEIGHT);
    if (w) w = nnL_keep(L, nn_narrow(w, 0, i * c->embed_dim, c->embed_dim));
    else w = nnL_slot_tensor(L, 1, Q_PROJ_WEIGHT + i);
    nn_tensor *b = nnL_slot_tensor(L, 1, IN_PROJ_BIAS);
    if (b) b = nnL_keep(L, nn_narrow(b, 0, i * c->embed_dim, c->embed_dim));
    return nnL_keep(L, nn_linear(x, w, b));
}

/* an additive (B, 1, 1, S) mask, -inf where kpm (B, S) is nonzero */
static nn_tensor *padding_mask(lua_State *L, nn_tensor *kpm) {
    if (kpm->ndim != 2) luaL_error(L, "MultiheadAttention: key_padding_mask must be (B, S)");
    int64_t shape[4] = {kpm->shape[0], 1, 1, kpm->shape[1]};
    nn_tensor *v = nnL_keep(L, nn_view(kpm, 4, shape));
    nn_tensor *zero = nnL_keep(L, nn_scalar(v->dtype, 0));
    nn_tensor *pad = nnL_keep(L, nn_binary(NN_NE, v, zero));
    nn_tensor *z = nnL_keep(L, nn_zeros(NN_F32, 4, shape));
    return nnL_keep(L, nn_masked_fill(z, pad, -INFINITY));
}

static nn_tensor *opt_tensor_field(lua_State *L, int t, const char *k) {
    if (!lua_istable(L, t) || lua_getfield(L, t, k) == LUA_TNIL) return NULL; /* stays on the stack */
    nn_tensor *x = nnL_testtensor(L, -1);
    if (!x) luaL_error(L, "MultiheadAttention: %s must be a tensor", k);
    return x;
}

static const char *const forward_opts[] = {"key_padding_mask", "need_weights", "attn_mask",
                                           "is_causal", "cache", "memory_cache", NULL};

/* The memory_cache option: a table that keeps the projected keys and values
 * (B, H, S, D) of a fixed key/value input (an encoder's memory in
 * cross-attention) so later calls project only the query. Pushes the table
 * (or nothing) and returns its index, 0 without one; *k, *v are the kept
 * tensors once filled. */
static int memory_cache(lua_State *L, nn_tensor **k, nn_tensor **v) {
    *k = *v = NULL;
    if (!lua_istable(L, 5)) return 0;
    int type = lua_getfield(L, 5, "memory_cache");
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TTABLE) luaL_error(L, "MultiheadAttention: memory_cache must be a table, got %s",
                                       luaL_typename(L, -1));
    int mc = lua_gettop(L);
    int tk = lua_getfield(L, mc, "k"), tv = lua_getfield(L, mc, "v");
    if (tk == LUA_TNIL && tv == LUA_TNIL) {
        lua_pop(L, 2);
        return mc;
    }
    *k = nnL_checktensor(L, -2);
    *v = nnL_checktensor(L, -1);
    if ((*k)->ndim != 4 || (*v)->ndim != 4)
        luaL_error(L, "MultiheadAttention: memory_cache.k and .v must be (B, H, S, D)");
    return mc;
}

/* forward(query[, key[, value]][, {key_padding_mask =, attn_mask =,
 * is_causal =, need_weights = false, cache =, memory_cache =}]) -> out (B, T, E)[, weights
 * averaged over heads (B, T, S), as PyTorch returns them]. attn_mask is
 * additive (T, S) or broadcastable to (B, H, T, S); a cache (KVCache) keeps
 * keys and values across calls for incremental decoding; a memory_cache
 * table keeps the projected key and value of a fixed memory (k, v). */
static int mha_forward(lua_State *L, nnL_layer *l) {
    const mha_cfg *c = NNL_CFG(l, mha_cfg);
    int opts = 5;
    for (int i = 3; i <= 5; i++) /* the options may follow query, key or value */
        if (lua_istable(L, i)) { opts = i; break; }
    nnL_checkoptions(L, opts, "MultiheadAttention:forward", forward_opts);
    lua_settop(L, 5);
    if (opts < 5) {
        lua_pushvalue(L, opts);
        lua_replace(L, 5);
        for (int i = opts; i < 5; i++) {
            lua_pushnil(L);
            lua_replace(L, i);
        }
    }
    nn_tensor *query = nnL_checktensor(L, 2);
    nn_tensor *key = lua_isnil(L, 3) ? query : nnL_checktensor(L, 3);
    nn_tensor *value = lua_isnil(L, 4) ? key : nnL_checktensor(L, 4);
    if (query->ndim != 3) {
        char s[96];
        return luaL_error(L, "MultiheadAttention: query must be (B, T, E), got %s",
                          nn_shape_str(query, s, 96));
    }
    nn_tensor *q, *k, *v, *w = nnL_slot_tensor(L, 1, IN_PROJ_WEIGHT);
    nn_tensor *kept_k, *kept_v;
    int mc = memory_cache(L, &kept_k, &kept_v);
    if (kept_k) {
        q = heads(L, c, project(L, c, query, 0));
        k = kept_k, v = kept_v;
    } else if (query == key && key == value && w && !mc) { /* self-attention: one GEMM */
        nn_tensor *qkv = nnL_keep(L, nn_linear(query, w, nnL_slot_tensor(L, 1, IN_PROJ_BIAS)));
        int64_t shape[5] = {query->shape[0], query->shape[1], 3, c->num_heads, c->head_dim};
        qkv = nnL_keep(L, nn_view(qkv, 5, shape));
        nn_tensor *part[3];
        if (nn_unbind(qkv, 2, part) < 0) return nnL_engine_error(L);
        for (int i = 0; i < 3; i++) nnL_keep(L, part[i]); /* one node: a backward in one pass */
        for (int i = 0; i < 3; i++) part[i] = nnL_keep(L, nn_transpose(part[i], 1, 2));
        q = part[0], k = part[1], v = part[2];
    } else {
        q = heads(L, c, project(L, c, query, 0));
        k = heads(L, c, project(L, c, key, 1));
        v = heads(L, c, project(L, c, value, 2));
        if (mc) { /* fill the cache for the next calls */
            nnL_push(L, nn_retain(k));
            lua_setfield(L, mc, "k");
            nnL_push(L, nn_retain(v));
            lua_setfield(L, mc, "v");
        }
    }
    if (lua_istable(L, 5) && lua_getfield(L, 5, "cache") != LUA_TNIL) { /* k, v = cache:append(k, v) */
        int cache = lua_gettop(L);
        lua_getfield(L, cache, "append");
        lua_pushvalue(L, cache);
        nnL_push(L, nn_retain(k));
        nnL_push(L, nn_retain(v));
        lua_call(L, 3, 2);
        k = nnL_checktensor(L, -2);
        v = nnL_checktensor(L, -1);
    }
    nn_tensor *mask = opt_tensor_field(L, 5, "attn_mask");
    if (mask && mask->dtype != NN_F32)
        return luaL_error(L, "MultiheadAttention: attn_mask must be an additive f32 mask");
    nn_tensor *kpm = opt_tensor_field(L, 5, "key_padding_mask");
    if (kpm) {
        nn_tensor *pm = padding_mask(L, kpm);
        mask = mask ? nnL_keep(L, nn_add(mask, pm)) : pm;
    }
    int causal = nnL_optboolfield(L, 5, "is_causal", 0);
    nn_attention_args a = {mask, causal, 0, c->dropout, l->training, nnL_rng(L)};
    nn_tensor *att = nnL_keep(L, nn_attention(q, k, v, &a, NULL));
    int64_t b = query->shape[0], t = query->shape[1];
    nn_tensor *merged = nnL_keep(L, nn_reshape(nnL_keep(L, nn_transpose(att, 1, 2)), 3,
                                           (int64_t[]){b, t, c->embed_dim}));
    nnL_slot_layer(L, 1, OUT_PROJ);
    int child = lua_gettop(L);
    nn_tensor *ow = nnL_slot_tensor(L, child, 0), *ob = nnL_slot_tensor(L, child, 1);
    nnL_keep(L, nn_linear(merged, ow, ob)); /* the output, on top */
    if (!nnL_optboolfield(L, 5, "need_weights", 0)) return 1;
    int out_at = lua_gettop(L);
    /* the weights, differentiable, from the unfused composition */
    nn_tensor *kt = nnL_keep(L, nn_transpose(k, -1, -2));
    nn_tensor *sc = nnL_keep(L, nn_scalar(NN_F32, 1.0 / sqrt((double)c->head_dim)));
    nn_tensor *s = nnL_keep(L, nn_mul(nnL_keep(L, nn_matmul(q, kt)), sc));
    if (mask) s = nnL_keep(L, nn_add(s, mask));
    if (causal) {
        int64_t tq = q->shape[2], tk = k->shape[2];
        nn_tensor *full = nnL_keep(L, nn_full(2, (int64_t[]){tq, tk}, -INFINITY));
        s = nnL_keep(L, nn_add(s, nnL_keep(L, nn_tril(full, tk - tq + 1, 1))));
    }
    nn_tensor *p = nnL_keep(L, nn_softmax(s, -1));
    nnL_keep(L, nn_reduce(NN_MEAN, p, &(nn_reduce_args){.ndims = 1, .dims = {1}}));
    lua_pushvalue(L, out_at);
    lua_insert(L, -2);
    return 2;
}

static const nnL_slot mha_slots[] = {
    {"in_proj_weight", NNL_PARAM}, {"q_proj_weight", NNL_PARAM}, {"k_proj_weight", NNL_PARAM},
    {"v_proj_weight", NNL_PARAM}, {"in_proj_bias", NNL_PARAM}, {"out_proj", NNL_CHILD},
    {NULL, 0}};
static const nnL_field mha_fields[] = {
    NNL_FIELD(NNL_F_INT, mha_cfg, embed_dim),
    NNL_FIELD(NNL_F_INT, mha_cfg, num_heads),
    NNL_FIELD(NNL_F_INT, mha_cfg, head_dim),
    NNL_FIELD(NNL_F_INT, mha_cfg, kdim),
    NNL_FIELD(NNL_F_INT, mha_cfg, vdim),
    NNL_FIELD(NNL_F_NUM, mha_cfg, dropout),
    NNL_FIELD(NNL_F_BOOL, mha_cfg, bias), NNL_END_FIELDS};
static const char *const mha_opts[] = {"dropout", "bias", "batch_first", "kdim", "vdim", NULL};
static const nnL_layer_class mha_class = {
    "MultiheadAttention", sizeof(mha_cfg), mha_slots, mha_fields, mha_opts, 3,
    mha_build, mha_forward, NULL};

void nnL_open_attention_layers(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&mha_class, NULL};
    static const nnL_options options[] = {{"MultiheadAttention:forward", forward_opts},
                                          {NULL, NULL}};
    nnL_register_layers(L, classes);
    nnL_define_options(L, options);
}
