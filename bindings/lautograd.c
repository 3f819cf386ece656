/* lautograd.c -- autograd from Lua: requires_grad, .grad, detach,
 * and grad-mode scopes (nn.no_grad(fn) or `local g <close> = nn.no_grad()`). */
#include "lnnlua.h"

#define NNL_GRADMODE "nnlua.GradMode"

static int l_requires_grad_(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    if (nn_set_requires_grad(t, on) < 0) return nnL_engine_error(L);
    lua_settop(L, 1);
    return 1;
}

static int l_detach(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    NNL_RETURN(nn_detach(t));
}

static int l_is_leaf(lua_State *L) {
    lua_pushboolean(L, nn_is_leaf(nnL_checktensor(L, 1)));
    return 1;
}

/* ---- grad-mode scopes, per coroutine --------------------------------------
 * The registry table NNL_MODES maps each coroutine with an open scope to
 * its mode; every other coroutine has the state's base_mode. */
#define NNL_MODES "nnlua.grad_modes"

int nnL_grad_scopes;

static int thread_mode(lua_State *L, nnL_state *s) {
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_MODES);
    lua_pushthread(L);
    int t = lua_rawget(L, -2);
    int mode = t == LUA_TNIL ? s->base_mode : lua_toboolean(L, -1);
    lua_pop(L, 2);
    return mode;
}

void nnL_sync_grad_mode(lua_State *L) {
    nnL_state *s = nnL_getstate(L);
    if (!s->scopes || s->cached == L) return;
    nn_set_grad_enabled(thread_mode(L, s));
    s->cached = L;
}

/* sets this coroutine's mode (nil: back to the base) */
static void set_thread_mode(lua_State *L, nnL_state *s, int mode) {
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_MODES);
    lua_pushthread(L);
    if (mode < 0) lua_pushnil(L);
    else lua_pushboolean(L, mode);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    nn_set_grad_enabled(mode < 0 ? s->base_mode : mode);
    s->cached = L;
}

/* A scope: the mode its coroutine had before (-1: none of its own), and
 * the coroutine itself as the user value, so it outlives the scope. Closed
 * once, by __close, by __gc, or after fn. */
typedef struct { int prev, open; } scope;

static scope *new_scope(lua_State *L) {
    scope *sc = lua_newuserdatauv(L, sizeof *sc, 1);
    sc->open = 0;
    luaL_setmetatable(L, NNL_GRADMODE);
    return sc;
}

/* opens the scope at idx for the running coroutine */
static void scope_open(lua_State *L, int idx, int on) {
    scope *sc = lua_touserdata(L, idx);
    nnL_state *s = nnL_getstate(L);
    if (s->scopes == 0) {
        s->base_mode = nn_is_grad_enabled();
        s->cached = NULL;
    }
    lua_pushthread(L);
    lua_setiuservalue(L, idx, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_MODES);
    lua_pushthread(L);
    int had = lua_rawget(L, -2) != LUA_TNIL;
    sc->prev = had ? lua_toboolean(L, -1) : -1;
    lua_pop(L, 2);
    sc->open = 1;
    s->scopes++;
    __atomic_add_fetch(&nnL_grad_scopes, 1, __ATOMIC_RELAXED);
    set_thread_mode(L, s, on);
}

/* gives the opener back the mode it had (from whichever coroutine closes) */
static void scope_close(lua_State *L, int idx) {
    scope *sc = lua_touserdata(L, idx);
    if (!sc->open) return;
    sc->open = 0;
    nnL_state *s = nnL_getstate(L);
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_MODES);
    lua_getiuservalue(L, idx, 1); /* the opener */
    if (sc->prev < 0) lua_pushnil(L);
    else lua_pushboolean(L, sc->prev);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    s->scopes--;
    __atomic_sub_fetch(&nnL_grad_scopes, 1, __ATOMIC_RELAXED);
    s->cached = NULL;
    nn_set_grad_enabled(s->scopes ? thread_mode(L, s) : s->base_mode);
    if (s->scopes) s->cached = L;
}

static int l_set_grad_enabled(lua_State *L) {
    luaL_checkany(L, 1);
    int on = lua_toboolean(L, 1);
    nnL_state *s = nnL_getstate(L);
    if (!s->scopes) {
        lua_pushboolean(L, nn_set_grad_enabled(on));
        return 1;
    }
    int prev = thread_mode(L, s);
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_MODES);
    lua_pushthread(L);
    int own = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    if (own) set_thread_mode(L, s, on);
    else s->base_mode = on, nn_set_grad_enabled(on), s->cached = L;
    lua_pushboolean(L, prev);
    return 1;
}

static int l_is_grad_enabled(lua_State *L) {
    nnL_sync_grad_mode(L);
    lua_pushboolean(L, nn_is_grad_enabled());
    return 1;
}

static int restore_mode(lua_State *L) {
    luaL_checkudata(L, 1, NNL_GRADMODE);
    scope_close(L, 1);
    return 0;
}

/* Runs fn(...) with grad mode `on`, restoring the previous mode even when
 * fn raises; with no function, returns a guard that restores it on close. */
static int with_mode(lua_State *L, int on) {
    if (lua_isnoneornil(L, 1)) {
        new_scope(L);
        scope_open(L, lua_gettop(L), on);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TFUNCTION);
    new_scope(L); /* its __gc closes it should all else fail */
    lua_insert(L, 1);
    scope_open(L, 1, on);
    int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
    scope_close(L, 1);
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L) - 1;
}

static int l_no_grad(lua_State *L) { return with_mode(L, 0); }

/* detect_anomaly(on): returns the previous setting */
static int l_detect_anomaly(lua_State *L) {
    lua_pushboolean(L, nn_set_anomaly(lua_isnoneornil(L, 1) ? 1 : lua_toboolean(L, 1)));
    return 1;
}
static int l_enable_grad(lua_State *L) { return with_mode(L, 1); }

/* ---- autocast -----------------------------------------------------------------
 * nn.autocast('bf16', fn, ...) runs fn with linear, matmul, conv2d (attention with AMX) in
 * bf16; nn.autocast('bf16') returns a guard that restores the previous
 * setting when closed; nn.autocast(false) (or 'f32') turns it off. The
 * setting is the engine's, per OS thread (not per coroutine). */
#define NNL_AUTOCAST "nnlua.Autocast"

typedef struct { nn_dtype prev; int open; } autocast_guard;

static int autocast_close(lua_State *L) {
    autocast_guard *g = luaL_checkudata(L, 1, NNL_AUTOCAST);
    if (g->open) nn_set_autocast(g->prev);
    g->open = 0;
    return 0;
}

static int l_autocast(lua_State *L) {
    nn_dtype d = NN_F32;
    if (lua_type(L, 1) == LUA_TSTRING) {
        d = nnL_checkdtype(L, 1);
        if (d != NN_BF16 && d != NN_F32)
            return nnL_error(L, "autocast computes in bf16 (or f32: off), not %s",
                             nn_dtype_name(d));
    } else if (lua_toboolean(L, 1) || lua_isnone(L, 1)) {
        return luaL_typeerror(L, 1, "'bf16', 'f32' or false");
    }
    int guard_only = lua_isnoneornil(L, 2);
    if (!guard_only) luaL_checktype(L, 2, LUA_TFUNCTION);
    autocast_guard *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->open = 0;
    luaL_setmetatable(L, NNL_AUTOCAST);
    if (guard_only) {
        g->prev = nn_set_autocast(d);
        g->open = 1;
        return 1;
    }
    lua_insert(L, 2); /* the guard below fn and its arguments */
    g->prev = nn_set_autocast(d);
    g->open = 1;
    int status = lua_pcall(L, lua_gettop(L) - 3, LUA_MULTRET, 0);
    nn_set_autocast(g->prev);
    g->open = 0;
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L) - 2;
}

/* nn.bf16_native([on]): whether bf16 products run on nnlua's vdpbf16ps
 * kernel (chosen when the CPU has avx512_bf16 and it is faster than sgemm
 * on rounded operands); on sets the choice and the previous is returned */
static int l_bf16_native(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_pushboolean(L, nn_bf16_native());
        return 1;
    }
    int prev = nn_set_bf16_native(lua_toboolean(L, 1));
    if (prev < 0) return nnL_engine_error(L);
    lua_pushboolean(L, prev);
    return 1;
}

/* a guard's metatable: closing or collecting it ends its scope */
static void scope_metatable(lua_State *L, const char *name, lua_CFunction end) {
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, end);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, end);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

void nnL_open_autograd(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"requires_grad_", l_requires_grad_},
        {"detach", l_detach}, {"is_leaf", l_is_leaf}, {NULL, NULL}};
    static const luaL_Reg module_fns[] = {
        {"set_grad_enabled", l_set_grad_enabled},
        {"is_grad_enabled", l_is_grad_enabled},
        {"detect_anomaly", l_detect_anomaly}, {"bf16_native", l_bf16_native}, {NULL, NULL}};
    /* these run user code and hold no tensor: a <close> inside them is
     * released at once */
    static const luaL_Reg scopes[] = {
        {"no_grad", l_no_grad}, {"enable_grad", l_enable_grad}, {"autocast", l_autocast},
        {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_setfuncs(L, module_fns, 0);
    nnL_mark_functions(L, module_fns);
    luaL_setfuncs(L, scopes, 0);
    nnL_mark_functions(L, scopes);
    scope_metatable(L, NNL_AUTOCAST, autocast_close);
    scope_metatable(L, NNL_GRADMODE, restore_mode);
    lua_newtable(L); /* coroutine -> mode; weak keys: a dead one drops out */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, NNL_MODES);
}
