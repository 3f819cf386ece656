/* lkge.c -- knowledge-graph embedding scores and row-sparse gradients:
 * nn.kge_score, and the tensor methods sparse_grad_ / sparse_grad_rows.
 * The layers and training pieces are in lua/nnlua/kge.lua. */
#include "lnnlua.h"

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

void nnL_open_kge(lua_State *L) {
    static const luaL_Reg fns[] = {{"kge_score", l_kge_score}, {"sparse_grad_", l_sparse_grad_},
                                   {"sparse_grad_rows", l_sparse_grad_rows},
                                   {"sparse_grad_count", l_sparse_grad_count}, {NULL, NULL}};
    static const nnL_options options[] = {{"kge_score", kge_opts}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
