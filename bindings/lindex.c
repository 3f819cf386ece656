/* lindex.c -- t[i], t[{i, {first, last}, {}, {first, last, step}}] and
 * assignment through the same keys.
 *
 * Keys count from 1; negative keys count from the end (-1 is the last).
 *   t[i]               select along dim 1 (a number when t is 1-D)
 *   t[{a, b}]          one entry per dim, from the first:
 *       i              select (the dim disappears)
 *       {}             the whole dim
 *       {first, last}  an inclusive range; {first, last, step} with a step
 *       {i}            the range {i, i}: keeps the dim
 *   t[idx]             an i64 tensor of indices: rows along dim 1 (a copy)
 *   t[mask]            a float mask over t's leading dims (or broadcast to
 *                      t): the selected entries (masked_select, a copy)
 * Assignment writes through the same view: t[{{}, 2}] = 0 fills a column,
 * t[k] = other copies (with broadcasting), t[mask] = v fills where mask. */
#include "lnnlua.h"

static int64_t checkpos(lua_State *L, lua_Integer i, int64_t size, int dim) {
    if (i < 0) i += size + 1;
    if (i < 1 || i > size)
        return luaL_error(L, "index %d out of range for dim %d of size %d",
                          (int)i, dim + 1, (int)size);
    return i - 1;
}

static lua_Integer range_field(lua_State *L, int idx, int n, lua_Integer def) {
    lua_geti(L, idx, n);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    int missing = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (missing) return def;
    if (!ok) luaL_error(L, "range entries must be integers");
    return v;
}

/* Replaces the tensor at stack index `cur` by the view for one key entry
 * at stack index `e`; *dim is the next dim of the view to index. */
static void apply_entry(lua_State *L, int cur, int e, int *dim) {
    nn_tensor *t = nnL_checktensor(L, cur);
    if (*dim >= t->ndim)
        luaL_error(L, "too many indices for a %d-dim tensor", t->ndim);
    int64_t size = t->shape[*dim];
    nn_tensor *v;
    if (lua_type(L, e) == LUA_TNUMBER) {
        if (!lua_isinteger(L, e)) luaL_error(L, "indices must be integers");
        v = nn_select(t, *dim, checkpos(L, lua_tointeger(L, e), size, *dim));
    } else if (lua_istable(L, e)) {
        lua_Integer n = nnL_checklen(L, e, 3);
        lua_Integer first = range_field(L, e, 1, 1);
        lua_Integer last = range_field(L, e, 2, n == 1 ? first : -1);
        lua_Integer step = range_field(L, e, 3, 1);
        if (step < 1) luaL_error(L, "range step must be positive");
        int64_t a = first < 0 ? first + size + 1 : first;
        int64_t b = last < 0 ? last + size + 1 : last;
        if (a < 1 || a > size + 1 || b < a - 1 || b > size)
            luaL_error(L, "range {%d, %d} out of range for dim %d of size %d",
                       (int)first, (int)last, *dim + 1, (int)size);
        v = nn_slice(t, *dim, a - 1, b, step);
        (*dim)++;
    } else {
        luaL_error(L, "index entries must be integers or {first, last[, step]} "
                      "tables, got %s", luaL_typename(L, e));
        return;
    }
    nnL_push(L, v);
    lua_replace(L, cur);
}

/* Pushes the view selected by key (stack index 2) from the tensor at 1. */
static void push_view(lua_State *L) {
    lua_pushvalue(L, 1);
    int cur = lua_gettop(L), dim = 0;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        apply_entry(L, cur, 2, &dim);
        return;
    }
    lua_Integer n = nnL_checklen(L, 2, NN_MAX_DIMS);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        apply_entry(L, cur, cur + 1, &dim);
        lua_pop(L, 1); /* the entry */
    }
}

int nnL_index_get(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    nn_tensor *key = nnL_testtensor(L, 2);
    if (key) {
        if (key->dtype != NN_I64) NNL_RETURN(nn_masked_select(t, key));
        return nnL_push(L, nn_index_select(t, 0, key, NNL_BASE));
    }
    push_view(L);
    nn_tensor *v = nnL_checktensor(L, -1);
    if (v->ndim == 0) nnL_pushelement(L, v, NULL);
    return 1;
}

int nnL_index_set(lua_State *L) {
    nn_tensor *key = nnL_testtensor(L, 2);
    if (key) {
        nn_tensor *t = nnL_checktensor(L, 1);
        if (nn_masked_fill_(t, key, luaL_checknumber(L, 3)) < 0)
            return nnL_engine_error(L);
        return 0;
    }
    push_view(L);
    nn_tensor *v = nnL_checktensor(L, -1);
    int rc;
    if (lua_type(L, 3) == LUA_TNUMBER) {
        rc = nn_fill_(v, lua_tonumber(L, 3));
    } else {
        nn_tensor *src = nnL_testtensor(L, 3);
        if (!src) return luaL_typeerror(L, 3, "number or tensor");
        rc = nn_copy_(v, src);
    }
    if (rc < 0) return nnL_error(L, "%s", nn_last_error());
    return 0;
}
