/* lcheckpoint.c -- nn.save(path, tensors[, metadata]), nn.load(path) and
 * nn.write_file(path, text), all atomic.
 * Misuse (a value that is not a tensor) raises; what the file system or the
 * file says (missing, unwritable, malformed) returns nil and a message, so
 * a script can fall back. */
#include "lnnlua.h"

#include <stdlib.h>
#include <string.h>

/* A private copy of the table at idx (raw keys and values): no metamethod
 * or finaliser can change it under us, and it anchors what it holds.
 * Checks the keys are strings and the values tensors (or strings). */
static int snapshot(lua_State *L, int idx, int tensors) {
    lua_newtable(L);
    int snap = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, idx, "keys must be strings");
        if (tensors ? !nnL_testtensor(L, -1) : lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, idx, lua_pushfstring(L, "'%s' is %s, not a %s",
                          lua_tostring(L, -2), luaL_typename(L, -1), tensors ? "tensor" : "string"));
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, snap);
    }
    return snap;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* the keys of the snapshot at snap, sorted (anchored by it) */
static const char **sorted_keys(lua_State *L, int snap, int *n) {
    *n = 0;
    lua_pushnil(L);
    while (lua_next(L, snap)) {
        (*n)++;
        lua_pop(L, 1);
    }
    const char **keys = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *keys, 0);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, snap)) {
        keys[i++] = lua_tostring(L, -2);
        lua_pop(L, 1);
    }
    if (*n) qsort(keys, *n, sizeof *keys, cmp_str);
    return keys;
}

static int l_save(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    int n, nmeta = 0, snap = snapshot(L, 2, 1);
    const char **names = sorted_keys(L, snap, &n);
    nn_tensor **ts = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ts, 0);
    for (int i = 0; i < n; i++) {
        lua_getfield(L, snap, names[i]);
        ts[i] = nnL_checktensor(L, -1);
        lua_pop(L, 1); /* the snapshot keeps it */
    }
    const char **mk = NULL, **mv = NULL;
    if (!lua_isnil(L, 3)) {
        int msnap = snapshot(L, 3, 0);
        mk = sorted_keys(L, msnap, &nmeta);
        mv = lua_newuserdatauv(L, (nmeta ? nmeta : 1) * sizeof *mv, 0);
        for (int i = 0; i < nmeta; i++) {
            lua_getfield(L, msnap, mk[i]);
            mv[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    }
    if (nn_safetensors_save(path, n, names, ts, nmeta, mk, mv) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, nn_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nn_safetensors *st = nn_safetensors_load(path);
    if (!st) {
        lua_pushnil(L);
        lua_pushstring(L, nn_last_error());
        return 2;
    }
    lua_createtable(L, 0, st->n);
    for (int i = 0; i < st->n; i++) {
        nn_tensor **slot = nnL_newslot(L);
        *slot = st->tensors[i];
        st->tensors[i] = NULL; /* the userdata owns it now */
        nnL_finish(L, slot);
        lua_setfield(L, -2, st->names[i]);
    }
    lua_createtable(L, 0, st->nmeta);
    for (int i = 0; i < st->nmeta; i++) {
        lua_pushstring(L, st->meta_values[i]);
        lua_setfield(L, -2, st->meta_keys[i]);
    }
    nn_safetensors_free(st);
    return 2;
}

/* write_file(path, text): replaces path atomically; true, or nil and a
 * message (the old file untouched) */
static int l_write_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    if (nn_write_file_atomic(path, text, n) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, nn_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

void nnL_open_checkpoint(lua_State *L) {
    static const luaL_Reg fns[] = {{"save", l_save}, {"load", l_load},
                                   {"write_file", l_write_file}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_mark_functions(L, fns);
}
