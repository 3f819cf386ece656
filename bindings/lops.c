/* lops.c -- tensor operations as Lua functions. Each is registered once in
 * the module table, which is also the tensors' method table, so
 * nn.matmul(a, b) and a:matmul(b) are the same C function. */
#include "lnnlua.h"

#include <math.h>
#include <string.h>

/* ---- elementwise (one closure per op; the op id is the upvalue) -------- */

static int l_unary(lua_State *L) {
    nn_unary_op op = (nn_unary_op)lua_tointeger(L, lua_upvalueindex(1));
    int inplace = lua_toboolean(L, lua_upvalueindex(2));
    nn_tensor *x = nnL_checktensor(L, 1);
    double p0 = 0, p1 = 0;
    if (op == NN_CLAMP && (nnL_testtensor(L, 2) || nnL_testtensor(L, 3))) {
        nn_tensor *lo = nnL_testtensor(L, 2), *hi = nnL_testtensor(L, 3);
        if (!lo && !lua_isnoneornil(L, 2)) lo = nnL_checkoperand(L, 2, x);
        if (!hi && !lua_isnoneornil(L, 3)) hi = nnL_checkoperand(L, 3, x);
        if (!inplace) NNL_RETURN(nn_clamp_tensor(x, lo, hi));
        nnL_push(L, nn_clamp_tensor(x, lo, hi));
        if (nn_copy_(x, nnL_checktensor(L, -1)) < 0) return nnL_engine_error(L);
        lua_settop(L, 1);
        return 1;
    }
    if (op == NN_CLAMP) {
        p0 = luaL_optnumber(L, 2, -HUGE_VAL);
        p1 = luaL_optnumber(L, 3, HUGE_VAL);
        if (p0 > p1) return luaL_argerror(L, 3, "max is below min");
    } else if (op == NN_LEAKY_RELU) {
        p0 = luaL_optnumber(L, 2, 0.01);
    } else if (op == NN_ELU || op == NN_ELU_DERIV) {
        p0 = luaL_optnumber(L, 2, 1.0); /* alpha */
    } else if (op == NN_SOFTPLUS || op == NN_SOFTPLUS_DERIV) {
        p0 = luaL_optnumber(L, 2, 1.0);  /* beta */
        p1 = luaL_optnumber(L, 3, 20.0); /* threshold */
        if (!(p0 > 0)) return luaL_argerror(L, 2, "beta must be positive");
    }
    if (!inplace) NNL_RETURN(nn_unary(op, x, p0, p1));
    if (nn_unary_(op, x, p0, p1) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

static int l_binary(lua_State *L) {
    nn_binary_op op = (nn_binary_op)lua_tointeger(L, lua_upvalueindex(1));
    int inplace = lua_toboolean(L, lua_upvalueindex(2));
    nn_tensor *a = nnL_checktensor(L, 1);
    nn_tensor *b = nnL_checkoperand(L, 2, a);
    if (!inplace) NNL_RETURN(nn_binary(op, a, b));
    if (nn_binary_(op, a, b) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

static void register_elementwise(lua_State *L) {
    for (int op = 0; op < NN_UNARY_COUNT; op++)
        for (int inplace = 0; inplace < 2; inplace++) {
            lua_pushinteger(L, op);
            lua_pushboolean(L, inplace);
            nnL_pushcclosure(L, l_unary, 2);
            lua_pushfstring(L, inplace ? "%s_" : "%s", nn_unary_names[op]);
            lua_insert(L, -2);
            lua_settable(L, -3);
        }
    for (int op = 0; op < NN_BINARY_COUNT; op++)
        for (int inplace = 0; inplace < 2; inplace++) {
            lua_pushinteger(L, op);
            lua_pushboolean(L, inplace);
            nnL_pushcclosure(L, l_binary, 2);
            lua_pushfstring(L, inplace ? "%s_" : "%s", nn_binary_names[op]);
            lua_insert(L, -2);
            lua_settable(L, -3);
        }
}

/* op_table() -> {unary = {{name =, saves = 'in' | 'out' | 'none'}, ...},
 * binary = {names}, reduce = {names}}: the engine's op tables, for the
 * gradient checks and the documentation test */
static int l_op_table(lua_State *L) {
    static const char *const saves[] = {"none", "in", "out"};
    lua_createtable(L, 0, 3);
    lua_createtable(L, NN_UNARY_COUNT, 0);
    for (int op = 0; op < NN_UNARY_COUNT; op++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, nn_unary_names[op]);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, saves[nn_unary_saves[op]]);
        lua_setfield(L, -2, "saves");
        lua_rawseti(L, -2, op + 1);
    }
    lua_setfield(L, -2, "unary");
    const char *const *names[2] = {nn_binary_names, nn_reduce_names};
    int counts[2] = {NN_BINARY_COUNT, NN_REDUCE_COUNT};
    for (int k = 0; k < 2; k++) {
        lua_createtable(L, counts[k], 0);
        for (int op = 0; op < counts[k]; op++) {
            lua_pushstring(L, names[k][op]);
            lua_rawseti(L, -2, op + 1);
        }
        lua_setfield(L, -2, k ? "reduce" : "binary");
    }
    return 1;
}

static int l_where(lua_State *L) {
    nn_tensor *c = nnL_checktensor(L, 1);
    nn_tensor *a0 = nnL_testtensor(L, 2), *b0 = nnL_testtensor(L, 3);
    nn_tensor *a = nnL_checkoperand(L, 2, b0);
    nn_tensor *b = nnL_checkoperand(L, 3, a0);
    NNL_RETURN(nn_where(c, a, b));
}

/* ---- reductions -------------------------------------------------------- */

/* dims from a number or a table at arg (nil: all); returns count */
int nnL_checkdims(lua_State *L, int arg, const nn_tensor *x, int *dims) {
    if (lua_isnoneornil(L, arg)) return 0;
    if (!lua_istable(L, arg)) {
        dims[0] = nnL_checkdim(L, arg, x->ndim);
        return 1;
    }
    int n = nnL_checklen(L, arg, NN_MAX_DIMS);
    for (int i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        dims[i] = nnL_checkdim(L, lua_gettop(L), x->ndim);
        lua_pop(L, 1);
    }
    if (n == 0) luaL_argerror(L, arg, "empty dim list");
    return n;
}

static int l_reduce(lua_State *L) {
    nn_reduce_op op = (nn_reduce_op)lua_tointeger(L, lua_upvalueindex(1));
    nn_tensor *x = nnL_checktensor(L, 1);
    nn_reduce_args a = {.correction = 1, .p = 2, .base = NNL_BASE};
    int first = 2;
    if (op == NN_NORM) { /* norm(p, dim, keepdim) as PyTorch */
        if (lua_type(L, 2) == LUA_TSTRING) {
            const char *s = lua_tostring(L, 2);
            if (strcmp(s, "inf") && strcmp(s, "-inf"))
                return luaL_argerror(L, 2, "expected a number, 'inf' or '-inf'");
            a.p = s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
        } else {
            a.p = luaL_optnumber(L, 2, 2);
        }
        first = 3;
    }
    a.ndims = nnL_checkdims(L, first, x, a.dims);
    a.keepdim = lua_toboolean(L, first + 1);
    if ((op == NN_VAR || op == NN_STD) && !lua_isnoneornil(L, first + 2))
        a.correction = lua_toboolean(L, first + 2) ? 1 : 0;
    if (op == NN_MAX || op == NN_MIN) {
        if (a.ndims > 1) return luaL_argerror(L, first, "one dim at a time");
        if (a.ndims == 1) { /* values and indices */
            nn_tensor **v = nnL_newslot(L), **i = nnL_newslot(L);
            if (nn_max_dim(x, a.dims[0], a.keepdim, op == NN_MIN, NNL_BASE, v, i) < 0)
                return nnL_engine_error(L);
            nnL_finish(L, v);
            return 2;
        }
    }
    NNL_RETURN(nn_reduce(op, x, &a));
}

static void register_reductions(lua_State *L) {
    for (int op = 0; op < NN_REDUCE_COUNT; op++) {
        lua_pushinteger(L, op);
        nnL_pushcclosure(L, l_reduce, 1);
        lua_setfield(L, -2, nn_reduce_names[op]);
    }
}

static int l_softmax(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    NNL_RETURN(nn_softmax(x, d));
}

static int l_log_softmax(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    NNL_RETURN(nn_log_softmax(x, d));
}

/* x:op(dim) for the scans along one dim */
static int scan_along(lua_State *L, nn_tensor *(*op)(const nn_tensor *, int)) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    NNL_RETURN(op(x, d));
}
static int l_cumsum(lua_State *L) { return scan_along(L, nn_cumsum); }
static int l_cumprod(lua_State *L) { return scan_along(L, nn_cumprod); }
static int l_logcumsumexp(lua_State *L) { return scan_along(L, nn_logcumsumexp); }

static int l_matmul(lua_State *L) {
    nn_tensor *a = nnL_checktensor(L, 1), *b = nnL_checktensor(L, 2);
    NNL_RETURN(nn_matmul(a, b));
}

/* ---- views ------------------------------------------------------------- */

static int l_view(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int64_t shape[NN_MAX_DIMS];
    int nd = nnL_checkshape_signed(L, 2, shape);
    NNL_RETURN(nn_view(x, nd, shape));
}

static int l_reshape(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int64_t shape[NN_MAX_DIMS];
    int nd = nnL_checkshape_signed(L, 2, shape);
    NNL_RETURN(nn_reshape(x, nd, shape));
}

static int l_transpose(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d0 = nnL_checkdim(L, 2, x->ndim), d1 = nnL_checkdim(L, 3, x->ndim);
    NNL_RETURN(nn_transpose(x, d0, d1));
}

static int l_t(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    if (x->ndim > 2) return nnL_error(L, "t() expects at most 2 dims (got %d): "
                                        "use transpose", x->ndim);
    NNL_RETURN(nn_transpose(x, 0, x->ndim - 1 > 0 ? 1 : 0));
}

static int l_permute(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int dims[NN_MAX_DIMS];
    int table = lua_istable(L, 2), n = table ? nnL_checklen(L, 2, NN_MAX_DIMS) : lua_gettop(L) - 1;
    if (n != x->ndim)
        return luaL_argerror(L, 2, lua_pushfstring(L, "expected %d dims, got %d",
                                                   x->ndim, n));
    for (int i = 0; i < n; i++) {
        if (table) lua_geti(L, 2, i + 1);
        else lua_pushvalue(L, i + 2);
        dims[i] = nnL_checkdim(L, lua_gettop(L), x->ndim);
        lua_pop(L, 1);
    }
    NNL_RETURN(nn_permute(x, dims));
}

static int64_t checkpos(lua_State *L, int arg, int64_t size) {
    lua_Integer i = luaL_checkinteger(L, arg);
    if (i < 0) i += size + 1;
    if (i < 1 || i > size)
        luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range 1..%I",
                                              luaL_checkinteger(L, arg), (lua_Integer)size));
    return i - 1;
}

static int l_narrow(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    int64_t size = x->ndim ? x->shape[d < 0 ? d + x->ndim : d] : 0;
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    if (start < 1 || len < 0 || start - 1 > size || len > size - (start - 1))
        return luaL_argerror(L, 3, lua_pushfstring(L,
            "narrow from %I for %I is out of range for a dim of size %I",
            start, len, (lua_Integer)size));
    NNL_RETURN(nn_narrow(x, d, start - 1, len));
}

static int l_select(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    if (x->ndim == 0) return nnL_error(L, "cannot select from a 0-dim tensor");
    int64_t i = checkpos(L, 3, x->shape[d < 0 ? d + x->ndim : d]);
    NNL_RETURN(nn_select(x, d, i));
}

static int l_slice(lua_State *L) { /* slice(dim, first, last[, step]) */
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    int64_t size = x->ndim ? x->shape[d < 0 ? d + x->ndim : d] : 0;
    lua_Integer a = luaL_optinteger(L, 3, 1), b = luaL_optinteger(L, 4, -1);
    lua_Integer step = luaL_optinteger(L, 5, 1);
    if (a < 0) a += size + 1;
    if (b < 0) b += size + 1;
    if (a < 1 || a > size + 1 || b < a - 1 || b > size)
        return luaL_argerror(L, 3, lua_pushfstring(L,
            "range %I..%I out of range for a dim of size %I", a, b, (lua_Integer)size));
    if (step < 1) return luaL_argerror(L, 5, "step must be positive");
    NNL_RETURN(nn_slice(x, d, a - 1, b, step));
}

static int l_expand(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int64_t shape[NN_MAX_DIMS];
    nn_tensor *like = nnL_testtensor(L, 2);
    int nd;
    if (like) {
        nd = like->ndim;
        memcpy(shape, like->shape, sizeof shape);
    } else {
        nd = nnL_checkshape_signed(L, 2, shape);
    }
    NNL_RETURN(nn_expand(x, nd, shape));
}

static int l_squeeze(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) NNL_RETURN(nn_squeeze_all(x));
    int d = nnL_checkdim(L, 2, x->ndim);
    NNL_RETURN(nn_squeeze(x, d));
}

static int l_unsqueeze(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim + 1);
    NNL_RETURN(nn_unsqueeze(x, d));
}

static int l_flatten(lua_State *L) { /* flatten([first[, last]]) */
    nn_tensor *x = nnL_checktensor(L, 1);
    if (x->ndim == 0) NNL_RETURN(nn_reshape(x, 1, (int64_t[]){1}));
    int a = nnL_optdim(L, 2, x->ndim, 0), b = nnL_optdim(L, 3, x->ndim, -1);
    if (a < 0) a += x->ndim;
    if (b < 0) b += x->ndim;
    if (b < a) return luaL_argerror(L, 3, "last dim before first dim");
    int64_t shape[NN_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < a; i++) shape[k++] = x->shape[i];
    shape[k++] = -1;
    for (int i = b + 1; i < x->ndim; i++) shape[k++] = x->shape[i];
    if (nn_numel(x) == 0) shape[a] = 0;
    NNL_RETURN(nn_reshape(x, k, shape));
}

static int l_contiguous(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    NNL_RETURN(nn_contiguous(x));
}

static int l_clone(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    NNL_RETURN(nn_clone(x));
}

static int l_float(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    NNL_RETURN(nn_to_dtype(x, NN_F32));
}

static int l_long(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    NNL_RETURN(nn_to_dtype(x, NN_I64));
}

static int l_to(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    nn_dtype dt = nnL_checkdtype(L, 2);
    if (dt == x->dtype) {
        lua_settop(L, 1);
        return 1;
    }
    NNL_RETURN(nn_to_dtype(x, dt));
}

/* ---- inspection -------------------------------------------------------- */

static int l_size(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_createtable(L, x->ndim, 0);
        for (int i = 0; i < x->ndim; i++) {
            lua_pushinteger(L, x->shape[i]);
            lua_rawseti(L, -2, i + 1);
        }
        return 1;
    }
    int d = nnL_checkdim(L, 2, x->ndim);
    if (x->ndim == 0) return nnL_error(L, "a 0-dim tensor has no sizes");
    lua_pushinteger(L, x->shape[d < 0 ? d + x->ndim : d]);
    return 1;
}

static int l_stride(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_createtable(L, x->ndim, 0);
    for (int i = 0; i < x->ndim; i++) {
        lua_pushinteger(L, x->stride[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_dim(lua_State *L) {
    lua_pushinteger(L, nnL_checktensor(L, 1)->ndim);
    return 1;
}

static int l_numel(lua_State *L) {
    lua_pushinteger(L, nn_numel(nnL_checktensor(L, 1)));
    return 1;
}

static int l_is_contiguous(lua_State *L) {
    lua_pushboolean(L, nn_is_contiguous(nnL_checktensor(L, 1)));
    return 1;
}

static int l_item(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    if (nn_numel(x) != 1) {
        char s[96];
        return nnL_error(L, "item() needs exactly one element, got a %s tensor",
                         nn_shape_str(x, s, sizeof s));
    }
    int64_t idx[NN_MAX_DIMS] = {0};
    nnL_pushelement(L, x, idx);
    return 1;
}

static int l_is_tensor(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, NNL_TENSOR) != NULL);
    return 1;
}

/* ---- in-place writes ------------------------------------------------------ */

static int l_copy_(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *src = nnL_checktensor(L, 2);
    if (nn_copy_(x, src) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

static int l_fill_(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    if (nn_fill_(x, luaL_checknumber(L, 2)) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

static int l_zero_(lua_State *L) {
    lua_settop(L, 1);
    lua_pushinteger(L, 0);
    return l_fill_(L);
}

/* ---- indexing ------------------------------------------------------------- */

static int l_gather(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    nn_tensor *index = nnL_checktensor(L, 3);
    NNL_RETURN(nn_gather(x, d, index, NNL_BASE));
}

static int scatter(lua_State *L, int accumulate) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    nn_tensor *index = nnL_checktensor(L, 3), *src = nnL_checktensor(L, 4);
    NNL_RETURN(nn_scatter(x, d, index, src, accumulate, NNL_BASE));
}

static int l_scatter(lua_State *L) { return scatter(L, 0); }
static int l_scatter_add(lua_State *L) { return scatter(L, 1); }

static int l_index_select(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    nn_tensor *index = nnL_checktensor(L, 3);
    NNL_RETURN(nn_index_select(x, d, index, NNL_BASE));
}

static int l_index_add(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    nn_tensor *index = nnL_checktensor(L, 3), *src = nnL_checktensor(L, 4);
    double alpha = luaL_optnumber(L, 5, 1);
    NNL_RETURN(nn_index_add(x, d, index, src, alpha, NNL_BASE));
}

static int l_masked_fill(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *m = nnL_checktensor(L, 2);
    double v = luaL_checknumber(L, 3);
    NNL_RETURN(nn_masked_fill(x, m, v));
}

/* keep_rows_(idx) -> the first #idx rows of x, now rows idx of before (in place) */
static int l_keep_rows_(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *idx = nnL_checktensor(L, 2);
    if (nn_keep_rows_(x, idx, NNL_BASE) < 0) return nnL_engine_error(L);
    NNL_RETURN(nn_narrow(x, 0, 0, idx->shape[0]));
}

static int l_masked_fill_(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *m = nnL_checktensor(L, 2);
    if (nn_masked_fill_(x, m, luaL_checknumber(L, 3)) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

static int l_one_hot(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer classes = luaL_checkinteger(L, 2);
    NNL_RETURN(nn_one_hot(x, classes, NNL_BASE));
}

static int l_tril(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer k = luaL_optinteger(L, 2, 0);
    NNL_RETURN(nn_tril(x, k, 0));
}

static int l_triu(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer k = luaL_optinteger(L, 2, 0);
    NNL_RETURN(nn_tril(x, k, 1));
}

/* ---- joining ----------------------------------------------------------- */

/* the n tensors of the list at arg, left on the stack (see lnnlua.h); n
 * is read once by the caller, as a __len may answer differently each time */
static void checklist(lua_State *L, int arg, nn_tensor **ts, int n) {
    if (n < 1) luaL_argerror(L, arg, "empty list of tensors");
    luaL_checkstack(L, n, "too many tensors");
    for (int i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        if (!(ts[i] = nnL_testtensor(L, -1)))
            luaL_argerror(L, arg, lua_pushfstring(L, "entry %d is %s, not a tensor",
                                                  i + 1, luaL_typename(L, -1)));
    }
}

#define MAX_LIST 4096

static int join(lua_State *L, int stack) {
    lua_settop(L, 2); /* the list of pointers below goes above the dim */
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = nnL_checklen(L, 1, MAX_LIST);
    nn_tensor **ts = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ts, 0);
    checklist(L, 1, ts, n);
    int nd = ts[0]->ndim + stack;
    int d = nnL_optdim(L, 2, nd, 0);
    NNL_RETURN(stack ? nn_stack(ts, n, d) : nn_cat(ts, n, d));
}

static int l_cat(lua_State *L) { return join(L, 0); }
static int l_stack(lua_State *L) { return join(L, 1); }

/* split(size or {sizes}, dim) and chunk(n, dim): a table of views */
static int pieces(lua_State *L, int chunk) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_optdim(L, 3, x->ndim, 0);
    if (x->ndim == 0) return nnL_error(L, "cannot split a 0-dim tensor");
    int64_t size = x->shape[d < 0 ? d + x->ndim : d];
    int64_t sizes[MAX_LIST];
    int n = 0;
    if (lua_istable(L, 2)) {
        n = nnL_checklen(L, 2, MAX_LIST);
        for (int i = 0; i < n; i++) {
            lua_geti(L, 2, i + 1);
            sizes[i] = luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
    } else {
        lua_Integer k = luaL_checkinteger(L, 2);
        if (k < 1) return luaL_argerror(L, 2, "must be positive");
        int64_t each = chunk ? (size > 0 ? (size - 1) / k + 1 : 1) : k; /* no overflow */
        for (int64_t at = 0; at < size && n < MAX_LIST; at += sizes[n - 1])
            sizes[n++] = each <= size - at ? each : size - at;
        if (size == 0) sizes[n++] = 0;
    }
    nn_tensor **out = lua_newuserdatauv(L, (n ? n : 1) * sizeof *out, 0);
    if (nn_split(x, d, sizes, n, out) < 0) return nnL_engine_error(L);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        nn_tensor **slot = nnL_newslot(L);
        *slot = out[i];
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* unbind([dim]): a table of the slices along dim (one node for all) */
static int l_unbind(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    if (x->ndim == 0) return nnL_error(L, "cannot unbind a 0-dim tensor");
    int d = nnL_optdim(L, 2, x->ndim, 0);
    int64_t n = x->shape[d < 0 ? d + x->ndim : d];
    if (n > MAX_LIST)
        return luaL_argerror(L, 2, lua_pushfstring(L, "dim has %I slices, at most %d", (lua_Integer)n,
                                                   MAX_LIST));
    nn_tensor **out = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *out, 0);
    if (nn_unbind(x, d, out) < 0) return nnL_engine_error(L);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        nn_tensor **slot = nnL_newslot(L);
        *slot = out[i];
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_split(lua_State *L) { return pieces(L, 0); }
static int l_chunk(lua_State *L) { return pieces(L, 1); }

/* ---- ordering ------------------------------------------------------------ */

static int l_sort(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_optdim(L, 2, x->ndim, -1), descending = lua_toboolean(L, 3);
    nn_tensor **v = nnL_newslot(L), **i = nnL_newslot(L);
    if (nn_sort(x, d, descending, NNL_BASE, v, i) < 0)
        return nnL_engine_error(L);
    nnL_finish(L, v);
    return 2;
}

/* argsort(x[, dim = -1[, descending]]): the indices of a stable sort */
static int l_argsort(lua_State *L) {
    l_sort(L);
    lua_remove(L, -2);
    return 1;
}

static int l_masked_select(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *mask = nnL_checktensor(L, 2);
    NNL_RETURN(nn_masked_select(x, mask));
}

static int l_nonzero(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    NNL_RETURN(nn_nonzero(x, NNL_BASE));
}

/* unique(x[, {return_inverse = false, return_counts = false, sorted = true}])
 * -> values[, inverse][, counts] */
static const char *const unique_opts[] = {"sorted", "return_inverse", "return_counts", NULL};
static int l_unique(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    nnL_checkoptions(L, 2, "unique", unique_opts);
    if (!nnL_optboolfield(L, 2, "sorted", 1))
        return luaL_argerror(L, 2, "unique always sorts (sorted = false is not supported)");
    int inv = nnL_optboolfield(L, 2, "return_inverse", 0), cnt = nnL_optboolfield(L, 2, "return_counts", 0);
    nn_tensor **v = nnL_newslot(L), **i = inv ? nnL_newslot(L) : NULL, **c = cnt ? nnL_newslot(L) : NULL;
    nn_tensor *vi, *ii = NULL, *ci = NULL;
    if (nn_unique(x, NNL_BASE, &vi, inv ? &ii : NULL, cnt ? &ci : NULL) < 0) return nnL_engine_error(L);
    *v = vi;
    if (i) *i = ii;
    if (c) *c = ci;
    nnL_finish(L, v);
    return 1 + inv + cnt;
}

static int l_isin(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *test = nnL_checktensor(L, 2);
    NNL_RETURN(nn_isin(x, test));
}

static int l_topk(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    int d = nnL_optdim(L, 3, x->ndim, -1);
    int largest = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
    nn_tensor **v = nnL_newslot(L), **i = nnL_newslot(L);
    if (nn_topk(x, k, d, largest, NNL_BASE, v, i) < 0) return nnL_engine_error(L);
    nnL_finish(L, v);
    return 2;
}

void nnL_open_ops(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"where", l_where}, {"op_table", l_op_table}, {"softmax", l_softmax},
        {"log_softmax", l_log_softmax}, {"cumsum", l_cumsum}, {"cumprod", l_cumprod},
        {"logcumsumexp", l_logcumsumexp}, {"argsort", l_argsort},
        {"masked_select", l_masked_select}, {"nonzero", l_nonzero}, {"unique", l_unique},
        {"matmul", l_matmul}, {"view", l_view}, {"reshape", l_reshape},
        {"transpose", l_transpose}, {"t", l_t}, {"permute", l_permute},
        {"narrow", l_narrow}, {"select", l_select}, {"slice", l_slice},
        {"expand", l_expand}, {"squeeze", l_squeeze},
        {"unsqueeze", l_unsqueeze}, {"flatten", l_flatten},
        {"contiguous", l_contiguous}, {"clone", l_clone}, {"float", l_float},
        {"long", l_long}, {"to", l_to}, {"size", l_size}, {"stride", l_stride},
        {"dim", l_dim}, {"numel", l_numel}, {"is_contiguous", l_is_contiguous},
        {"item", l_item}, {"totable", nnL_totable}, {"is_tensor", l_is_tensor},
        {"copy_", l_copy_}, {"fill_", l_fill_}, {"zero_", l_zero_},
        {"gather", l_gather}, {"scatter", l_scatter},
        {"scatter_add", l_scatter_add}, {"index_select", l_index_select},
        {"index_add", l_index_add}, {"masked_fill", l_masked_fill},
        {"masked_fill_", l_masked_fill_}, {"keep_rows_", l_keep_rows_}, {"one_hot", l_one_hot},
        {"tril", l_tril}, {"triu", l_triu}, {"cat", l_cat},
        {"stack", l_stack}, {"split", l_split}, {"chunk", l_chunk}, {"unbind", l_unbind},
        {"sort", l_sort}, {"topk", l_topk}, {"isin", l_isin}, {NULL, NULL}};
    static const nnL_options options[] = {{"unique", unique_opts}, {NULL, NULL}};
    register_elementwise(L);
    register_reductions(L);
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
