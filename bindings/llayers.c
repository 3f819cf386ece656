/* llayers.c -- the basic built-in layers: Linear, Embedding, LayerNorm,
 * RMSNorm, Dropout, the activations and Flatten. Parameters are
 * initialised as PyTorch 1.13 does by default; forward calls the engine's
 * fused ops and keeps no activations. */
#include "llayer.h"

#include <math.h>
#include <string.h>

static const nnL_slot no_slots[] = {{NULL, 0}};
static const nnL_field no_fields[] = {NNL_END_FIELDS};
static const nnL_slot weight_bias[] = {{"weight", NNL_PARAM}, {"bias", NNL_PARAM}, {NULL, 0}};
enum { WEIGHT, BIAS };

/* ---- Linear(in, out[, {bias = true}]) --------------------------------------
 * weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)) */
typedef struct { int64_t in_features, out_features; int bias; } linear_cfg;

static void linear_build(lua_State *L, nnL_layer *l) {
    linear_cfg *c = NNL_CFG(l, linear_cfg);
    c->in_features = nnL_checkpositive(L, 1, "in_features");
    c->out_features = nnL_checkpositive(L, 2, "out_features");
    c->bias = nnL_optboolfield(L, 3, "bias", 1);
    double bound = 1.0 / sqrt((double)c->in_features);
    nnL_set_param(L, WEIGHT, nnL_uniform(L, 2, (int64_t[]){c->out_features, c->in_features}, bound));
    if (c->bias) nnL_set_param(L, BIAS, nnL_uniform(L, 1, &c->out_features, bound));
}

static int linear_forward(lua_State *L, nnL_layer *l) {
    (void)l;
    nn_tensor *x = nnL_checktensor(L, 2);
    nn_tensor *w = nnL_slot_tensor(L, 1, WEIGHT), *b = nnL_slot_tensor(L, 1, BIAS);
    NNL_RETURN(nn_linear(x, w, b));
}

static const nnL_field linear_fields[] = {
    NNL_FIELD(NNL_F_INT, linear_cfg, in_features), NNL_FIELD(NNL_F_INT, linear_cfg, out_features),
    NNL_FIELD(NNL_F_BOOL, linear_cfg, bias), NNL_END_FIELDS};
static const char *const linear_opts[] = {"bias", NULL};
const nnL_layer_class nnL_linear_class = {
    "Linear", sizeof(linear_cfg), weight_bias, linear_fields, linear_opts, 3,
    linear_build, linear_forward, NULL};

/* ---- Embedding(num, dim[, {padding_idx=, max_norm=, norm_type=2}]) ---------
 * weight ~ N(0, 1), the padding row zero */
typedef struct {
    int64_t num_embeddings, embedding_dim, padding_idx; /* 0: none (1-based) */
    double max_norm, norm_type;                          /* max_norm 0: none */
} embedding_cfg;

static void embedding_build(lua_State *L, nnL_layer *l) {
    embedding_cfg *c = NNL_CFG(l, embedding_cfg);
    int64_t num = nnL_checkpositive(L, 1, "num_embeddings");
    int64_t dim = nnL_checkpositive(L, 2, "embedding_dim");
    lua_Integer pad = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "padding_idx");
        pad = luaL_optinteger(L, -1, 0);
        lua_pop(L, 1);
        if (pad < 0) pad += num + 1;
        if (pad && (pad < 1 || pad > num)) luaL_argerror(L, 3, "padding_idx out of range");
    }
    *c = (embedding_cfg){num, dim, pad, nnL_optnumfield(L, 3, "max_norm", 0),
                         nnL_optnumfield(L, 3, "norm_type", 2)};
    if (c->max_norm < 0) luaL_argerror(L, 3, "max_norm must be positive");
    nn_tensor *w = nn_randn(nnL_rng(L), 2, (int64_t[]){num, dim});
    if (w && pad) memset((float *)nn_data(w) + (pad - 1) * dim, 0, dim * sizeof(float));
    nnL_set_param(L, WEIGHT, w);
}

static int embedding_forward(lua_State *L, nnL_layer *l) {
    const embedding_cfg *c = NNL_CFG(l, embedding_cfg);
    nn_tensor *x = nnL_checktensor(L, 2), *w = nnL_slot_tensor(L, 1, WEIGHT);
    if (x->dtype != NN_I64) return luaL_argerror(L, 2, "indices must be an i64 tensor");
    if (c->max_norm > 0) {
        int prev = nn_set_grad_enabled(0);
        int rc = nn_embedding_renorm_(w, x, c->max_norm, c->norm_type, NNL_BASE);
        nn_set_grad_enabled(prev);
        if (rc < 0) return nnL_engine_error(L);
    }
    NNL_RETURN(nn_embedding(x, w, c->padding_idx ? c->padding_idx : -1, NNL_BASE));
}

static const nnL_slot weight_only[] = {{"weight", NNL_PARAM}, {NULL, 0}};
static const nnL_field embedding_fields[] = {
    NNL_FIELD(NNL_F_INT, embedding_cfg, num_embeddings), NNL_FIELD(NNL_F_INT, embedding_cfg, embedding_dim),
    NNL_FIELD(NNL_F_INT, embedding_cfg, padding_idx), NNL_FIELD(NNL_F_NUM, embedding_cfg, max_norm),
    NNL_FIELD(NNL_F_NUM, embedding_cfg, norm_type), NNL_END_FIELDS};
static const char *const embedding_opts[] = {"padding_idx", "max_norm", "norm_type", NULL};
static const nnL_layer_class embedding_class = {
    "Embedding", sizeof(embedding_cfg), weight_only, embedding_fields, embedding_opts, 3,
    embedding_build, embedding_forward, NULL};

/* ---- LayerNorm(shape[, {eps = 1e-5, elementwise_affine = true, bias = true}])
 * and RMSNorm(shape[, {eps = 1e-6, elementwise_affine = true}]) ----------- */
typedef struct {
    nnL_shape normalized_shape;
    double eps;
    int elementwise_affine;
} norm_cfg;

/* normalized shape: a number or a table of trailing sizes */
static void norm_shape(lua_State *L, nnL_shape *s) {
    if (lua_istable(L, 1)) s->n = nnL_checkshape(L, 1, s->v);
    else { s->v[0] = nnL_checkpositive(L, 1, "normalized size"); s->n = 1; }
    if (s->n < 1) luaL_argerror(L, 1, "empty normalized shape");
}

static void layernorm_build(lua_State *L, nnL_layer *l) {
    norm_cfg *c = NNL_CFG(l, norm_cfg);
    norm_shape(L, &c->normalized_shape);
    c->eps = nnL_optnumfield(L, 2, "eps", 1e-5);
    c->elementwise_affine = nnL_optboolfield(L, 2, "elementwise_affine", 1);
    const nnL_shape *s = &c->normalized_shape;
    if (c->elementwise_affine) nnL_set_param(L, WEIGHT, nn_full(s->n, s->v, 1));
    if (c->elementwise_affine && nnL_optboolfield(L, 2, "bias", 1))
        nnL_set_param(L, BIAS, nn_zeros(NN_F32, s->n, s->v));
}

static int layernorm_forward(lua_State *L, nnL_layer *l) {
    const norm_cfg *c = NNL_CFG(l, norm_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    nn_tensor *w = nnL_slot_tensor(L, 1, WEIGHT), *b = nnL_slot_tensor(L, 1, BIAS);
    NNL_RETURN(nn_layer_norm(x, c->normalized_shape.n, w, b, c->eps));
}

static void rmsnorm_build(lua_State *L, nnL_layer *l) {
    norm_cfg *c = NNL_CFG(l, norm_cfg);
    norm_shape(L, &c->normalized_shape);
    c->eps = nnL_optnumfield(L, 2, "eps", 1e-6);
    c->elementwise_affine = nnL_optboolfield(L, 2, "elementwise_affine", 1);
    const nnL_shape *s = &c->normalized_shape;
    if (c->elementwise_affine) nnL_set_param(L, WEIGHT, nn_full(s->n, s->v, 1));
}

static int rmsnorm_forward(lua_State *L, nnL_layer *l) {
    const norm_cfg *c = NNL_CFG(l, norm_cfg);
    nn_tensor *x = nnL_checktensor(L, 2), *w = nnL_slot_tensor(L, 1, WEIGHT);
    NNL_RETURN(nn_rms_norm(x, c->normalized_shape.n, w, c->eps));
}

static const nnL_field norm_fields[] = {
    NNL_FIELD(NNL_F_SHAPE, norm_cfg, normalized_shape), NNL_FIELD(NNL_F_NUM, norm_cfg, eps),
    NNL_FIELD(NNL_F_BOOL, norm_cfg, elementwise_affine), NNL_END_FIELDS};
static const char *const layernorm_opts[] = {"eps", "elementwise_affine", "bias", NULL};
static const char *const rmsnorm_opts[] = {"eps", "elementwise_affine", NULL};
static const nnL_layer_class layernorm_class = {
    "LayerNorm", sizeof(norm_cfg), weight_bias, norm_fields, layernorm_opts, 2,
    layernorm_build, layernorm_forward, NULL};
static const nnL_layer_class rmsnorm_class = {
    "RMSNorm", sizeof(norm_cfg), weight_only, norm_fields, rmsnorm_opts, 2,
    rmsnorm_build, rmsnorm_forward, NULL};

/* ---- Dropout([p = 0.5]) ------------------------------------------------------ */
typedef struct { double p; } dropout_cfg;

static void dropout_build(lua_State *L, nnL_layer *l) {
    double p = luaL_optnumber(L, 1, 0.5);
    if (!(p >= 0 && p <= 1)) luaL_argerror(L, 1, "probability must be in [0, 1]");
    NNL_CFG(l, dropout_cfg)->p = p;
}

static int dropout_forward(lua_State *L, nnL_layer *l) {
    nn_tensor *x = nnL_checktensor(L, 2);
    NNL_RETURN(nn_dropout(nnL_rng(L), x, NNL_CFG(l, dropout_cfg)->p, l->training));
}

static const nnL_field dropout_fields[] = {NNL_FIELD(NNL_F_NUM, dropout_cfg, p), NNL_END_FIELDS};
static const nnL_layer_class dropout_class = {
    "Dropout", sizeof(dropout_cfg), no_slots, dropout_fields, NULL, 0,
    dropout_build, dropout_forward, NULL};

/* ---- activations: ReLU(), SiLU(), Tanh(), Sigmoid(), GELU([{approximate}]),
 * LeakyReLU([slope = 0.01]), Softmax([dim = -1]) ---------------------------- */
typedef struct {
    int approximate;       /* GELU: 0 'none', 1 'tanh' */
    double negative_slope; /* LeakyReLU */
    int64_t dim;           /* Softmax, 1-based or negative */
} act_cfg;

static void no_build(lua_State *L, nnL_layer *l) { (void)L, (void)l; }

static int unary_forward(lua_State *L, nn_unary_op op, double p0) {
    nn_tensor *x = nnL_checktensor(L, 2);
    NNL_RETURN(nn_unary(op, x, p0, 0));
}

static int relu_forward(lua_State *L, nnL_layer *l) { (void)l; return unary_forward(L, NN_RELU, 0); }
static int silu_forward(lua_State *L, nnL_layer *l) { (void)l; return unary_forward(L, NN_SILU, 0); }
static int tanh_forward(lua_State *L, nnL_layer *l) { (void)l; return unary_forward(L, NN_TANH, 0); }
static int sigmoid_forward(lua_State *L, nnL_layer *l) {
    (void)l;
    return unary_forward(L, NN_SIGMOID, 0);
}

static const char *const gelu_modes[] = {"none", "tanh", NULL};

static void gelu_build(lua_State *L, nnL_layer *l) {
    if (!lua_istable(L, 1)) return;
    lua_getfield(L, 1, "approximate");
    NNL_CFG(l, act_cfg)->approximate = luaL_checkoption(L, -1, "none", gelu_modes);
    lua_pop(L, 1);
}

static int gelu_forward(lua_State *L, nnL_layer *l) {
    return unary_forward(L, NNL_CFG(l, act_cfg)->approximate ? NN_GELU_TANH : NN_GELU, 0);
}

static void leaky_build(lua_State *L, nnL_layer *l) {
    NNL_CFG(l, act_cfg)->negative_slope = luaL_optnumber(L, 1, 0.01);
}

static int leaky_forward(lua_State *L, nnL_layer *l) {
    return unary_forward(L, NN_LEAKY_RELU, NNL_CFG(l, act_cfg)->negative_slope);
}

static void softmax_build(lua_State *L, nnL_layer *l) {
    lua_Integer d = luaL_optinteger(L, 1, -1);
    if (d == 0) luaL_argerror(L, 1, "dims count from 1 (or -1 for the last)");
    NNL_CFG(l, act_cfg)->dim = d;
}

static int softmax_forward(lua_State *L, nnL_layer *l) {
    nn_tensor *x = nnL_checktensor(L, 2);
    int64_t d = NNL_CFG(l, act_cfg)->dim;
    if (d > x->ndim || d < -x->ndim)
        return luaL_error(L, "Softmax over dim %d of a %d-dim input", (int)d, x->ndim);
    NNL_RETURN(nn_softmax(x, d > 0 ? (int)d - 1 : (int)d));
}

static const nnL_field gelu_fields[] = {
    {"approximate", NNL_F_CHOICE, offsetof(act_cfg, approximate), gelu_modes}, NNL_END_FIELDS};
static const nnL_field leaky_fields[] = {NNL_FIELD(NNL_F_NUM, act_cfg, negative_slope), NNL_END_FIELDS};
static const nnL_field softmax_fields[] = {NNL_FIELD(NNL_F_INT, act_cfg, dim), NNL_END_FIELDS};
static const char *const gelu_opts[] = {"approximate", NULL};
#define ACTIVATION(cname, lname, fields, opts, arg, build, fwd) \
    static const nnL_layer_class cname = {lname, sizeof(act_cfg), no_slots, fields, opts, arg, build, fwd, NULL}
ACTIVATION(relu_class, "ReLU", no_fields, NULL, 0, no_build, relu_forward);
ACTIVATION(silu_class, "SiLU", no_fields, NULL, 0, no_build, silu_forward);
ACTIVATION(tanh_class, "Tanh", no_fields, NULL, 0, no_build, tanh_forward);
ACTIVATION(sigmoid_class, "Sigmoid", no_fields, NULL, 0, no_build, sigmoid_forward);
ACTIVATION(gelu_class, "GELU", gelu_fields, gelu_opts, 1, gelu_build, gelu_forward);
ACTIVATION(leaky_class, "LeakyReLU", leaky_fields, NULL, 0, leaky_build, leaky_forward);
ACTIVATION(softmax_class, "Softmax", softmax_fields, NULL, 0, softmax_build, softmax_forward);

/* ---- Flatten([start_dim = 2[, end_dim = -1]]): keeps the batch dim ------------ */
typedef struct { int64_t start_dim, end_dim; } flatten_cfg;

static void flatten_build(lua_State *L, nnL_layer *l) {
    lua_Integer first = luaL_optinteger(L, 1, 2), last = luaL_optinteger(L, 2, -1);
    if (first == 0 || last == 0) luaL_argerror(L, first ? 2 : 1, "dims count from 1");
    *NNL_CFG(l, flatten_cfg) = (flatten_cfg){first, last};
}

static int flatten_forward(lua_State *L, nnL_layer *l) {
    const flatten_cfg *c = NNL_CFG(l, flatten_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    int64_t a = c->start_dim < 0 ? c->start_dim + x->ndim : c->start_dim - 1;
    int64_t e = c->end_dim < 0 ? c->end_dim + x->ndim : c->end_dim - 1;
    if (a < 0 || e >= x->ndim || e < a)
        return luaL_error(L, "Flatten dims out of range for a %d-dim input", x->ndim);
    int64_t shape[NN_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < a; i++) shape[k++] = x->shape[i];
    shape[k] = 1;
    for (int64_t i = a; i <= e; i++) shape[k] *= x->shape[i];
    k++;
    for (int64_t i = e + 1; i < x->ndim; i++) shape[k++] = x->shape[i];
    NNL_RETURN(nn_reshape(x, k, shape));
}

static const nnL_field flatten_fields[] = {
    NNL_FIELD(NNL_F_INT, flatten_cfg, start_dim), NNL_FIELD(NNL_F_INT, flatten_cfg, end_dim), NNL_END_FIELDS};
static const nnL_layer_class flatten_class = {
    "Flatten", sizeof(flatten_cfg), no_slots, flatten_fields, NULL, 0,
    flatten_build, flatten_forward, NULL};

void nnL_open_layers(lua_State *L) {
    static const nnL_layer_class *const classes[] = {
        &nnL_linear_class, &embedding_class, &layernorm_class, &rmsnorm_class, &dropout_class,
        &relu_class, &gelu_class, &silu_class, &tanh_class, &sigmoid_class, &softmax_class,
        &leaky_class, &flatten_class, NULL};
    nnL_open_layer_protocol(L);
    nnL_register_layers(L, classes);
    nnL_open_conv_layers(L);
    nnL_open_attention_layers(L);
    nnL_open_fusion_layers(L);
    nnL_open_norm_layers(L);
    nnL_open_act_layers(L);
    nnL_open_rnn_layers(L);
    nnL_open_conv_family(L);
    nnL_open_rearrange(L);
    nnL_open_embedding_bag(L);
}
