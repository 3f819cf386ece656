/*
 * nnlua.h -- nnlua inside a host's own lua_State.
 *
 *     lua_State *L = luaL_newstate();
 *     luaL_openlibs(L);
 *     luaL_requiref(L, "nnlua", luaopen_nnlua, 1);  // the C core, as global `nnlua`
 *     lua_pop(L, 1);
 *     float data[6] = {1, 2, 3, 4, 5, 6};
 *     nnlua_push_borrowed(L, data, 2, (int64_t[]){2, 3}); // no copy
 *     lua_setglobal(L, "x");
 *     luaL_dostring(L, "y = x:sum(2)");
 *     lua_getglobal(L, "y");
 *     int ndim; int64_t shape[8];
 *     const float *y = nnlua_tensor_data(L, -1, &ndim, shape); // y[0] == 6
 *
 * Errors in Lua code reach the host as ordinary Lua errors (lua_pcall's
 * status and message). Each lua_State has its own random generator; the
 * thread count and the OpenBLAS kernel choice are process-wide.
 */
#ifndef NNLUA_H
#define NNLUA_H

#include <lua.h>
#include <stdint.h>

#define NNLUA_VERSION "0.1.0"

/* The C core (tensors, ops, autograd, built-in layers). The package root
 * is Lua (lua/nnlua.lua adds Module, optim, transformer, ...): a host with
 * the Lua files on package.path preloads the core and requires the root,
 *
 *     luaL_requiref(L, "nnlua.core", luaopen_nnlua_core, 0);
 *     luaL_dostring(L, "nn = require 'nnlua'");
 *
 * while luaopen_nnlua gives the core alone (also as nnlua.core), for
 * hosts without them. */
int luaopen_nnlua_core(lua_State *L);
int luaopen_nnlua(lua_State *L);

/* Pushes an f32 tensor over the host's buffer, which is not copied and
 * never freed by nnlua: the host keeps ownership and must keep the memory
 * alive as long as the tensor or any view of it exists (results of ops are
 * new tensors and do not reference it). Writes through the tensor change
 * the host's memory. Returns 1 (values pushed); raises on a bad shape. */
int nnlua_push_borrowed(lua_State *L, float *data, int ndim, const int64_t *shape);

/* The data of the tensor at index idx, for reading results back: a
 * contiguous f32 tensor's elements, with its dims in *ndim and shape
 * (room for 8). NULL if the value is not such a tensor (use :contiguous()
 * or :float() first). The pointer lives as long as the tensor. */
const float *nnlua_tensor_data(lua_State *L, int idx, int *ndim, int64_t *shape);

#endif
