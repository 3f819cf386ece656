/* lprofile.c -- the profiler's Lua half in C: while a profile runs, the C
 * functions of the tables it is given are replaced by closures that time
 * them (an op scope each), built-in layers time their forward, and Lua
 * modules call _profile_call. Stopping puts the functions back, so a
 * program that is not profiling runs the same C functions as ever. */
#include "lnnlua.h"

#include <string.h>

/* the registry's list of {table, key, original, wrapper} to put back */
static const char WRAPPED_KEY = 0;

static int timed_op(lua_State *L) {
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int entered = nn_profile_enter(lua_tostring(L, lua_upvalueindex(2)), NN_PROFILE_OP);
    int rc = lua_pcall(L, n, LUA_MULTRET, 0);
    if (entered) nn_profile_leave();
    if (rc != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

/* op names: "__add" times as "add" */
static const char *op_name(lua_State *L, const char *key) {
    if (key[0] == '_' && key[1] == '_') return lua_pushstring(L, key + 2);
    return lua_pushstring(L, key);
}

/* keys that are not ops: metamethods of the object itself, and scopes
 * that run user code (their time is the code's) */
static const char *const not_ops[] = {"__gc", "__close", "__index", "__newindex", "__tostring",
                                      "__len", "__name", "__call", "no_grad", "enable_grad",
                                      "autocast", "detect_anomaly", "clock", NULL};

static int is_op_name(const char *key) {
    if (!key || !key[0] || (key[0] >= 'A' && key[0] <= 'Z')) return 0; /* constructors */
    if (key[0] == '_' && key[1] != '_') return 0;                      /* internals */
    for (int i = 0; not_ops[i]; i++)
        if (strcmp(key, not_ops[i]) == 0) return 0;
    return 1;
}

/* wraps the C functions of the table at t whose keys are op names,
 * appending {t, key, original, wrapper} for each to the list at list */
static void wrap_table(lua_State *L, int t, int list) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int op = is_op_name(key);
        if (op && lua_iscfunction(L, -1) && lua_tocfunction(L, -1) != timed_op) {
            int orig = lua_gettop(L);
            lua_createtable(L, 4, 0);
            lua_pushvalue(L, t);
            lua_rawseti(L, -2, 1);
            lua_pushvalue(L, orig - 1); /* the key */
            lua_rawseti(L, -2, 2);
            lua_pushvalue(L, orig);
            lua_rawseti(L, -2, 3);
            lua_pushvalue(L, orig);
            op_name(L, key);
            lua_pushcclosure(L, timed_op, 2);
            lua_pushvalue(L, -1);
            lua_rawseti(L, -3, 4);
            lua_pop(L, 1);
            lua_rawseti(L, list, (lua_Integer)luaL_len(L, list) + 1);
        }
        lua_pop(L, 1);
    }
    /* set them after the walk: lua_next must not see new values mid-walk */
    lua_Integer n = luaL_len(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        lua_rawgeti(L, -1, 1);
        if (lua_rawequal(L, -1, t)) {
            lua_rawgeti(L, -2, 2);
            lua_rawgeti(L, -3, 4);
            lua_rawset(L, t);
        }
        lua_pop(L, 2);
    }
}

/* _profile_start(tables): turns the profiler on and times the C
 * functions of each table in the list */
static int l_profile_start(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (nn_profiling) return nnL_error(L, "nn.profile: a profile is already running");
    for (lua_Integer i = 1; lua_rawgeti(L, 1, i) != LUA_TNIL; i++) { /* all checked before any is wrapped */
        if (!lua_istable(L, -1)) return luaL_argerror(L, 1, "expected a list of tables");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_newtable(L);
    int list = lua_gettop(L);
    for (lua_Integer i = 1; lua_rawgeti(L, 1, i) != LUA_TNIL; i++) {
        wrap_table(L, lua_gettop(L), list);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, list);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &WRAPPED_KEY);
    nn_profile_start();
    return 0;
}

static const char *const kinds[] = {"op", "layer", "op", "layer"};

/* _profile_stop() -> rows: turns the profiler off, puts the functions
 * back (those the program has not replaced meanwhile) and returns
 * {name, kind = 'op' | 'layer', phase = 'forward' | 'backward', calls,
 * total, self, cpu, self_cpu, outer, bytes, self_bytes} per row */
static int l_profile_stop(lua_State *L) {
    nn_profile_stop();
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &WRAPPED_KEY) == LUA_TTABLE) {
        int list = lua_gettop(L);
        for (lua_Integer i = 1; lua_rawgeti(L, list, i) != LUA_TNIL; i++) {
            int e = lua_gettop(L);
            lua_rawgeti(L, e, 1);
            lua_rawgeti(L, e, 2);
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            lua_rawgeti(L, e, 4);
            if (lua_rawequal(L, -1, -2)) {
                lua_pop(L, 2);
                lua_rawgeti(L, e, 3);
                lua_rawset(L, -3);
                lua_pop(L, 1);
            } else {
                lua_pop(L, 4);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &WRAPPED_KEY);
    int n = nn_profile_rows(NULL, 0);
    nn_profile_row *rows = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *rows, 0);
    n = nn_profile_rows(rows, n);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const nn_profile_row *r = &rows[i];
        lua_createtable(L, 0, 10);
        lua_pushstring(L, r->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, kinds[r->kind]);
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, r->kind >= NN_PROFILE_BACKWARD ? "backward" : "forward");
        lua_setfield(L, -2, "phase");
        lua_pushinteger(L, r->calls);
        lua_setfield(L, -2, "calls");
        const double v[5] = {r->total, r->self, r->cpu, r->self_cpu, r->outer};
        const char *const vn[5] = {"total", "self", "cpu", "self_cpu", "outer"};
        for (int k = 0; k < 5; k++) {
            lua_pushnumber(L, v[k]);
            lua_setfield(L, -2, vn[k]);
        }
        lua_pushinteger(L, r->bytes);
        lua_setfield(L, -2, "bytes");
        lua_pushinteger(L, r->self_bytes);
        lua_setfield(L, -2, "self_bytes");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* _profile_call(name, fn, ...) -> fn(...), timed as the layer name */
static int l_profile_call(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    const char *prev;
    int entered = nn_profile_layer_enter(name, &prev);
    int rc = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
    nn_profile_layer_leave(entered, prev);
    if (rc != LUA_OK) return lua_error(L);
    return lua_gettop(L) - 1;
}

void nnL_open_profile(lua_State *L) {
    static const luaL_Reg fns[] = {{"_profile_start", l_profile_start},
                                   {"_profile_stop", l_profile_stop},
                                   {"_profile_call", l_profile_call},
                                   {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
}
