/* ldist.c -- nn._dist: the engine's collectives (engine/dist) for
 * lua/nnlua/dist.lua, which builds nn.dist on them. Ranks count from 0,
 * as in MPI and every launcher. */
#include "lnnlua.h"

#include <string.h>

#define NNL_DIST_REQUEST "nnlua.DistRequest"

static nn_dist_op check_op(lua_State *L, int arg) {
    static const char *const ops[] = {"sum", "avg", "max", "min", NULL};
    return (nn_dist_op)luaL_checkoption(L, arg, "sum", ops);
}

/* init([timeout_s]) -> rank, world_size */
static int l_init(lua_State *L) {
    double timeout = luaL_optnumber(L, 1, 0);
    if (!(timeout >= 0)) return luaL_argerror(L, 1, "timeout must be >= 0 seconds");
    if (nn_dist_init(timeout) < 0) return nnL_engine_error(L);
    lua_pushinteger(L, nn_dist_rank());
    lua_pushinteger(L, nn_dist_world_size());
    return 2;
}

static int l_is_initialized(lua_State *L) {
    lua_pushboolean(L, nn_dist_is_initialized());
    return 1;
}

static int l_rank(lua_State *L) {
    lua_pushinteger(L, nn_dist_rank());
    return 1;
}

static int l_world_size(lua_State *L) {
    lua_pushinteger(L, nn_dist_world_size());
    return 1;
}

/* backend() -> the MPI library's name and version, or "none", and
 * whether this build has MPI */
static int l_backend(lua_State *L) {
    lua_pushstring(L, nn_dist_backend());
    lua_pushboolean(L, nn_dist_has_mpi());
    return 2;
}

static int l_barrier(lua_State *L) {
    if (nn_dist_barrier() < 0) return nnL_engine_error(L);
    return 0;
}

/* all_reduce(t[, op = 'sum']) -> t, reduced in place */
static int l_all_reduce(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    nn_dist_op op = check_op(L, 2);
    if (nn_dist_all_reduce(t, op) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

/* iall_reduce(t[, op = 'sum']) -> request: t reduced in place once
 * request:wait() returns (request:test() says whether it is done); the
 * request holds t until it is collected or closed (which waits) */
static int l_iall_reduce(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    nn_dist_op op = check_op(L, 2);
    nn_dist_request **u = lua_newuserdatauv(L, sizeof *u, 0);
    *u = NULL;
    luaL_setmetatable(L, NNL_DIST_REQUEST);
    if (!(*u = nn_dist_iall_reduce(t, op))) return nnL_engine_error(L);
    return 1;
}

static nn_dist_request *check_request(lua_State *L) {
    nn_dist_request **u = luaL_checkudata(L, 1, NNL_DIST_REQUEST);
    if (!*u) luaL_error(L, "the request was already finished and closed");
    return *u;
}

static int l_request_wait(lua_State *L) {
    if (nn_dist_wait(check_request(L)) < 0) return nnL_engine_error(L);
    return 0;
}

static int l_request_test(lua_State *L) {
    int done = nn_dist_test(check_request(L));
    if (done < 0) return nnL_engine_error(L);
    lua_pushboolean(L, done);
    return 1;
}

/* __gc and __close: waits if still running, then frees */
static int l_request_free(lua_State *L) {
    nn_dist_request **u = luaL_checkudata(L, 1, NNL_DIST_REQUEST);
    int rc = *u ? nn_dist_wait(*u) : 0;
    nn_dist_request_free(*u);
    *u = NULL;
    if (rc < 0 && lua_gettop(L) == 1) return 0; /* in __gc: nowhere to raise */
    if (rc < 0) return nnL_engine_error(L);
    return 0;
}

/* broadcast(t[, root = 0]) -> t, root's values in place */
static int l_broadcast(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    lua_Integer root = luaL_optinteger(L, 2, 0);
    if (root < 0 || root >= nn_dist_world_size())
        return luaL_error(L, "broadcast: root %d is not a rank (world of %d)", (int)root,
                          nn_dist_world_size());
    if (nn_dist_broadcast(t, (int)root) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

/* all_gather(t) -> (world_size, ...t's shape) */
static int l_all_gather(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    NNL_RETURN(nn_dist_all_gather(t));
}

/* reduce_scatter(t[, op = 'sum']) -> this rank's part of the reduction */
static int l_reduce_scatter(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    nn_dist_op op = check_op(L, 2);
    NNL_RETURN(nn_dist_reduce_scatter(t, op));
}

/* all_reduce_grads(params, bucket_elems): every parameter's gradient
 * averaged over the ranks (dense in buckets, row-sparse as rows) */
static int l_all_reduce_grads(lua_State *L) {
    int n;
    nn_tensor **params = nnL_checktensorlist(L, 1, &n, "all_reduce_grads");
    lua_Integer bucket = luaL_checkinteger(L, 2);
    if (bucket < 1) return luaL_argerror(L, 2, "the bucket must hold at least one value");
    if (nn_dist_all_reduce_grads(n, params, (int64_t)bucket) < 0) return nnL_engine_error(L);
    return 0;
}

/* check_same({integers}) -> true, or false, the first rank that differs
 * and the first position (1-based; nil when the lengths differ) */
static int l_check_same(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Unsigned n = lua_rawlen(L, 1);
    if (n > (1u << 24)) return luaL_argerror(L, 1, "at most 2^24 values");
    int64_t *v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
    for (lua_Unsigned i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        int ok;
        v[i] = (int64_t)lua_tointegerx(L, -1, &ok);
        if (!ok) return luaL_error(L, "check_same: entry %d is not an integer", (int)i + 1);
        lua_pop(L, 1);
    }
    int bad_rank;
    int64_t bad_pos;
    int same = nn_dist_check_same((int64_t)n, v, &bad_rank, &bad_pos);
    if (same < 0) return nnL_engine_error(L);
    lua_pushboolean(L, same);
    if (same) return 1;
    lua_pushinteger(L, bad_rank);
    if (bad_pos >= 0) lua_pushinteger(L, bad_pos + 1);
    else lua_pushnil(L);
    return 3;
}

void nnL_open_dist(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"init", l_init}, {"is_initialized", l_is_initialized}, {"rank", l_rank},
        {"world_size", l_world_size}, {"backend", l_backend}, {"barrier", l_barrier},
        {"all_reduce", l_all_reduce}, {"broadcast", l_broadcast}, {"all_gather", l_all_gather},
        {"reduce_scatter", l_reduce_scatter}, {"all_reduce_grads", l_all_reduce_grads},
        {"check_same", l_check_same}, {"iall_reduce", l_iall_reduce}, {NULL, NULL}};
    static const luaL_Reg request[] = {{"wait", l_request_wait}, {"test", l_request_test},
                                       {"__gc", l_request_free}, {"__close", l_request_free},
                                       {NULL, NULL}};
    luaL_newmetatable(L, NNL_DIST_REQUEST);
    luaL_setfuncs(L, request, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_createtable(L, 0, (int)(sizeof fns / sizeof *fns));
    nnL_setfuncs(L, fns, 0);
    lua_setfield(L, -2, "_dist");
}
