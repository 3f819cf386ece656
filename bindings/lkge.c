/* lkge.c -- knowledge-graph embeddings: nn.kge_score, the tensor methods
 * sparse_grad_ / sparse_grad_rows, and KGEmbedding, a built-in layer. The
 * losses, samplers and evaluation are in lua/nnlua/kge.lua. */
#include "llayer.h"

#include <math.h>
#include <string.h>

static nn_kge_model check_model(lua_State *L, int arg, const char *s) {
    static const char *names[] = {"transe", "distmult", "complex", "rotate", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) return (nn_kge_model)i;
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown model '%s' (transe, distmult, complex "
                                              "or rotate)", s));
    return NN_KGE_TRANSE;
}

/* kge_score(E, R, anchor, rel, cand, {model, gamma = 12, p = 1, head = false,
 * phase = 1}) */
static const char *const kge_opts[] = {"model", "gamma", "p", "head", "phase", NULL};

static int l_kge_score(lua_State *L) {
    nn_tensor *E = nnL_checktensor(L, 1), *R = nnL_checktensor(L, 2);
    nn_tensor *anchor = nnL_checktensor(L, 3), *rel = nnL_checktensor(L, 4);
    nn_tensor *cand = nnL_checktensor(L, 5);
    luaL_checktype(L, 6, LUA_TTABLE);
    nnL_checkoptions(L, 6, "kge_score", kge_opts);
    lua_getfield(L, 6, "model");
    const char *m = lua_tostring(L, -1);
    if (!m) return luaL_argerror(L, 6, "options need model = 'transe' | 'distmult' | 'complex' | 'rotate'");
    nn_kge_args a = {check_model(L, 6, m), nnL_optnumfield(L, 6, "gamma", 12),
                     (int)nnL_optnumfield(L, 6, "p", 1), nnL_optboolfield(L, 6, "head", 0),
                     nnL_optnumfield(L, 6, "phase", 1)};
    lua_pop(L, 1);
    NNL_RETURN(nn_kge_score(E, R, anchor, rel, cand, &a, NNL_BASE));
}

/* t:sparse_grad_([on = true]) keeps t's gradient row-sparse */
static int l_sparse_grad_(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    if (nn_set_sparse_grad(t, on) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

/* t:sparse_grad_rows() -> i64 tensor of the rows touched since the last
 * zero_grad (counted from 1), or nil when t has no sparse gradient */
static int l_sparse_grad_rows(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    if (!nn_has_sparse_grad(t)) return 0;
    const int64_t *rows;
    int64_t n = nn_sparse_grad_rows(t, &rows);
    nn_tensor *out = nn_empty(NN_I64, 1, &n);
    if (!out) return nnL_engine_error(L);
    for (int64_t i = 0; i < n; i++) ((int64_t *)out->storage->data)[out->offset + i] = rows[i] + NNL_BASE;
    return nnL_push(L, out);
}

/* sparse_grad_count(t) -> rows touched since the last zero_grad, or nil
 * when t keeps no sparse gradient (cheap: no tensor is made) */
static int l_sparse_grad_count(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    if (!nn_has_sparse_grad(t)) return 0;
    lua_pushinteger(L, nn_sparse_grad_rows(t, NULL));
    return 1;
}

/* ---- KGEmbedding{model, num_entities, num_relations, dim, gamma = 12,
 * p_norm = 1, epsilon = 2, init, sparse = true} --------------------------------
 * entity (V, dim, or 2 dim for the complex models) and relation tables,
 * uniform in +-(gamma + epsilon) / dim as in the RotatE paper's code (or
 * +-init when given; RotatE's phases keep their range). sparse keeps their
 * gradients row-sparse (Adam and Adagrad then update only the rows a batch
 * used); 1-vs-all training, which touches every row, is faster without. */
typedef struct {
    int model;
    int64_t num_entities, num_relations, dim, p_norm;
    double gamma, epsilon, phase; /* phase: RotatE's relation value -> radians */
    int sparse;
} kgemb_cfg;

enum { ENTITY, RELATION };
static const char *const model_names[] = {"transe", "distmult", "complex", "rotate", NULL};

static int64_t positive_field(lua_State *L, const char *k) {
    lua_getfield(L, 1, k);
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < 1 || v > ((lua_Integer)1 << 40))
        luaL_error(L, "KGEmbedding: %s must be a positive integer, got %s", k,
                   luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    return v;
}

static void kgemb_build(lua_State *L, nnL_layer *l) {
    kgemb_cfg *c = NNL_CFG(l, kgemb_cfg);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "model");
    c->model = -1;
    for (int i = 0; model_names[i] && lua_type(L, -1) == LUA_TSTRING; i++)
        if (!strcmp(lua_tostring(L, -1), model_names[i])) c->model = i;
    if (c->model < 0)
        luaL_error(L, "KGEmbedding: model must be 'transe', 'distmult', 'complex' or 'rotate', "
                      "got %s", luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    c->num_entities = positive_field(L, "num_entities");
    c->num_relations = positive_field(L, "num_relations");
    c->dim = positive_field(L, "dim");
    c->gamma = nnL_optnumfield(L, 1, "gamma", 12);
    c->epsilon = nnL_optnumfield(L, 1, "epsilon", 2);
    double p = nnL_optnumfield(L, 1, "p_norm", 1);
    if (p != 1 && p != 2) luaL_error(L, "KGEmbedding: p_norm must be 1 or 2");
    c->p_norm = (int64_t)p;
    c->sparse = nnL_optboolfield(L, 1, "sparse", 1);
    double range = (c->gamma + c->epsilon) / (double)c->dim;
    c->phase = M_PI / range;
    double init = nnL_optnumfield(L, 1, "init", range);
    int complex = c->model == NN_KGE_COMPLEX || c->model == NN_KGE_ROTATE;
    int64_t de = complex ? 2 * c->dim : c->dim, dr = c->model == NN_KGE_COMPLEX ? 2 * c->dim : c->dim;
    nnL_set_param(L, ENTITY, nnL_uniform(L, 2, (int64_t[]){c->num_entities, de}, init));
    double rinit = c->model == NN_KGE_ROTATE ? range : init;
    nnL_set_param(L, RELATION, nnL_uniform(L, 2, (int64_t[]){c->num_relations, dr}, rinit));
    if (c->sparse)
        for (int i = 0; i < 2; i++) {
            nn_tensor *t = nnL_slot_tensor(L, lua_gettop(L), i);
            if (nn_set_sparse_grad(t, 1) < 0) nnL_engine_error(L);
            lua_pop(L, 1);
        }
}

/* scores of (anchor, rel, cand) (head: candidates are heads) */
static int score(lua_State *L, int head, int triples) {
    nnL_layer *l = nnL_checklayer(L, 1);
    const kgemb_cfg *c = NNL_CFG(l, kgemb_cfg);
    nn_tensor *anchor = nnL_checktensor(L, 2), *rel = nnL_checktensor(L, 3);
    nn_tensor *cand = nnL_checktensor(L, 4);
    nn_tensor *E = nnL_slot_tensor(L, 1, ENTITY), *R = nnL_slot_tensor(L, 1, RELATION);
    nn_kge_args a = {(nn_kge_model)c->model, c->gamma, (int)c->p_norm, head, c->phase};
    if (!triples) NNL_RETURN(nn_kge_score(E, R, anchor, rel, cand, &a, NNL_BASE));
    nn_tensor **col = nnL_newslot(L); /* t as (B, 1) candidates */
    *col = nn_reshape(cand, 2, (int64_t[]){nn_numel(cand), 1});
    nnL_finish(L, col);
    nn_tensor **s = nnL_newslot(L);
    *s = nn_kge_score(E, R, anchor, rel, *col, &a, NNL_BASE);
    nnL_finish(L, s);
    NNL_RETURN(nn_reshape(*s, 1, (int64_t[]){nn_numel(*s)}));
}

/* forward(h, r, t) -> (B): scores of the triples; also :score */
static int kgemb_forward(lua_State *L, nnL_layer *l) {
    (void)l;
    return score(L, 0, 1);
}
static int l_score(lua_State *L) { return score(L, 0, 1); }
/* score_tails(h, r, cand (B, N) or (N)) -> (B, N) */
static int l_score_tails(lua_State *L) { return score(L, 0, 0); }
/* score_heads(t, r, cand) -> (B, N) */
static int l_score_heads(lua_State *L) { return score(L, 1, 0); }

/* normalize_entities_([idx[, max_norm = 1]]): TransE's constraint, entity
 * rows (all, or those in idx) rescaled to norm <= max_norm */
static int l_normalize_entities_(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    const kgemb_cfg *c = NNL_CFG(l, kgemb_cfg);
    nn_tensor *idx = lua_isnoneornil(L, 2) ? NULL : nnL_checktensor(L, 2);
    double max_norm = luaL_optnumber(L, 3, 1);
    lua_settop(L, 3);
    nn_tensor *E = nnL_slot_tensor(L, 1, ENTITY);
    if (!idx) {
        nnL_push(L, nn_arange(NN_I64, NNL_BASE, (double)E->shape[0] + NNL_BASE, 1));
        idx = nnL_testtensor(L, -1);
    }
    int prev = nn_set_grad_enabled(0);
    int rc = nn_embedding_renorm_(E, idx, max_norm, c->p_norm == 1 ? 1 : 2, NNL_BASE);
    nn_set_grad_enabled(prev);
    if (rc < 0) return nnL_engine_error(L);
    return 0;
}

static const nnL_slot kgemb_slots[] = {{"entity", NNL_PARAM}, {"relation", NNL_PARAM}, {NULL, 0}};
static const nnL_field kgemb_fields[] = {
    {"model", NNL_F_CHOICE, offsetof(kgemb_cfg, model), model_names},
    NNL_FIELD(NNL_F_INT, kgemb_cfg, num_entities),
    NNL_FIELD(NNL_F_INT, kgemb_cfg, num_relations),
    NNL_FIELD(NNL_F_INT, kgemb_cfg, dim),
    NNL_FIELD(NNL_F_NUM, kgemb_cfg, gamma),
    NNL_FIELD(NNL_F_INT, kgemb_cfg, p_norm),
    NNL_FIELD(NNL_F_NUM, kgemb_cfg, phase),
    NNL_FIELD(NNL_F_BOOL, kgemb_cfg, sparse), NNL_END_FIELDS};
static const char *const kgemb_opts[] = {"model", "num_entities", "num_relations", "dim", "gamma",
                                         "epsilon", "init", "p_norm", "sparse", NULL};
static const luaL_Reg kgemb_methods[] = {
    {"score", l_score}, {"score_tails", l_score_tails}, {"score_heads", l_score_heads},
    {"normalize_entities_", l_normalize_entities_}, {NULL, NULL}};
static const nnL_layer_class kgemb_class = {
    "KGEmbedding", sizeof(kgemb_cfg), kgemb_slots, kgemb_fields, kgemb_opts, 1,
    kgemb_build, kgemb_forward, kgemb_methods};

void nnL_open_kge(lua_State *L) {
    static const luaL_Reg fns[] = {{"kge_score", l_kge_score}, {"sparse_grad_", l_sparse_grad_},
                                   {"sparse_grad_rows", l_sparse_grad_rows},
                                   {"sparse_grad_count", l_sparse_grad_count}, {NULL, NULL}};
    static const nnL_options options[] = {{"kge_score", kge_opts}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
    static const nnL_layer_class *const classes[] = {&kgemb_class, NULL};
    nnL_register_layers(L, classes);
}
