/* lnormlayers.c -- normalisation over channels (engine/nn/chnorm.c):
 * nn.batch_norm and nn.group_norm, and the layers BatchNorm1d,
 * BatchNorm2d, GroupNorm and InstanceNorm2d with PyTorch's parameter and
 * buffer names (weight, bias, running_mean, running_var,
 * num_batches_tracked), so PyTorch state dicts load. */
#include "llayer.h"

#include <math.h>
#include <string.h>


/* batch_norm(x, running_mean, running_var[, weight[, bias[, {training =
 * false, momentum = 0.1, eps = 1e-5}]]]): running statistics may be nil
 * (the batch's are used) */
static const char *const bn_opts[] = {"training", "momentum", "eps", NULL};

static int l_batch_norm(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *rm = nnL_opttensor(L, 2), *rv = nnL_opttensor(L, 3);
    nn_tensor *w = nnL_opttensor(L, 4), *b = nnL_opttensor(L, 5);
    nnL_checkoptions(L, 6, "batch_norm", bn_opts);
    int training = nnL_optboolfield(L, 6, "training", 0);
    double momentum = nnL_optnumfield(L, 6, "momentum", 0.1), eps = nnL_optnumfield(L, 6, "eps", 1e-5);
    NNL_RETURN(nn_batch_norm(x, rm, rv, w, b, training, momentum, eps));
}

/* group_norm(x, num_groups[, weight[, bias[, eps = 1e-5]]]) */
static int l_group_norm(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer groups = luaL_checkinteger(L, 2);
    nn_tensor *w = nnL_opttensor(L, 3), *b = nnL_opttensor(L, 4);
    double eps = luaL_optnumber(L, 5, 1e-5);
    NNL_RETURN(nn_group_norm(x, (int64_t)groups, w, b, eps));
}

/* ---- BatchNorm1d / BatchNorm2d / InstanceNorm2d(num_features[, {eps =
 * 1e-5, momentum = 0.1 (false: a cumulative average), affine,
 * track_running_stats}]) ------------------------------------------------------- */
typedef struct {
    int64_t num_features;
    double eps, momentum; /* momentum < 0: cumulative (PyTorch's None) */
    int affine, track_running_stats;
} bn_cfg;

static const nnL_slot bn_slots[] = {{"weight", NNL_PARAM}, {"bias", NNL_PARAM},
                                    {"running_mean", NNL_BUFFER}, {"running_var", NNL_BUFFER},
                                    {"num_batches_tracked", NNL_BUFFER}, {NULL, 0}};
enum { WEIGHT, BIAS, MEAN, VAR, COUNT };

static void bn_build_defaults(lua_State *L, nnL_layer *l, int affine, int track) {
    bn_cfg *c = NNL_CFG(l, bn_cfg);
    c->num_features = nnL_checkpositive(L, 1, "num_features");
    c->eps = nnL_optnumfield(L, 2, "eps", 1e-5);
    if (!(c->eps > 0)) luaL_argerror(L, 2, "eps must be positive");
    c->momentum = 0.1;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "momentum");
        if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) c->momentum = -1;
        else if (!lua_isnil(L, -1)) c->momentum = luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    if (c->momentum >= 0 && !(c->momentum <= 1))
        luaL_argerror(L, 2, "momentum must be in [0, 1] (or false: a cumulative average)");
    c->affine = nnL_optboolfield(L, 2, "affine", affine);
    c->track_running_stats = nnL_optboolfield(L, 2, "track_running_stats", track);
    int64_t n = c->num_features;
    if (c->affine) {
        nnL_set_param(L, WEIGHT, nn_full(1, &n, 1));
        nnL_set_param(L, BIAS, nn_zeros(NN_F32, 1, &n));
    }
    if (c->track_running_stats) {
        nnL_set_param(L, MEAN, nn_zeros(NN_F32, 1, &n));
        nnL_set_param(L, VAR, nn_full(1, &n, 1));
        nnL_set_param(L, COUNT, nn_zeros(NN_I64, 0, NULL));
    }
}

static void bn_build(lua_State *L, nnL_layer *l) { bn_build_defaults(L, l, 1, 1); }
static void in_build(lua_State *L, nnL_layer *l) {
    bn_build_defaults(L, l, 0, 0);
    if (NNL_CFG(l, bn_cfg)->momentum < 0) /* as PyTorch's: it counts no batches */
        luaL_argerror(L, 2, "InstanceNorm2d needs a numeric momentum");
}

/* a training step counts a batch; returns the momentum to use */
static double count_batch(lua_State *L, const bn_cfg *c) {
    nn_tensor *count = nnL_slot_tensor(L, 1, COUNT);
    double seen = 1;
    if (count) {
        if (count->dtype != NN_I64 || nn_numel(count) != 1)
            luaL_error(L, "num_batches_tracked must be one i64 value");
        seen = nn_item(count) + 1;
        if (nn_fill_(count, seen) < 0) nnL_engine_error(L);
    }
    return c->momentum >= 0 ? c->momentum : 1.0 / seen;
}

/* x with lo..hi dims and num_features channels (dim 2) */
static nn_tensor *check_input(lua_State *L, nnL_layer *l, int lo, int hi, const char *layout) {
    const bn_cfg *c = NNL_CFG(l, bn_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    if (x->ndim < lo || x->ndim > hi || x->shape[1] != c->num_features) {
        char s[96];
        luaL_error(L, "%s(%I): expected %s with C = %I, got %s", l->cls->name,
                   (lua_Integer)c->num_features, layout, (lua_Integer)c->num_features,
                   nn_shape_str(x, s, sizeof s));
    }
    return x;
}

static int bn_forward_dims(lua_State *L, nnL_layer *l, int lo, int hi, const char *layout) {
    const bn_cfg *c = NNL_CFG(l, bn_cfg);
    nn_tensor *x = check_input(L, l, lo, hi, layout);
    nn_tensor *w = nnL_slot_tensor(L, 1, WEIGHT), *b = nnL_slot_tensor(L, 1, BIAS);
    nn_tensor *rm = nnL_slot_tensor(L, 1, MEAN), *rv = nnL_slot_tensor(L, 1, VAR);
    double momentum = c->momentum >= 0 ? c->momentum : 0;
    int training = l->training || !rm;
    if (l->training && rm) momentum = count_batch(L, c);
    NNL_RETURN(nn_batch_norm(x, rm, rv, w, b, training, momentum, c->eps));
}

static int bn1d_forward(lua_State *L, nnL_layer *l) {
    return bn_forward_dims(L, l, 2, 3, "(N, C) or (N, C, L)");
}
static int bn2d_forward(lua_State *L, nnL_layer *l) { return bn_forward_dims(L, l, 4, 4, "(N, C, H, W)"); }

/* instance norm: each sample's own statistics in training (and whenever
 * no running ones are kept), the running ones in eval; like PyTorch's it
 * leaves num_batches_tracked at 0 */
static int in_forward(lua_State *L, nnL_layer *l) {
    const bn_cfg *c = NNL_CFG(l, bn_cfg);
    nn_tensor *x = check_input(L, l, 4, 4, "(N, C, H, W)");
    nn_tensor *w = nnL_slot_tensor(L, 1, WEIGHT), *b = nnL_slot_tensor(L, 1, BIAS);
    nn_tensor *rm = nnL_slot_tensor(L, 1, MEAN), *rv = nnL_slot_tensor(L, 1, VAR);
    if (rm && !l->training) NNL_RETURN(nn_batch_norm(x, rm, rv, w, b, 0, 0, c->eps));
    if (rm && nn_instance_norm_stats_(x, rm, rv, c->momentum) < 0) return nnL_engine_error(L);
    NNL_RETURN(nn_group_norm(x, x->shape[1], w, b, c->eps));
}

static const nnL_field bn_fields[] = {
    NNL_FIELD(NNL_F_INT, bn_cfg, num_features), NNL_FIELD(NNL_F_NUM, bn_cfg, eps),
    NNL_FIELD(NNL_F_NUM, bn_cfg, momentum), NNL_FIELD(NNL_F_BOOL, bn_cfg, affine),
    NNL_FIELD(NNL_F_BOOL, bn_cfg, track_running_stats), NNL_END_FIELDS};
static const char *const bn_layer_opts[] = {"eps", "momentum", "affine", "track_running_stats", NULL};
static const nnL_layer_class bn1d_class = {
    "BatchNorm1d", sizeof(bn_cfg), bn_slots, bn_fields, bn_layer_opts, 2, bn_build, bn1d_forward, NULL};
static const nnL_layer_class bn2d_class = {
    "BatchNorm2d", sizeof(bn_cfg), bn_slots, bn_fields, bn_layer_opts, 2, bn_build, bn2d_forward, NULL};
static const nnL_layer_class in2d_class = {
    "InstanceNorm2d", sizeof(bn_cfg), bn_slots, bn_fields, bn_layer_opts, 2, in_build, in_forward, NULL};

/* ---- GroupNorm(num_groups, num_channels[, {eps = 1e-5, affine = true}]) -------- */
typedef struct {
    int64_t num_groups, num_channels;
    double eps;
    int affine;
} gn_cfg;

static void gn_build(lua_State *L, nnL_layer *l) {
    gn_cfg *c = NNL_CFG(l, gn_cfg);
    c->num_groups = nnL_checkpositive(L, 1, "num_groups");
    c->num_channels = nnL_checkpositive(L, 2, "num_channels");
    if (c->num_channels % c->num_groups)
        luaL_error(L, "GroupNorm: num_groups %I must divide num_channels %I",
                   (lua_Integer)c->num_groups, (lua_Integer)c->num_channels);
    c->eps = nnL_optnumfield(L, 3, "eps", 1e-5);
    if (!(c->eps > 0)) luaL_argerror(L, 3, "eps must be positive");
    c->affine = nnL_optboolfield(L, 3, "affine", 1);
    if (c->affine) {
        nnL_set_param(L, WEIGHT, nn_full(1, &c->num_channels, 1));
        nnL_set_param(L, BIAS, nn_zeros(NN_F32, 1, &c->num_channels));
    }
}

static int gn_forward(lua_State *L, nnL_layer *l) {
    const gn_cfg *c = NNL_CFG(l, gn_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    if (x->ndim < 2 || x->shape[1] != c->num_channels) {
        char s[96];
        return luaL_error(L, "GroupNorm(%I, %I): expected (N, %I, ...), got %s", (lua_Integer)c->num_groups,
                          (lua_Integer)c->num_channels, (lua_Integer)c->num_channels,
                          nn_shape_str(x, s, sizeof s));
    }
    nn_tensor *w = nnL_slot_tensor(L, 1, WEIGHT), *b = nnL_slot_tensor(L, 1, BIAS);
    NNL_RETURN(nn_group_norm(x, c->num_groups, w, b, c->eps));
}

static const nnL_slot gn_slots[] = {{"weight", NNL_PARAM}, {"bias", NNL_PARAM}, {NULL, 0}};
static const nnL_field gn_fields[] = {
    NNL_FIELD(NNL_F_INT, gn_cfg, num_groups), NNL_FIELD(NNL_F_INT, gn_cfg, num_channels),
    NNL_FIELD(NNL_F_NUM, gn_cfg, eps), NNL_FIELD(NNL_F_BOOL, gn_cfg, affine), NNL_END_FIELDS};
static const char *const gn_opts[] = {"eps", "affine", NULL};
static const nnL_layer_class gn_class = {
    "GroupNorm", sizeof(gn_cfg), gn_slots, gn_fields, gn_opts, 3, gn_build, gn_forward, NULL};

void nnL_open_norm_layers(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&bn1d_class, &bn2d_class, &gn_class, &in2d_class,
                                                     NULL};
    static const luaL_Reg fns[] = {{"batch_norm", l_batch_norm}, {"group_norm", l_group_norm},
                                   {NULL, NULL}};
    static const nnL_options options[] = {{"batch_norm", bn_opts}, {NULL, NULL}};
    nnL_register_layers(L, classes);
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
