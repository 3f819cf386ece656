/* lcreate.c -- constructors: from tables, constants, ranges and the
 * engine's seeded generator (one per lua_State, in the registry). */
#include "lnnlua.h"

#include <math.h>

/* shape from arg on, then an optional dtype name right after it */
static int shape_and_dtype(lua_State *L, int arg, int64_t *shape, nn_dtype *dt) {
    int nd = nnL_checkshape(L, arg, shape);
    int next = lua_istable(L, arg) ? arg + 1 : arg + nd;
    if (lua_type(L, next) == LUA_TSTRING) *dt = nnL_checkdtype(L, next);
    else if (!lua_isnoneornil(L, next))
        luaL_argerror(L, next, lua_pushfstring(L, "expected a size or a dtype, got %s",
                                               luaL_typename(L, next)));
    return nd;
}

static int l_tensor(lua_State *L) {
    return nnL_from_table(L, 1, nnL_optdtype(L, 2, NN_F32));
}

static int fill(lua_State *L, double v) {
    int64_t shape[NN_MAX_DIMS];
    nn_dtype dt = NN_F32;
    int nd = shape_and_dtype(L, 1, shape, &dt);
    NNL_RETURN(nn_full_dtype(dt, nd, shape, v));
}

static int l_zeros(lua_State *L) { return fill(L, 0); }
static int l_ones(lua_State *L) { return fill(L, 1); }

static int l_empty(lua_State *L) {
    int64_t shape[NN_MAX_DIMS];
    nn_dtype dt = NN_F32;
    int nd = shape_and_dtype(L, 1, shape, &dt);
    NNL_RETURN(nn_empty(dt, nd, shape));
}

static int l_full(lua_State *L) { /* full(shape, value[, dtype]) */
    int64_t shape[NN_MAX_DIMS];
    luaL_checktype(L, 1, LUA_TTABLE);
    int nd = nnL_checkshape(L, 1, shape);
    double v = luaL_checknumber(L, 2);
    nn_dtype dt = nnL_optdtype(L, 3, NN_F32);
    NNL_RETURN(nn_full_dtype(dt, nd, shape, v));
}

static int like(lua_State *L, double v) {
    nn_tensor *x = nnL_checktensor(L, 1);
    nn_dtype dt = nnL_optdtype(L, 2, x->dtype);
    NNL_RETURN(nn_full_dtype(dt, x->ndim, x->shape, v));
}

static int l_zeros_like(lua_State *L) { return like(L, 0); }
static int l_ones_like(lua_State *L) { return like(L, 1); }

static int l_full_like(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    double v = luaL_checknumber(L, 2);
    nn_dtype dt = nnL_optdtype(L, 3, x->dtype);
    NNL_RETURN(nn_full_dtype(dt, x->ndim, x->shape, v));
}

/* arange([start,] end[, step][, dtype]): i64 when every bound is an
 * integer, as PyTorch does */
static int l_arange(lua_State *L) {
    int top = lua_gettop(L), nnum = 0, all_int = 1;
    while (nnum < top && lua_type(L, nnum + 1) == LUA_TNUMBER) {
        all_int &= lua_isinteger(L, nnum + 1);
        nnum++;
    }
    if (nnum < 1 || nnum > 3) return luaL_argerror(L, 1, "expected 1 to 3 numbers");
    double start = 0, end, step = 1;
    if (nnum == 1) {
        end = lua_tonumber(L, 1);
    } else {
        start = lua_tonumber(L, 1);
        end = lua_tonumber(L, 2);
        if (nnum == 3) step = lua_tonumber(L, 3);
    }
    if (step == 0) return luaL_argerror(L, 3, "step must be nonzero");
    nn_dtype dt = nnL_optdtype(L, nnum + 1, all_int ? NN_I64 : NN_F32);
    NNL_RETURN(nn_arange(dt, start, end, step));
}

static int l_linspace(lua_State *L) {
    double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
    lua_Integer n = luaL_checkinteger(L, 3);
    if (n < 0) return luaL_argerror(L, 3, "steps must be >= 0");
    NNL_RETURN(nn_linspace(a, b, n));
}

static int l_eye(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1), m = luaL_optinteger(L, 2, n);
    if (n < 0 || m < 0) return luaL_argerror(L, n < 0 ? 1 : 2, "size must be >= 0");
    NNL_RETURN(nn_eye(n, m));
}

static int l_rand(lua_State *L) {
    int64_t shape[NN_MAX_DIMS];
    int nd = nnL_checkshape(L, 1, shape);
    NNL_RETURN(nn_rand(nnL_rng(L), nd, shape));
}

static int l_randn(lua_State *L) {
    int64_t shape[NN_MAX_DIMS];
    int nd = nnL_checkshape(L, 1, shape);
    NNL_RETURN(nn_randn(nnL_rng(L), nd, shape));
}

static int l_rand_like(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    NNL_RETURN(nn_rand(nnL_rng(L), x->ndim, x->shape));
}

static int l_randn_like(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    NNL_RETURN(nn_randn(nnL_rng(L), x->ndim, x->shape));
}

/* randint(low, high, shape...): integers in [low, high) */
static int l_randint(lua_State *L) {
    lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
    if (hi <= lo)
        return luaL_argerror(L, 2, lua_pushfstring(L, "high (%I) must exceed low (%I)",
                                                   hi, lo));
    int64_t shape[NN_MAX_DIMS];
    int nd = nnL_checkshape(L, 3, shape);
    NNL_RETURN(nn_randint(nnL_rng(L), lo, hi, nd, shape));
}

static int l_bernoulli(lua_State *L) {
    nn_tensor *p = nnL_testtensor(L, 1);
    if (!p) { /* bernoulli(p, shape...) with a number p */
        double pv = luaL_checknumber(L, 1);
        int64_t shape[NN_MAX_DIMS];
        int nd = nnL_checkshape(L, 2, shape);
        nn_tensor **slot = nnL_newslot(L);
        *slot = nn_full(nd, shape, pv);
        nnL_finish(L, slot);
        p = *slot;
    }
    NNL_RETURN(nn_bernoulli(nnL_rng(L), p));
}

/* from_bytes(s, offset, shape...[, dtype]): the bytes of string s from
 * offset (0-based, as file formats count) read as unsigned 8-bit values */
static int l_from_bytes(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Integer off = luaL_checkinteger(L, 2);
    int64_t shape[NN_MAX_DIMS];
    nn_dtype dt = NN_F32;
    int nd = shape_and_dtype(L, 3, shape, &dt);
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        if (__builtin_mul_overflow(n, shape[i], &n)) n = INT64_MAX;
    if (off < 0 || (size_t)off > len || (uint64_t)n > len - (size_t)off)
        return luaL_argerror(L, 2, lua_pushfstring(L,
            "%I bytes from offset %I exceed the string's %I bytes",
            (lua_Integer)n, off, (lua_Integer)len));
    NNL_RETURN(nn_from_u8((const uint8_t *)s + off, dt, nd, shape));
}

/* byte_counts(s) -> (256) i64: occurrences of each byte value 0..255 */
static int l_byte_counts(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    NNL_RETURN(nn_byte_counts((const uint8_t *)s, n));
}

/* map_bytes(s, lut) -> i64 tensor: lut[byte + 1] for each byte of s */
static int l_map_bytes(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    nn_tensor *lut = nnL_checktensor(L, 2);
    NNL_RETURN(nn_map_bytes((const uint8_t *)s, n, lut));
}

/* map_file(path, offset, shape...[, dtype]) -> a tensor over the file's
 * bytes from offset (copy-on-write; pages load when touched); nil and a
 * message when the file cannot be mapped */
static int l_map_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer off = luaL_checkinteger(L, 2);
    if (off < 0) return luaL_argerror(L, 2, "offset must be >= 0");
    int64_t shape[NN_MAX_DIMS];
    nn_dtype dt = NN_F32;
    int nd = shape_and_dtype(L, 3, shape, &dt);
    if (off % (lua_Integer)nn_dtype_size(dt))
        return luaL_argerror(L, 2, lua_pushfstring(L, "offset %I is not a multiple of %d (%s)",
                             off, (int)nn_dtype_size(dt), nn_dtype_name(dt)));
    nn_tensor **slot = nnL_newslot(L);
    if (!(*slot = nn_map_file(path, (uint64_t)off, dt, nd, shape))) {
        lua_pushnil(L);
        lua_pushstring(L, nn_last_error());
        return 2;
    }
    return 1;
}

static int l_manual_seed(lua_State *L) {
    lua_Integer s = luaL_checkinteger(L, 1);
    nn_rng_seed(nnL_rng(L), (uint64_t)s);
    return 0;
}

/* the generator's state as {seed, offset}, and back: enough to resume */
static int l_rng_state(lua_State *L) {
    nn_rng *r = nnL_rng(L);
    if (lua_istable(L, 1)) {
        lua_geti(L, 1, 1);
        lua_geti(L, 1, 2);
        r->seed = (uint64_t)luaL_checkinteger(L, -2);
        r->offset = (uint64_t)luaL_checkinteger(L, -1);
        return 0;
    }
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, (lua_Integer)r->seed);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)r->offset);
    lua_rawseti(L, -2, 2);
    return 1;
}

void nnL_open_create(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones},
        {"empty", l_empty}, {"full", l_full}, {"zeros_like", l_zeros_like},
        {"ones_like", l_ones_like}, {"full_like", l_full_like},
        {"arange", l_arange}, {"linspace", l_linspace}, {"eye", l_eye},
        {"rand", l_rand}, {"randn", l_randn}, {"rand_like", l_rand_like},
        {"randn_like", l_randn_like}, {"randint", l_randint},
        {"bernoulli", l_bernoulli}, {"from_bytes", l_from_bytes},
        {"byte_counts", l_byte_counts}, {"map_bytes", l_map_bytes},
        {"map_file", l_map_file}, {"manual_seed", l_manual_seed},
        {"rng_state", l_rng_state}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_mark_functions(L, fns);
}
