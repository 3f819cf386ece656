/* lembedbag.c -- EmbeddingBag(num, dim[, {mode = 'mean', padding_idx,
 * include_last_offset = false}]) with PyTorch's weight name, and
 * nn.embedding_bag(input, weight[, offsets[, {mode, per_sample_weights,
 * padding_idx, include_last_offset}]]) (engine/nn/embedding_bag.c).
 * Indices and offsets count from 1: offsets {1, 4} are bags starting at
 * the first and the fourth entry. */
#include "llayer.h"

static const char *const bag_modes[] = {"sum", "mean", "max", NULL};

/* offsets without the last entry when it only marks the end */
static nn_tensor *bag_offsets(lua_State *L, nn_tensor *offsets, int include_last) {
    if (!offsets || !include_last) return offsets;
    if (offsets->ndim != 1 || offsets->shape[0] < 1)
        luaL_error(L, "embedding_bag: include_last_offset needs offsets (B + 1)");
    return nnL_keep(L, nn_narrow(offsets, 0, 0, offsets->shape[0] - 1));
}

static int bag_call(lua_State *L, nn_tensor *idx, nn_tensor *w, nn_tensor *offsets, int mode,
                    nn_tensor *psw, int64_t padding_idx) {
    NNL_RETURN(nn_embedding_bag(idx, offsets, w, (nn_bag_mode)mode, psw,
                                padding_idx ? padding_idx : -1, NNL_BASE));
}

static const char *const fn_opts[] = {"mode", "per_sample_weights", "padding_idx",
                                      "include_last_offset", NULL};

static int l_embedding_bag(lua_State *L) {
    nn_tensor *idx = nnL_checktensor(L, 1), *w = nnL_checktensor(L, 2), *offsets = nnL_opttensor(L, 3);
    nnL_checkoptions(L, 4, "embedding_bag", fn_opts);
    int mode = 1;
    nn_tensor *psw = NULL;
    lua_Integer pad = 0;
    if (lua_istable(L, 4)) {
        lua_getfield(L, 4, "mode");
        mode = luaL_checkoption(L, -1, "mean", bag_modes);
        lua_getfield(L, 4, "per_sample_weights");
        psw = nnL_opttensor(L, -1);
        lua_getfield(L, 4, "padding_idx");
        pad = luaL_optinteger(L, -1, 0);
    }
    offsets = bag_offsets(L, offsets, nnL_optboolfield(L, 4, "include_last_offset", 0));
    return bag_call(L, idx, w, offsets, mode, psw, (int64_t)pad);
}

typedef struct {
    int64_t num_embeddings, embedding_dim, padding_idx;
    int mode, include_last_offset;
} bag_cfg;

static void bag_build(lua_State *L, nnL_layer *l) {
    bag_cfg *c = NNL_CFG(l, bag_cfg);
    c->num_embeddings = nnL_checkpositive(L, 1, "num_embeddings");
    c->embedding_dim = nnL_checkpositive(L, 2, "embedding_dim");
    c->mode = 1;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "mode");
        c->mode = luaL_checkoption(L, -1, "mean", bag_modes);
        lua_getfield(L, 3, "padding_idx");
        c->padding_idx = luaL_optinteger(L, -1, 0);
        lua_pop(L, 2);
    }
    if (c->padding_idx && (c->padding_idx < 1 || c->padding_idx > c->num_embeddings))
        luaL_argerror(L, 3, "padding_idx out of range");
    c->include_last_offset = nnL_optboolfield(L, 3, "include_last_offset", 0);
    int64_t shape[2] = {c->num_embeddings, c->embedding_dim};
    nn_tensor *w = nn_randn(nnL_rng(L), 2, shape); /* N(0, 1), as PyTorch's */
    if (w && c->padding_idx) {
        nn_tensor *row = nn_select(w, 0, c->padding_idx - 1);
        if (row) nn_fill_(row, 0);
        nn_release(row);
    }
    nnL_set_param(L, 0, w);
}

/* bag(input[, offsets[, per_sample_weights]]) */
static int bag_forward(lua_State *L, nnL_layer *l) {
    const bag_cfg *c = NNL_CFG(l, bag_cfg);
    nn_tensor *idx = nnL_checktensor(L, 2), *offsets = nnL_opttensor(L, 3), *psw = nnL_opttensor(L, 4);
    nn_tensor *w = nnL_slot_tensor(L, 1, 0);
    offsets = bag_offsets(L, offsets, c->include_last_offset);
    return bag_call(L, idx, w, offsets, c->mode, psw, c->padding_idx);
}

static const nnL_slot bag_slots[] = {{"weight", NNL_PARAM}, {NULL, 0}};
static const nnL_field bag_fields[] = {
    NNL_FIELD(NNL_F_INT, bag_cfg, num_embeddings), NNL_FIELD(NNL_F_INT, bag_cfg, embedding_dim),
    {"mode", NNL_F_CHOICE, offsetof(bag_cfg, mode), bag_modes},
    NNL_FIELD(NNL_F_INT, bag_cfg, padding_idx), NNL_FIELD(NNL_F_BOOL, bag_cfg, include_last_offset),
    NNL_END_FIELDS};
static const char *const bag_opts[] = {"mode", "padding_idx", "include_last_offset", NULL};
static const nnL_layer_class bag_class = {"EmbeddingBag", sizeof(bag_cfg), bag_slots, bag_fields,
                                          bag_opts, 3, bag_build, bag_forward, NULL};

void nnL_open_embedding_bag(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&bag_class, NULL};
    static const luaL_Reg fns[] = {{"embedding_bag", l_embedding_bag}, {NULL, NULL}};
    static const nnL_options options[] = {{"embedding_bag", fn_opts}, {NULL, NULL}};
    nnL_register_layers(L, classes);
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
