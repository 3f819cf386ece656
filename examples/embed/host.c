/* host.c -- a C program that already uses Lua, with nnlua inside it.
 *
 * It opens nnlua in its own lua_State, loads a model script, hands it data
 * straight from C arrays (no copies), trains it on XOR, and reads the
 * predictions back as a float pointer. Errors come back as Lua errors.
 *
 *   cc host.c $(pkg-config --cflags --libs nnlua) -o host
 *   ./host examples/embed/model.lua
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>

#include "nnlua.h"

static int fail(lua_State *L, const char *what) {
    fprintf(stderr, "host: %s: %s\n", what, lua_tostring(L, -1));
    lua_close(L);
    return 1;
}

int main(int argc, char **argv) {
    const char *script = argc > 1 ? argv[1] : "examples/embed/model.lua";
    float inputs[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    float targets[4][1] = {{0}, {1}, {1}, {0}};

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "nnlua.core", luaopen_nnlua_core, 0); /* the C core, linked in */
    lua_pop(L, 1);
    /* the model script and the Lua half of nnlua, next to each other */
    if (luaL_dostring(L, "package.path = './lua/?.lua;' .. package.path\n"
                         "nnlua = require 'nnlua'") != LUA_OK ||
        luaL_dofile(L, script) != LUA_OK)
        return fail(L, script);

    lua_getglobal(L, "train");
    nnlua_push_borrowed(L, &inputs[0][0], 2, (int64_t[]){4, 2});
    nnlua_push_borrowed(L, &targets[0][0], 2, (int64_t[]){4, 1});
    lua_pushinteger(L, 300);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) return fail(L, "train");
    printf("final loss %.4f\n", lua_tonumber(L, -1));
    lua_pop(L, 1);

    lua_getglobal(L, "predict");
    nnlua_push_borrowed(L, &inputs[0][0], 2, (int64_t[]){4, 2});
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) return fail(L, "predict");
    int ndim;
    int64_t shape[8];
    const float *p = nnlua_tensor_data(L, -1, &ndim, shape);
    if (!p || ndim != 2 || shape[0] != 4) {
        fprintf(stderr, "host: predict did not return a 4x1 tensor\n");
        lua_close(L);
        return 1;
    }
    for (int i = 0; i < 4; i++)
        printf("xor(%g, %g) = %.3f -> %d\n", inputs[i][0], inputs[i][1], p[i], p[i] > 0.5f);

    /* a Lua error reaches the host like any other */
    lua_getglobal(L, "predict");
    lua_pushstring(L, "not a tensor");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) printf("error as expected: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 0;
}
