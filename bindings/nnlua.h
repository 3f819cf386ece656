/*
 * nnlua.h -- open nnlua in a host's own lua_State.
 *
 *     lua_State *L = luaL_newstate();
 *     luaL_openlibs(L);
 *     luaL_requiref(L, "nnlua", luaopen_nnlua, 1);  // also global `nnlua`
 *     lua_pop(L, 1);
 *     luaL_dostring(L, "print(nnlua.ones(2, 3))");
 *
 * Each lua_State gets its own random generator; the thread count and the
 * OpenBLAS kernel choice are process-wide.
 */
#ifndef NNLUA_H
#define NNLUA_H

#include <lua.h>

#define NNLUA_VERSION "0.1.0"

int luaopen_nnlua(lua_State *L);

#endif
