/* lactlayers.c -- more activation layers: ELU, Softplus, Mish, Hardswish,
 * Hardsigmoid (lines of the unary op table), PReLU (a learned slope) and
 * GLU, printed and named as PyTorch's; and nn.prelu, nn.glu. */
#include "llayer.h"

typedef struct {
    double alpha;           /* ELU */
    double beta, threshold; /* Softplus */
    int64_t num_parameters; /* PReLU */
    int64_t dim;            /* GLU, 1-based or negative */
} act2_cfg;

static const nnL_slot no_slots[] = {{NULL, 0}};
static const nnL_field no_fields[] = {NNL_END_FIELDS};

static int pointwise(lua_State *L, nn_unary_op op, double p0, double p1) {
    nn_tensor *x = nnL_checktensor(L, 2);
    NNL_RETURN(nn_unary(op, x, p0, p1));
}

static void no_build(lua_State *L, nnL_layer *l) { (void)L, (void)l; }

/* ELU([alpha = 1]) */
static void elu_build(lua_State *L, nnL_layer *l) { NNL_CFG(l, act2_cfg)->alpha = luaL_optnumber(L, 1, 1.0); }
static int elu_forward(lua_State *L, nnL_layer *l) {
    return pointwise(L, NN_ELU, NNL_CFG(l, act2_cfg)->alpha, 0);
}

/* Softplus([beta = 1[, threshold = 20]]) */
static void softplus_build(lua_State *L, nnL_layer *l) {
    act2_cfg *c = NNL_CFG(l, act2_cfg);
    c->beta = luaL_optnumber(L, 1, 1.0);
    c->threshold = luaL_optnumber(L, 2, 20.0);
    if (!(c->beta > 0)) luaL_argerror(L, 1, "beta must be positive");
}
static int softplus_forward(lua_State *L, nnL_layer *l) {
    const act2_cfg *c = NNL_CFG(l, act2_cfg);
    return pointwise(L, NN_SOFTPLUS, c->beta, c->threshold);
}

static int mish_forward(lua_State *L, nnL_layer *l) { (void)l; return pointwise(L, NN_MISH, 0, 0); }
static int hardswish_forward(lua_State *L, nnL_layer *l) { (void)l; return pointwise(L, NN_HARDSWISH, 0, 0); }
static int hardsigmoid_forward(lua_State *L, nnL_layer *l) {
    (void)l;
    return pointwise(L, NN_HARDSIGMOID, 0, 0);
}

/* PReLU([num_parameters = 1[, init = 0.25]]): weight (num_parameters) */
static const nnL_slot prelu_slots[] = {{"weight", NNL_PARAM}, {NULL, 0}};
static void prelu_build(lua_State *L, nnL_layer *l) {
    act2_cfg *c = NNL_CFG(l, act2_cfg);
    c->num_parameters = lua_isnoneornil(L, 1) ? 1 : nnL_checkpositive(L, 1, "num_parameters");
    nnL_set_param(L, 0, nn_full(1, &c->num_parameters, luaL_optnumber(L, 2, 0.25)));
}
static int prelu_forward(lua_State *L, nnL_layer *l) {
    (void)l;
    nn_tensor *x = nnL_checktensor(L, 2), *w = nnL_slot_tensor(L, 1, 0);
    NNL_RETURN(nn_prelu(x, w));
}

/* GLU([dim = -1]) */
static void glu_build(lua_State *L, nnL_layer *l) {
    lua_Integer d = luaL_optinteger(L, 1, -1);
    if (d == 0) luaL_argerror(L, 1, "dims count from 1 (or -1 for the last)");
    NNL_CFG(l, act2_cfg)->dim = d;
}
static int glu_call(lua_State *L, nn_tensor *x, int64_t d) {
    if (d > x->ndim || d < -x->ndim)
        return luaL_error(L, "glu over dim %d of a %d-dim input", (int)d, x->ndim);
    NNL_RETURN(nn_glu(x, d > 0 ? (int)d - 1 : (int)d));
}
static int glu_forward(lua_State *L, nnL_layer *l) {
    return glu_call(L, nnL_checktensor(L, 2), NNL_CFG(l, act2_cfg)->dim);
}

static const nnL_field elu_fields[] = {NNL_FIELD(NNL_F_NUM, act2_cfg, alpha), NNL_END_FIELDS};
static const nnL_field softplus_fields[] = {
    NNL_FIELD(NNL_F_NUM, act2_cfg, beta), NNL_FIELD(NNL_F_NUM, act2_cfg, threshold), NNL_END_FIELDS};
static const nnL_field prelu_fields[] = {NNL_FIELD(NNL_F_INT, act2_cfg, num_parameters), NNL_END_FIELDS};
static const nnL_field glu_fields[] = {NNL_FIELD(NNL_F_INT, act2_cfg, dim), NNL_END_FIELDS};
#define ACT(cname, lname, slots, fields, build, fwd) \
    static const nnL_layer_class cname = {lname, sizeof(act2_cfg), slots, fields, NULL, 0, build, fwd, NULL}
ACT(elu_class, "ELU", no_slots, elu_fields, elu_build, elu_forward);
ACT(softplus_class, "Softplus", no_slots, softplus_fields, softplus_build, softplus_forward);
ACT(mish_class, "Mish", no_slots, no_fields, no_build, mish_forward);
ACT(hardswish_class, "Hardswish", no_slots, no_fields, no_build, hardswish_forward);
ACT(hardsigmoid_class, "Hardsigmoid", no_slots, no_fields, no_build, hardsigmoid_forward);
ACT(prelu_class, "PReLU", prelu_slots, prelu_fields, prelu_build, prelu_forward);
ACT(glu_class, "GLU", no_slots, glu_fields, glu_build, glu_forward);

/* prelu(x, weight), glu(x[, dim = -1]) */
static int l_prelu(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *w = nnL_checktensor(L, 2);
    NNL_RETURN(nn_prelu(x, w));
}

static int l_glu(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer d = luaL_optinteger(L, 2, -1);
    if (d == 0) return luaL_argerror(L, 2, "dims count from 1 (or -1 for the last)");
    return glu_call(L, x, d);
}

void nnL_open_act_layers(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&elu_class, &softplus_class, &mish_class,
                                                     &hardswish_class, &hardsigmoid_class,
                                                     &prelu_class, &glu_class, NULL};
    static const luaL_Reg fns[] = {{"prelu", l_prelu}, {"glu", l_glu}, {NULL, NULL}};
    nnL_register_layers(L, classes);
    nnL_setfuncs(L, fns, 0);
}
