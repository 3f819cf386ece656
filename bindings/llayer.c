/* llayer.c -- what every built-in layer shares: construction, slots,
 * field access, the module-protocol primitives, printing and calling.
 * The kinds themselves are in llayers.c, lconvlayers.c and the files of
 * their pillars. */
#include "llayer.h"

#include <string.h>

/* registry[&RUNNER_KEY]: the Lua half's hook runner, runner(module, args...);
 * registry[&GLOBAL_KEY]: true while global module hooks exist */
static const char RUNNER_KEY = 0, GLOBAL_KEY = 0;

nnL_layer *nnL_checklayer(lua_State *L, int arg) {
    return luaL_checkudata(L, arg, NNL_LAYER);
}

int64_t nnL_checkpositive(lua_State *L, int arg, const char *what) {
    lua_Integer v = luaL_checkinteger(L, arg);
    if (v < 1) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be positive", what));
    return v;
}

nn_tensor *nnL_keep(lua_State *L, nn_tensor *t) {
    nnL_push(L, t);
    return t;
}

nn_tensor *nnL_uniform(lua_State *L, int ndim, const int64_t *shape, double bound) {
    nn_tensor *u = nn_rand(nnL_rng(L), ndim, shape);
    if (!u) return NULL;
    float *d = nn_data(u);
    for (int64_t i = 0; i < nn_numel(u); i++) d[i] = (float)((2 * d[i] - 1) * bound);
    return u;
}

static int new_layer(lua_State *L) {
    const nnL_layer_class *cls = lua_touserdata(L, lua_upvalueindex(1));
    if (cls->options_arg) nnL_checkoptions(L, cls->options_arg, cls->name, cls->options);
    lua_settop(L, 8); /* arguments keep their indices (nil when absent) */
    nnL_layer *l = lua_newuserdatauv(L, sizeof *l + cls->size, 1);
    memset(l, 0, sizeof *l + cls->size);
    l->cls = cls;
    l->training = 1;
    luaL_setmetatable(L, NNL_LAYER);
    lua_newtable(L); /* slot i + 1 -> its value */
    lua_setiuservalue(L, -2, 1);
    cls->build(L, l);
    return 1;
}

void nnL_construct(lua_State *L, const nnL_layer_class *cls, int nargs) {
    lua_pushlightuserdata(L, (void *)cls);
    nnL_pushcclosure(L, new_layer, 1);
    lua_insert(L, -nargs - 1);
    lua_call(L, nargs, 1);
}

static void store_slot(lua_State *L, int slot) { /* value on top, layer below */
    lua_getiuservalue(L, -2, 1);
    lua_insert(L, -2);
    lua_rawseti(L, -2, slot + 1);
    lua_pop(L, 1);
}

void nnL_set_param(lua_State *L, int slot, nn_tensor *t) {
    if (!t) nnL_engine_error(L);
    nnL_layer *l = lua_touserdata(L, -1);
    if (l->cls->slots[slot].kind == NNL_PARAM) nn_set_requires_grad(t, 1);
    nnL_push(L, t);
    store_slot(L, slot);
}

void nnL_set_child(lua_State *L, int slot) { store_slot(L, slot); }

nn_tensor *nnL_slot_tensor(lua_State *L, int idx, int slot) {
    lua_getiuservalue(L, idx, 1);
    lua_rawgeti(L, -1, slot + 1);
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) return NULL;
    nnL_tensor *u = luaL_testudata(L, -1, NNL_TENSOR);
    if (!u || !u->t) {
        nnL_layer *l = lua_touserdata(L, idx);
        luaL_error(L, "%s.%s is %s", l->cls->name, l->cls->slots[slot].name,
                   u ? "a closed tensor" : luaL_typename(L, -1));
    }
    return u->t;
}

nnL_layer *nnL_slot_layer(lua_State *L, int idx, int slot) {
    lua_getiuservalue(L, idx, 1);
    lua_rawgeti(L, -1, slot + 1);
    lua_remove(L, -2);
    return nnL_checklayer(L, -1);
}

static int find_slot(const nnL_layer_class *cls, const char *key) {
    for (int i = 0; cls->slots[i].name; i++)
        if (!strcmp(cls->slots[i].name, key)) return i;
    return -1;
}

static const nnL_field *find_field(const nnL_layer_class *cls, const char *key) {
    for (const nnL_field *f = cls->fields; f->name; f++)
        if (!strcmp(f->name, key)) return f;
    return NULL;
}

/* pushes a setting as a Lua value */
static void push_field(lua_State *L, const nnL_layer *l, const nnL_field *f) {
    const unsigned char *p = (const unsigned char *)l->cfg + f->offset;
    switch (f->type) {
    case NNL_F_INT: lua_pushinteger(L, *(const int64_t *)(const void *)p); break;
    case NNL_F_NUM: lua_pushnumber(L, *(const double *)(const void *)p); break;
    case NNL_F_BOOL: lua_pushboolean(L, *(const int *)(const void *)p); break;
    case NNL_F_CHOICE: lua_pushstring(L, f->choices[*(const int *)(const void *)p]); break;
    case NNL_F_PAIR: {
        const int *v = (const int *)(const void *)p;
        lua_createtable(L, 2, 0);
        for (int i = 0; i < 2; i++) {
            lua_pushinteger(L, v[i]);
            lua_rawseti(L, -2, i + 1);
        }
        break;
    }
    case NNL_F_SHAPE: {
        const nnL_shape *s = (const nnL_shape *)(const void *)p;
        lua_createtable(L, s->n, 0);
        for (int i = 0; i < s->n; i++) {
            lua_pushinteger(L, s->v[i]);
            lua_rawseti(L, -2, i + 1);
        }
        break;
    }
    }
}

/* pushes a setting as PyTorch prints it: True, (3, 3), 'tanh', 1e-05 */
static void push_repr(lua_State *L, const nnL_layer *l, const nnL_field *f) {
    const unsigned char *p = (const unsigned char *)l->cfg + f->offset;
    const int *v = (const int *)(const void *)p;
    switch (f->type) {
    case NNL_F_BOOL: lua_pushstring(L, *v ? "True" : "False"); break;
    case NNL_F_CHOICE: lua_pushfstring(L, "'%s'", f->choices[*v]); break;
    case NNL_F_PAIR: lua_pushfstring(L, "(%d, %d)", v[0], v[1]); break;
    case NNL_F_SHAPE: {
        const nnL_shape *s = (const nnL_shape *)(const void *)p;
        lua_pushliteral(L, "(");
        for (int i = 0; i < s->n; i++)
            lua_pushfstring(L, i + 1 < s->n ? "%I, " : s->n == 1 ? "%I," : "%I",
                            (lua_Integer)s->v[i]);
        lua_pushliteral(L, ")");
        lua_concat(L, s->n + 2);
        break;
    }
    default: push_field(L, l, f); luaL_tolstring(L, -1, NULL); lua_remove(L, -2); break;
    }
}

/* ---- the module protocol's primitives ------------------------------------- */

static const char *const kind_names[] = {"param", "buffer", "module"};

/* _entries() -> {{name, value, kind}, ...} for the filled slots, in order */
static int l_entries(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    lua_getiuservalue(L, 1, 1);
    lua_newtable(L);
    int n = 0;
    for (int i = 0; l->cls->slots[i].name; i++) {
        if (lua_rawgeti(L, -2, i + 1) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        lua_createtable(L, 3, 0);
        lua_pushstring(L, l->cls->slots[i].name);
        lua_rawseti(L, -2, 1);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 2);
        lua_pushstring(L, kind_names[l->cls->slots[i].kind]);
        lua_rawseti(L, -2, 3);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int l_set_training(lua_State *L) {
    nnL_checklayer(L, 1)->training = lua_toboolean(L, 2);
    return 0;
}

static int l_typename(lua_State *L) {
    lua_pushstring(L, nnL_checklayer(L, 1)->cls->name);
    return 1;
}

/* __tostring: Linear(in_features=3, out_features=4, bias=True), children
 * on their own lines, as PyTorch prints them */
static int l_tostring(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, 1); /* 2 */
    lua_pushfstring(L, "%s(", l->cls->name);
    int parts = 1, children = 0;
    for (const nnL_field *f = l->cls->fields; f->name; f++, parts++) {
        lua_pushfstring(L, "%s%s=", f == l->cls->fields ? "" : ", ", f->name);
        push_repr(L, l, f);
        lua_concat(L, 2);
    }
    for (int i = 0; l->cls->slots[i].name; i++) {
        if (l->cls->slots[i].kind != NNL_CHILD) continue;
        lua_rawgeti(L, 2, i + 1);
        luaL_tolstring(L, -1, NULL);
        luaL_gsub(L, lua_tostring(L, -1), "\n", "\n  ");
        lua_pushfstring(L, "\n  (%s): %s", l->cls->slots[i].name, lua_tostring(L, -1));
        lua_replace(L, -4);
        lua_pop(L, 2);
        parts++, children++;
    }
    lua_pushstring(L, children ? "\n)" : ")");
    lua_concat(L, parts + 1);
    return 1;
}

/* layer.key: a method, a slot (nil when empty), a setting, training;
 * layer[i]: its i-th child */
static int l_index(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    if (lua_isinteger(L, 2)) {
        lua_Integer i = lua_tointeger(L, 2), k = 0;
        for (int s = 0; l->cls->slots[s].name; s++)
            if (l->cls->slots[s].kind == NNL_CHILD && ++k == i) {
                lua_getiuservalue(L, 1, 1);
                lua_rawgeti(L, -1, s + 1);
                return 1;
            }
        return 0;
    }
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    const char *key = lua_tostring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_gettable(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    for (const luaL_Reg *m = l->cls->methods; m && m->name; m++)
        if (!strcmp(m->name, key)) return lua_pushcfunction(L, m->func), 1;
    int slot = find_slot(l->cls, key);
    if (slot >= 0) {
        lua_getiuservalue(L, 1, 1);
        lua_rawgeti(L, -1, slot + 1);
        return 1;
    }
    const nnL_field *f = find_field(l->cls, key);
    if (f) return push_field(L, l, f), 1;
    if (!strcmp(key, "training")) return lua_pushboolean(L, l->training), 1;
    if (!strcmp(key, "_is_module")) return lua_pushboolean(L, 1), 1;
    return 0;
}

/* layer.weight = t replaces a parameter with a leaf of the same shape and
 * dtype; layer.child = m a child with a layer of the same kind */
static int l_newindex(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    const char *name = l->cls->name;
    const char *key = luaL_checkstring(L, 2);
    if (!strcmp(key, "training")) {
        l->training = lua_toboolean(L, 3);
        return 0;
    }
    int slot = find_slot(l->cls, key);
    if (slot < 0) {
        if (find_field(l->cls, key))
            return luaL_error(L, "%s.%s is fixed at construction", name, key);
        return luaL_error(L, "%s has no parameter '%s' (nor a buffer or child of that name)", name, key);
    }
    lua_getiuservalue(L, 1, 1);
    lua_rawgeti(L, -1, slot + 1);
    if (l->cls->slots[slot].kind == NNL_CHILD) {
        nnL_layer *c = luaL_testudata(L, 3, NNL_LAYER), *old = lua_touserdata(L, -1);
        if (!c || c->cls != old->cls)
            return luaL_error(L, "%s.%s must be a %s layer", name, key, old->cls->name);
    } else {
        nn_tensor *old = nnL_testtensor(L, -1), *t = nnL_checktensor(L, 3);
        if (!old) return luaL_error(L, "%s.%s is not set (the layer was built without it)",
                                    name, key);
        int floats = t->dtype != NN_I64 && old->dtype != NN_I64; /* m:to(dtype) */
        if (!nn_same_shape(t, old) || (t->dtype != old->dtype && !floats)) {
            char a[96], b[96];
            return luaL_error(L, "%s.%s must be an %s tensor of shape %s (got %s %s)", name,
                              key, nn_dtype_name(old->dtype), nn_shape_str(old, a, 96),
                              nn_dtype_name(t->dtype), nn_shape_str(t, b, 96));
        }
        if (!nn_is_leaf(t)) return luaL_error(L, "%s.%s must be a leaf tensor", name, key);
        if (l->cls->slots[slot].kind == NNL_PARAM) nn_set_requires_grad(t, 1);
    }
    lua_pushvalue(L, 3);
    lua_rawseti(L, -3, slot + 1);
    return 0;
}

static int forward_protected(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    return l->cls->forward(L, l);
}

/* the kind's forward; while profiling, timed as the layer (protected, so
 * the scope closes on an error) */
static int run_forward(lua_State *L, nnL_layer *l) {
    if (nn_profiling) {
        lua_pushcfunction(L, forward_protected);
        lua_insert(L, 1);
        const char *prev;
        int entered = nn_profile_layer_enter(l->cls->name, &prev);
        int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
        nn_profile_layer_leave(entered, prev);
        if (rc != LUA_OK) return lua_error(L);
        return lua_gettop(L);
    }
    return l->cls->forward(L, l);
}

/* forward(...): the kind's forward alone, as PyTorch's forward (no hooks) */
static int l_forward(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    return run_forward(L, l);
}

static int l_call(lua_State *L) {
    nnL_layer *l = nnL_checklayer(L, 1);
    int hooked = l->hooked;
    if (!hooked) {
        hooked = lua_rawgetp(L, LUA_REGISTRYINDEX, &GLOBAL_KEY) != LUA_TNIL;
        lua_pop(L, 1);
    }
    if (hooked) {
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &RUNNER_KEY) == LUA_TFUNCTION) {
            lua_insert(L, 1);
            lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
            return lua_gettop(L);
        }
        lua_pop(L, 1);
    }
    return run_forward(L, l);
}

/* _set_hooked(flag): whether this layer has forward hooks */
static int l_set_hooked(lua_State *L) {
    nnL_checklayer(L, 1)->hooked = lua_toboolean(L, 2);
    return 0;
}

/* _set_hook_runner(fn, global): the Lua half's runner of module hooks, and
 * whether global hooks (nn.register_module_forward_hook) exist */
static int l_set_hook_runner(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &RUNNER_KEY);
    if (lua_toboolean(L, 2)) lua_pushboolean(L, 1);
    else lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &GLOBAL_KEY);
    return 0;
}

/* ---- the list of children -------------------------------------------------- */

static void list_build(lua_State *L, nnL_layer *l) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0 || n > NNL_LIST_MAX)
        luaL_error(L, "ModuleList: at most %d built-in entries", NNL_LIST_MAX);
    *NNL_CFG(l, int) = (int)n;
}

static int list_forward(lua_State *L, nnL_layer *l) {
    (void)l;
    return luaL_error(L, "ModuleList is not callable: call its entries");
}

static const nnL_slot list_slots[] = {
    {"0", NNL_CHILD}, {"1", NNL_CHILD}, {"2", NNL_CHILD}, {"3", NNL_CHILD}, {"4", NNL_CHILD},
    {"5", NNL_CHILD}, {"6", NNL_CHILD}, {"7", NNL_CHILD}, {"8", NNL_CHILD}, {"9", NNL_CHILD},
    {"10", NNL_CHILD}, {"11", NNL_CHILD}, {"12", NNL_CHILD}, {"13", NNL_CHILD},
    {"14", NNL_CHILD}, {"15", NNL_CHILD}, {NULL, 0}};
_Static_assert(sizeof list_slots / sizeof *list_slots == NNL_LIST_MAX + 1, "list slots");
static const nnL_field no_fields[] = {{NULL, 0, 0, NULL}};
const nnL_layer_class nnL_list_class = {"ModuleList", sizeof(int), list_slots, no_fields, NULL, 0,
                                        list_build, list_forward, NULL};

void nnL_register_layers(lua_State *L, const nnL_layer_class *const *classes) {
    if (lua_getfield(L, -1, "_layers") != LUA_TTABLE) { /* the kinds, for the tests */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "_layers");
    }
    lua_pop(L, 1);
    for (; *classes; classes++) {
        const nnL_layer_class *c = *classes;
        lua_getfield(L, -1, "_layers");
        lua_pushstring(L, c->name);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
        lua_pushlightuserdata(L, (void *)c);
        nnL_pushcclosure(L, new_layer, 1);
        lua_setfield(L, -2, c->name);
        for (const luaL_Reg *m = c->methods; m && m->name; m++) { /* recorded as nnlua calls */
            nnL_pushcclosure(L, m->func, 0);
            lua_pop(L, 1);
        }
        if (c->options_arg) {
            nnL_options spec[2] = {{c->name, c->options}, {NULL, NULL}};
            nnL_define_options(L, spec);
        }
    }
}

/* The metatable, and nn._layer_methods: the table the Lua half fills with
 * the rest of the module protocol. */
void nnL_open_layer_protocol(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"_entries", l_entries}, {"_set_training", l_set_training},
        {"_typename", l_typename}, {"_set_hooked", l_set_hooked}, {"forward", l_forward},
        {NULL, NULL}};
    lua_pushcfunction(L, l_set_hook_runner);
    lua_setfield(L, -2, "_set_hook_runner");
    luaL_newmetatable(L, NNL_LAYER);
    nnL_pushcclosure(L, l_call, 0);
    lua_setfield(L, -2, "__call");
    nnL_pushcclosure(L, l_tostring, 0);
    lua_setfield(L, -2, "__tostring");
    nnL_pushcclosure(L, l_newindex, 0);
    lua_setfield(L, -2, "__newindex");
    lua_newtable(L);
    nnL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "_layer_methods");
    nnL_pushcclosure(L, l_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
