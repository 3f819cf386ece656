/* loptions.c -- the one checker of options tables.
 *
 * Every function that takes an options table names the keys it accepts,
 * once, and checks the table on entry: an unknown key is an error naming
 * the key and the accepted ones. The accepted lists are also kept in the
 * registry (name -> list), which nn.option_registry() copies, so a test
 * can call every options-taking function with a wrong key. */
#include "lnnlua.h"

#include <string.h>

#define OPTIONS_KEY "nnlua.options" /* registry: function name -> {keys} */

static void registry(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, OPTIONS_KEY) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, OPTIONS_KEY);
}

/* the list table on top of the stack -> registry[fname] */
static void remember(lua_State *L, const char *fname) {
    registry(L);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, fname);
    lua_pop(L, 2);
}

void nnL_define_options(lua_State *L, const nnL_options *specs) {
    for (; specs->fname; specs++) {
        lua_newtable(L);
        for (int i = 0; specs->keys[i]; i++) {
            lua_pushstring(L, specs->keys[i]);
            lua_rawseti(L, -2, i + 1);
        }
        remember(L, specs->fname);
    }
}

/* "unknown option 'k' (accepted: a, b)": the list at index `list` (a Lua
 * array) or keys (a C array) */
static int unknown(lua_State *L, const char *fname, int key, const char *const *keys,
                   int list) {
    luaL_Buffer b;
    const char *k = lua_type(L, key) == LUA_TSTRING ? lua_tostring(L, key) : NULL;
    luaL_buffinit(L, &b);
    if (k) lua_pushfstring(L, "%s: unknown option '%s' (accepted: ", fname, k);
    else lua_pushfstring(L, "%s: options are named by strings, not by a %s (accepted: ",
                         fname, luaL_typename(L, key));
    luaL_addvalue(&b);
    int n = keys ? 0 : (int)lua_rawlen(L, list);
    for (int i = 0; keys ? keys[i] != NULL : i < n; i++) {
        if (i) luaL_addstring(&b, ", ");
        if (keys) luaL_addstring(&b, keys[i]);
        else {
            lua_rawgeti(L, list, i + 1);
            luaL_addvalue(&b);
        }
    }
    if (keys ? !keys[0] : n == 0) luaL_addstring(&b, "none");
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    return lua_error(L);
}

void nnL_checkoptions(lua_State *L, int arg, const char *fname, const char *const *keys) {
    if (lua_isnoneornil(L, arg)) return;
    if (!lua_istable(L, arg))
        luaL_error(L, "%s: argument #%d: options table expected, got %s", fname, arg,
                   luaL_typename(L, arg));
    arg = lua_absindex(L, arg);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (int i = 0; keys[i] && !ok; i++) ok = !strcmp(k, keys[i]);
        }
        if (!ok) unknown(L, fname, lua_gettop(L), keys, 0);
    }
}

/* the checker nn.define_options returns: check(opts) -> opts (or {}) */
static int check_closure(lua_State *L) {
    const char *fname = lua_tostring(L, lua_upvalueindex(1));
    int set = lua_upvalueindex(2), list = lua_upvalueindex(3);
    if (lua_isnoneornil(L, 1)) {
        lua_newtable(L);
        return 1;
    }
    if (!lua_istable(L, 1))
        return luaL_error(L, "%s: options table expected, got %s", fname, luaL_typename(L, 1));
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        int ok = lua_type(L, -1) == LUA_TSTRING && lua_rawget(L, set) != LUA_TNIL;
        if (lua_type(L, -2) != LUA_TSTRING) ok = 0;
        lua_pop(L, 1);
        if (!ok) {
            lua_pushvalue(L, list);
            unknown(L, fname, lua_gettop(L) - 1, NULL, lua_gettop(L));
        }
    }
    lua_settop(L, 1);
    return 1;
}

/* define_options(name, {keys}) -> check: the Lua half's options-taking
 * functions declare their keys with it */
static int l_define_options(lua_State *L) {
    const char *fname = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = nnL_checklen(L, 2, 1000);
    lua_newtable(L); /* set */
    lua_createtable(L, n, 0); /* list, copied so later edits cannot change it */
    for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            return luaL_argerror(L, 2, "option names must be strings");
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, i);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
    }
    lua_pushvalue(L, -1);
    remember(L, fname);
    lua_pushvalue(L, 1);
    lua_insert(L, -3);
    lua_pushcclosure(L, check_closure, 3);
    return 1;
}

/* option_registry() -> {name = {keys}} (a copy) */
static int l_option_registry(lua_State *L) {
    registry(L);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        int n = (int)lua_rawlen(L, -1);
        lua_createtable(L, n, 0);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -2, i);
            lua_rawseti(L, -2, i);
        }
        lua_remove(L, -2);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    return 1;
}

void nnL_open_options(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"define_options", l_define_options}, {"option_registry", l_option_registry},
        {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    nnL_mark_functions(L, fns);
}
