/* lprefetch.c -- nn.prefetch: a background thread that assembles batches
 * of rows (nnlua.Prefetch userdata; stopped by __gc or __close). Used by
 * nn.data.DataLoader for TensorDatasets. */
#include "lnnlua.h"

#define NNL_PREFETCH "nnlua.Prefetch"

typedef struct { nn_prefetch *p; int nsrc; } nnL_prefetch;

static const char *const prefetch_opts[] = {"drop_last", "depth", "augment", NULL};
static const char *const augment_opts[] = {"source", "flip", "shift", NULL};

/* prefetch({tensors}, order, batch[, {drop_last =, depth = 2, augment =
 * {source = 1, flip = true, shift = 2}}]) */
static int l_prefetch(lua_State *L) {
    nnL_checkoptions(L, 4, "prefetch", prefetch_opts);
    lua_settop(L, 4); /* the sources pushed below come after the arguments */
    luaL_checktype(L, 1, LUA_TTABLE);
    nn_tensor *order = nnL_checktensor(L, 2);
    lua_Integer batch = luaL_checkinteger(L, 3);
    int n = nnL_checklen(L, 1, 8);
    if (n < 1) return luaL_argerror(L, 1, "expected 1 to 8 tensors");
    nn_tensor *src[8];
    for (int i = 0; i < n; i++) { /* left on the stack (see lnnlua.h) */
        lua_geti(L, 1, i + 1);
        src[i] = nnL_checktensor(L, -1);
    }
    int drop_last = nnL_optboolfield(L, 4, "drop_last", 0);
    int depth = (int)nnL_optnumfield(L, 4, "depth", 2);
    nn_prefetch_augment aug = {0, 0, 0}, *augp = NULL;
    if (lua_istable(L, 4)) {
        lua_getfield(L, 4, "augment");
        if (lua_istable(L, -1)) {
            int t = lua_gettop(L);
            nnL_checkoptions(L, t, "prefetch augment", augment_opts);
            aug.source = (int)nnL_optnumfield(L, t, "source", 1) - 1;
            aug.flip = nnL_optboolfield(L, t, "flip", 0);
            aug.shift = (int)nnL_optnumfield(L, t, "shift", 0);
            augp = &aug;
        }
        lua_pop(L, 1);
    }
    nnL_prefetch *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->p = NULL;
    u->nsrc = n;
    luaL_setmetatable(L, NNL_PREFETCH);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* keeps the sources alive */
    u->p = nn_prefetch_start(src, n, order, NNL_BASE, batch, drop_last, depth, augp, nnL_rng(L));
    if (!u->p) return nnL_engine_error(L);
    return 1;
}

/* next() -> the batch's tensors, or nothing when the epoch is over */
static int l_next(lua_State *L) {
    nnL_prefetch *u = luaL_checkudata(L, 1, NNL_PREFETCH);
    nn_tensor **slots[8];
    /* slots first: their allocation may run a finaliser that stops u */
    for (int i = 0; i < u->nsrc; i++) slots[i] = nnL_newslot(L);
    if (!u->p) return 0;
    nn_tensor *out[8] = {0};
    int rc = nn_prefetch_next(u->p, out);
    if (rc < 0) return nnL_engine_error(L);
    if (rc == 0) return 0;
    for (int i = 0; i < u->nsrc; i++) {
        *slots[i] = out[i];
        nnL_finish(L, slots[i]);
    }
    return u->nsrc;
}

static int l_stop(lua_State *L) {
    nnL_prefetch *u = luaL_checkudata(L, 1, NNL_PREFETCH);
    nn_prefetch_stop(u->p);
    u->p = NULL;
    return 0;
}

static int l_len(lua_State *L) {
    nnL_prefetch *u = luaL_checkudata(L, 1, NNL_PREFETCH);
    lua_pushinteger(L, u->p ? nn_prefetch_batches(u->p) : 0);
    return 1;
}

void nnL_open_prefetch(lua_State *L) {
    static const nnL_options options[] = {
        {"prefetch", prefetch_opts}, {"prefetch augment", augment_opts}, {NULL, NULL}};
    lua_pushcfunction(L, l_prefetch);
    lua_setfield(L, -2, "prefetch");
    nnL_define_options(L, options);
    luaL_newmetatable(L, NNL_PREFETCH);
    static const luaL_Reg meta[] = {
        {"__gc", l_stop}, {"__close", l_stop}, {"__len", l_len}, {NULL, NULL}};
    nnL_setfuncs(L, meta, 0);
    lua_newtable(L);
    lua_pushcfunction(L, l_next);
    lua_setfield(L, -2, "next");
    lua_pushcfunction(L, l_stop);
    lua_setfield(L, -2, "stop");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
