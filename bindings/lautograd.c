/* lautograd.c -- autograd from Lua: requires_grad, .grad, backward, detach,
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

/* backward([grad][, retain_graph]) or backward{grad = g, retain_graph = b} */
static int l_backward(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    nn_tensor *g = NULL;
    int retain = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "grad");
        lua_getfield(L, 2, "retain_graph");
        retain = lua_toboolean(L, -1);
        if (!lua_isnil(L, -2) && !(g = nnL_testtensor(L, -2)))
            return luaL_argerror(L, 2, "grad must be a tensor");
    } else {
        if (!lua_isnoneornil(L, 2)) g = nnL_checktensor(L, 2);
        retain = lua_toboolean(L, 3);
    }
    if (nn_backward(t, g, retain) < 0) return nnL_engine_error(L);
    return 0;
}

static int l_detach(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    NNL_RETURN(nn_detach(t));
}

static int l_is_leaf(lua_State *L) {
    lua_pushboolean(L, nn_is_leaf(nnL_checktensor(L, 1)));
    return 1;
}

static int l_set_grad_enabled(lua_State *L) {
    luaL_checkany(L, 1);
    lua_pushboolean(L, nn_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

static int l_is_grad_enabled(lua_State *L) {
    lua_pushboolean(L, nn_is_grad_enabled());
    return 1;
}

static int restore_mode(lua_State *L) {
    int *prev = luaL_checkudata(L, 1, NNL_GRADMODE);
    if (*prev >= 0) nn_set_grad_enabled(*prev);
    *prev = -1; /* once */
    return 0;
}

/* Runs fn(...) with grad mode `on`, restoring the previous mode even when
 * fn raises; with no function, returns a guard that restores it on close. */
static int with_mode(lua_State *L, int on) {
    if (lua_isnoneornil(L, 1)) {
        int *prev = lua_newuserdatauv(L, sizeof *prev, 0);
        *prev = nn_set_grad_enabled(on);
        luaL_setmetatable(L, NNL_GRADMODE);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int prev = nn_set_grad_enabled(on);
    int base = 1, status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    nn_set_grad_enabled(prev);
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L) - base + 1;
}

static int l_no_grad(lua_State *L) { return with_mode(L, 0); }

/* detect_anomaly(on): returns the previous setting */
static int l_detect_anomaly(lua_State *L) {
    lua_pushboolean(L, nn_set_anomaly(lua_isnoneornil(L, 1) ? 1 : lua_toboolean(L, 1)));
    return 1;
}
static int l_enable_grad(lua_State *L) { return with_mode(L, 1); }

void nnL_open_autograd(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"requires_grad_", l_requires_grad_}, {"backward", l_backward},
        {"detach", l_detach}, {"is_leaf", l_is_leaf},
        {"set_grad_enabled", l_set_grad_enabled},
        {"is_grad_enabled", l_is_grad_enabled},
        {"detect_anomaly", l_detect_anomaly}, {NULL, NULL}};
    /* these run user code and hold no tensor: a <close> inside them is
     * released at once */
    static const luaL_Reg scopes[] = {
        {"no_grad", l_no_grad}, {"enable_grad", l_enable_grad}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    luaL_setfuncs(L, scopes, 0);
    luaL_newmetatable(L, NNL_GRADMODE);
    lua_pushcfunction(L, restore_mode);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}
