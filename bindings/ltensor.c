/* ltensor.c -- the Tensor userdata: argument checks, lifetime, metamethods
 * and conversion to and from Lua tables. */
#include "lnnlua.h"

#include <stdarg.h>
#include <string.h>

/* ---- checks ---------------------------------------------------------- */

nn_tensor *nnL_opttensor(lua_State *L, int arg) {
    return lua_isnoneornil(L, arg) ? NULL : nnL_checktensor(L, arg);
}

/* The registry holds the tensor metatable under this address too: a
 * lookup by address skips the string interning that luaL_testudata pays on
 * every call (measured with callgrind: 4 such lookups made a third of a
 * one-element add's instructions). */
static const char TENSOR_MT = 0;

/* Each thread remembers the metatable's address for the state it last
 * checked (by its registry), so most checks compare two pointers. Closing
 * any state bumps the generation and drops every cache: a later state
 * reusing the addresses is looked up afresh. */
static unsigned state_generation;
static _Thread_local struct {
    const void *registry, *mt;
    unsigned generation;
} mt_cache;

void nnL_state_closed(void) { __atomic_add_fetch(&state_generation, 1, __ATOMIC_RELAXED); }

/* whether the table on top is the tensor metatable */
static int is_tensor_mt(lua_State *L) {
    const void *reg = lua_topointer(L, LUA_REGISTRYINDEX);
    unsigned gen = __atomic_load_n(&state_generation, __ATOMIC_RELAXED);
    if (mt_cache.registry != reg || mt_cache.generation != gen || !mt_cache.mt) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &TENSOR_MT);
        const void *mt = lua_topointer(L, -1);
        lua_pop(L, 1);
        if (!mt) return 0; /* not made yet */
        mt_cache.registry = reg, mt_cache.mt = mt, mt_cache.generation = gen;
    }
    return lua_topointer(L, -1) == mt_cache.mt;
}

static nnL_tensor *tensor_udata(lua_State *L, int arg) {
    nnL_tensor *u = lua_touserdata(L, arg);
    if (!u || !lua_getmetatable(L, arg)) return NULL;
    int same = is_tensor_mt(L);
    lua_pop(L, 1);
    return same ? u : NULL;
}

nn_tensor *nnL_testtensor(lua_State *L, int arg) {
    nnL_tensor *u = tensor_udata(L, arg);
    return u ? u->t : NULL;
}

nn_tensor *nnL_checktensor(lua_State *L, int arg) {
    nnL_tensor *u = tensor_udata(L, arg);
    if (!u) luaL_typeerror(L, arg, NNL_TENSOR);
    if (!u->t) luaL_argerror(L, arg, "tensor already closed");
    nn_sync_threads(); /* in-place ops allocate nothing */
    if (__atomic_load_n(&nnL_grad_scopes, __ATOMIC_RELAXED)) nnL_sync_grad_mode(L);
    return u->t;
}

int nnL_error(lua_State *L, const char *fmt, ...) {
    lua_Debug ar;
    const char *name = "?";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name)
        name = ar.name;
    va_list ap;
    va_start(ap, fmt);
    lua_pushfstring(L, "%s: ", name);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

int nnL_engine_error(lua_State *L) {
    int arg = nn_last_error_arg();
    if (arg > 0) return luaL_argerror(L, arg, nn_last_error());
    return nnL_error(L, "%s", nn_last_error());
}

nn_tensor **nnL_newslot(lua_State *L) {
    if (__atomic_load_n(&nnL_grad_scopes, __ATOMIC_RELAXED)) nnL_sync_grad_mode(L);
    nnL_tensor *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->t = u->deferred = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &TENSOR_MT);
    lua_setmetatable(L, -2);
    return &u->t;
}

#define GC_MIN_GROWTH ((int64_t)64 << 20)

/* Lua cannot see C memory. Every new tensor pays collector work for what
 * its userdata holds outside Lua: its nn_tensor, and fresh storage of its
 * own (struct and data). Without the small ones a loop of scalar ops
 * (losses, metrics) grew to 254 MiB of garbage tensors per million while
 * Lua counted 29 MiB. Whenever live tensor memory doubles since the last
 * full collection (and grew by 64 MiB) a full collection runs: Lua 5.4's
 * generational mode, which stock lua5.4 uses, ignores the proportional
 * steps for old objects. */
#define GC_STEP_BYTES ((int64_t)1 << 20) /* steps paid a MiB at a time: each call has a cost of its own */
#define MALLOC_OVERHEAD 16

static void account(lua_State *L, const nn_tensor *t) {
    nnL_state *s = nnL_getstate(L);
    nn_storage *st = t->storage;
    int large = 0;
    s->gc_debt += (int64_t)(sizeof(nn_tensor) + MALLOC_OVERHEAD);
    if (!st->reported && st->owns == 1) {
        st->reported = 1;
        s->gc_debt += (int64_t)(sizeof(nn_storage) + MALLOC_OVERHEAD + st->bytes);
        large = st->bytes >= 1024;
    }
    if (s->gc_debt >= GC_STEP_BYTES) {
        lua_gc(L, LUA_GCSTEP, (int)(s->gc_debt / 1024 < INT32_MAX ? s->gc_debt / 1024 : INT32_MAX));
        s->gc_debt = 0;
    }
    if (!large) return;
#ifdef NNL_GC_STRESS
    lua_gc(L, LUA_GCCOLLECT);
#endif
    if (nn_live_bytes() > s->gc_threshold) {
        lua_gc(L, LUA_GCCOLLECT);
        int64_t live = nn_live_bytes();
        s->gc_threshold = live + (live > GC_MIN_GROWTH ? live : GC_MIN_GROWTH);
    }
}

int nnL_finish(lua_State *L, nn_tensor **slot) {
    nn_tensor *t = *slot;
    if (!t) return nnL_engine_error(L);
    account(L, t);
    return 1;
}

int nnL_push(lua_State *L, nn_tensor *t) {
    if (!t) return nnL_engine_error(L);
    nn_tensor **slot = nnL_newslot(L);
    *slot = t;
    return nnL_finish(L, slot);
}

nn_tensor *nnL_checkoperand(lua_State *L, int arg, const nn_tensor *like) {
    nn_tensor *t = nnL_testtensor(L, arg);
    if (t) return t;
    if (tensor_udata(L, arg)) return nnL_checktensor(L, arg);
    if (!lua_isnumber(L, arg)) {
        luaL_typeerror(L, arg, "tensor or number");
        return NULL;
    }
    int is_int = lua_isinteger(L, arg);
    nn_dtype dt = (like && like->dtype == NN_I64 && is_int) ? NN_I64 : NN_F32;
    nn_tensor **slot = nnL_newslot(L);
    *slot = nn_scalar(dt, lua_tonumber(L, arg));
    nnL_finish(L, slot);
    lua_replace(L, arg);
    return *slot;
}

int nnL_checkdim(lua_State *L, int arg, int ndim) {
    lua_Integer d = luaL_checkinteger(L, arg);
    int n = ndim > 0 ? ndim : 1;
    if (d == 0 || d > n || d < -n)
        return luaL_argerror(L, arg, lua_pushfstring(L,
            "dim %d out of range for a %d-dim tensor (1..%d or -%d..-1)",
            (int)d, ndim, n, n));
    return d > 0 ? (int)d - 1 : (int)d;
}

int nnL_optdim(lua_State *L, int arg, int ndim, int def) {
    return lua_isnoneornil(L, arg) ? def : nnL_checkdim(L, arg, ndim);
}

static int64_t checksize(lua_State *L, int arg, lua_Integer v, int allow_infer) {
    if (v < 0 && !(allow_infer && v == -1))
        luaL_argerror(L, arg, lua_pushfstring(L, "negative size %I", v));
    return (int64_t)v;
}

int nnL_checklen(lua_State *L, int arg, int max) {
    lua_Integer n = luaL_len(L, arg);
    if (n < 0 || n > max)
        luaL_argerror(L, arg, lua_pushfstring(L, "table of length %I (expected 0..%d)",
                                              n, max));
    return (int)n;
}

static int checkshape(lua_State *L, int arg, int64_t *shape, int infer) {
    int n = 0;
    if (lua_istable(L, arg)) {
        n = nnL_checklen(L, arg, NN_MAX_DIMS);
        for (int i = 0; i < n; i++) {
            lua_geti(L, arg, i + 1);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, arg, lua_pushfstring(L,
                    "shape entry %d is %s, expected an integer", i + 1,
                    luaL_typename(L, -1)));
            shape[i] = checksize(L, arg, v, infer);
            lua_pop(L, 1);
        }
        return n;
    }
    int top = lua_gettop(L);
    for (int i = arg; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
        if (n == NN_MAX_DIMS)
            luaL_argerror(L, i, lua_pushfstring(L, "at most %d dims", NN_MAX_DIMS));
        shape[n++] = checksize(L, i, luaL_checkinteger(L, i), infer);
    }
    return n;
}

int nnL_checkshape(lua_State *L, int arg, int64_t *shape) {
    return checkshape(L, arg, shape, 0);
}

int nnL_checkshape_signed(lua_State *L, int arg, int64_t *shape) {
    return checkshape(L, arg, shape, 1);
}

nn_dtype nnL_checkdtype(lua_State *L, int arg) {
    static const char *const names[] = {"f32", "float32", "float", "i64", "int64", "long",
                                        "bf16", "bfloat16", "f16", "float16", "half", NULL};
    static const nn_dtype dtypes[] = {NN_F32, NN_F32, NN_F32, NN_I64, NN_I64, NN_I64,
                                      NN_BF16, NN_BF16, NN_F16, NN_F16, NN_F16};
    return dtypes[luaL_checkoption(L, arg, NULL, names)];
}

nn_dtype nnL_optdtype(lua_State *L, int arg, nn_dtype def) {
    return lua_isnoneornil(L, arg) ? def : nnL_checkdtype(L, arg);
}

nnL_state *nnL_getstate(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_STATE_KEY);
    nnL_state *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

nn_rng *nnL_rng(lua_State *L) { return &nnL_getstate(L)->rng; }

double nnL_optnumfield(lua_State *L, int t, const char *k, double def) {
    if (!lua_istable(L, t)) return def;
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

int nnL_optboolfield(lua_State *L, int t, const char *k, int def) {
    if (!lua_istable(L, t)) return def;
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* ---- tables ------------------------------------------------------------ */

/* shape of a nested table by following first elements */
static int table_shape(lua_State *L, int idx, int64_t *shape) {
    int n = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (n == NN_MAX_DIMS) luaL_error(L, "tensor: table nested too deeply");
        shape[n++] = nnL_checklen(L, -1, INT32_MAX);
        if (shape[n - 1] == 0) break;
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return n;
}

static void fill_from_table(lua_State *L, nn_tensor *t, int dim, int64_t *pos,
                            int64_t *idx) {
    int64_t n = nnL_checklen(L, -1, INT32_MAX);
    if (n != t->shape[dim])
        luaL_error(L, "tensor: ragged table (dim %d has %d entries, expected %d)",
                   dim + 1, (int)n, (int)t->shape[dim]);
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, -1, i + 1);
        idx[dim] = i;
        if (dim + 1 < t->ndim) {
            if (!lua_istable(L, -1))
                luaL_error(L, "tensor: expected a table at depth %d", dim + 2);
            fill_from_table(L, t, dim + 1, pos, idx);
        } else {
            int ok;
            lua_Number v = lua_tonumberx(L, -1, &ok);
            if (!ok)
                luaL_error(L, "tensor: element %d is %s, expected a number",
                           (int)*pos + 1, luaL_typename(L, -1));
            if (t->dtype == NN_I64) {
                lua_Integer k = lua_tointegerx(L, -1, &ok);
                if (!ok)
                    luaL_error(L, "tensor: element %d is %s, not an integer", (int)*pos + 1,
                               lua_pushfstring(L, "%f", v));
                ((int64_t *)nn_data(t))[*pos] = k;
            } else {
                ((float *)nn_data(t))[*pos] = (float)v;
            }
            (*pos)++;
        }
        lua_pop(L, 1);
    }
}

int nnL_from_table(lua_State *L, int arg, nn_dtype dtype) {
    if (dtype == NN_BF16 || dtype == NN_F16) { /* built in f32, rounded once */
        nnL_from_table(L, arg, NN_F32);
        nn_tensor *f = nnL_checktensor(L, -1);
        NNL_RETURN(nn_to_dtype(f, dtype));
    }
    int64_t shape[NN_MAX_DIMS], pos = 0, idx[NN_MAX_DIMS];
    if (lua_isnumber(L, arg)) return nnL_push(L, nn_scalar(dtype, lua_tonumber(L, arg)));
    luaL_checktype(L, arg, LUA_TTABLE);
    int nd = table_shape(L, arg, shape);
    nn_tensor **slot = nnL_newslot(L);
    *slot = nn_zeros(dtype, nd, shape);
    nnL_finish(L, slot);
    lua_pushvalue(L, arg);
    if (nn_numel(*slot) > 0) fill_from_table(L, *slot, 0, &pos, idx);
    lua_pop(L, 1);
    return 1;
}

void nnL_pushelement(lua_State *L, const nn_tensor *t, const int64_t *idx) {
    if (t->dtype == NN_I64) lua_pushinteger(L, nn_get_i64(t, idx));
    else lua_pushnumber(L, nn_get(t, idx));
}

static void push_table(lua_State *L, const nn_tensor *t, int dim, int64_t *idx) {
    if (dim == t->ndim) {
        nnL_pushelement(L, t, idx);
        return;
    }
    luaL_checkstack(L, 4, "tensor too deep");
    lua_createtable(L, (int)t->shape[dim], 0);
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        idx[dim] = i;
        push_table(L, t, dim + 1, idx);
        lua_rawseti(L, -2, i + 1);
    }
}

int nnL_totable(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    int64_t idx[NN_MAX_DIMS] = {0};
    push_table(L, t, 0, idx);
    return 1;
}

/* ---- lifetime ---------------------------------------------------------- */

#define NNL_CALLS_KEY "nnlua.calls" /* lightuserdata(lua_CFunction) -> true */

static void record_call(lua_State *L, lua_CFunction fn) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, NNL_CALLS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, NNL_CALLS_KEY);
    }
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, (void *)fn);
    lua_pop(L, 1);
}

void nnL_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
    for (const luaL_Reg *r = l; r->name; r++)
        if (r->func) record_call(L, r->func);
    luaL_setfuncs(L, l, nup);
}

/* The module table is also the tensors' method table; these names are
 * module functions (nn.zeros, nn.manual_seed, ...), listed in nn._functions
 * so the REPL does not offer them as methods after `x:`. */
void nnL_mark_functions(lua_State *L, const luaL_Reg *l) {
    if (lua_getfield(L, -1, "_functions") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "_functions");
    }
    for (; l->name; l++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, l->name);
    }
    lua_pop(L, 1);
}

void nnL_pushcclosure(lua_State *L, lua_CFunction fn, int n) {
    record_call(L, fn);
    lua_pushcclosure(L, fn, n);
}

/* Whether a recorded call is on co's stack (from level `from`); the table
 * of recorded calls is on top of L's stack. */
static int call_on_stack(lua_State *L, lua_State *co, int from) {
    lua_Debug ar;
    for (int level = from; lua_getstack(co, level, &ar); level++) {
        lua_getinfo(co, "f", &ar); /* pushes the function onto co */
        lua_CFunction fn = lua_tocfunction(co, -1);
        lua_pop(co, 1);
        if (!fn) continue;
        int found = lua_rawgetp(L, -1, (void *)fn) != LUA_TNIL;
        lua_pop(L, 1);
        if (found) return 1;
    }
    return 0;
}

/* Whether an nnlua call is running below the caller, on this coroutine's
 * stack or the main thread's (a finaliser run by a call in the main thread
 * may resume a coroutine that closes the call's argument): it may hold the
 * engine tensor of any argument as a raw pointer. */
int nnL_inside_call(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_CALLS_KEY);
    int found = call_on_stack(L, L, 1);
    if (!found) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
        lua_State *main = lua_tothread(L, -1);
        lua_pop(L, 1);
        if (main != L) found = call_on_stack(L, main, 0);
    }
    lua_pop(L, 1);
    return found;
}

/* __close and t:close(): frees the tensor now, or, while an nnlua call may
 * be using it, marks it closed and leaves the release to __gc. */
static int t_close(lua_State *L) {
    nnL_tensor *u = luaL_checkudata(L, 1, NNL_TENSOR);
    if (!u->t) return 0;
    if (nnL_inside_call(L)) {
        u->deferred = u->t;
    } else {
        nn_release(u->t);
    }
    u->t = NULL;
    return 0;
}

/* __gc: an unreachable userdata is on no stack, so no call is using it. */
static int t_gc(lua_State *L) {
    nnL_tensor *u = luaL_checkudata(L, 1, NNL_TENSOR);
    nn_release(u->t);
    nn_release(u->deferred);
    u->t = u->deferred = NULL;
    return 0;
}

/* ---- metamethods ------------------------------------------------------- */

static int t_index(lua_State *L) {
    int kt = lua_type(L, 2);
    if (kt == LUA_TNUMBER || kt == LUA_TTABLE || kt == LUA_TUSERDATA)
        return nnL_index_get(L);
    if (kt != LUA_TSTRING) return luaL_typeerror(L, 2, "string, number or table");
    const char *key = lua_tostring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    lua_pop(L, 1);
    nn_tensor *t = nnL_checktensor(L, 1);
    if (!strcmp(key, "shape")) {
        lua_createtable(L, t->ndim, 0);
        for (int i = 0; i < t->ndim; i++) {
            lua_pushinteger(L, t->shape[i]);
            lua_rawseti(L, -2, i + 1);
        }
        return 1;
    }
    if (!strcmp(key, "ndim")) return lua_pushinteger(L, t->ndim), 1;
    if (!strcmp(key, "dtype")) return lua_pushstring(L, nn_dtype_name(t->dtype)), 1;
    if (!strcmp(key, "requires_grad")) return lua_pushboolean(L, t->requires_grad), 1;
    if (!strcmp(key, "grad")) {
        if (nn_sparse_grad_rows(t, NULL) > 0) { /* row-sparse, shown dense */
            nn_tensor *g = nn_sparse_grad_dense(t);
            if (g && t->grad && nn_binary_(NN_ADD, g, t->grad) < 0) {
                nn_release(g);
                g = NULL;
            }
            if (!g) return nnL_engine_error(L);
            return nnL_push(L, g);
        }
        if (!t->grad) return 0;
        return nnL_push(L, nn_retain(t->grad));
    }
    if (!strcmp(key, "grad_fn")) {
        const char *name = nn_grad_fn_name(t);
        if (!name) return 0;
        lua_pushstring(L, name);
        return 1;
    }
    return 0; /* nil, as for any missing key */
}

/* t.grad = g (or nil): replaces a leaf's gradient */
static int set_grad(lua_State *L, nn_tensor *t) {
    nn_tensor *g = lua_isnil(L, 3) ? NULL : nnL_checktensor(L, 3);
    if (g && (!nn_same_shape(g, t) || g->dtype != NN_F32)) {
        char a[96], b[96];
        return nnL_error(L, "grad must be an f32 tensor of shape %s (got %s)",
                         nn_shape_str(t, a, 96), nn_shape_str(g, b, 96));
    }
    nn_release(t->grad);
    t->grad = nn_retain(g);
    nn_sparse_grad_clear(t);
    return 0;
}

static int t_newindex(lua_State *L) {
    int kt = lua_type(L, 2);
    if (kt == LUA_TNUMBER || kt == LUA_TTABLE || kt == LUA_TUSERDATA)
        return nnL_index_set(L);
    const char *key = lua_tostring(L, 2);
    nn_tensor *t = nnL_checktensor(L, 1);
    if (key && !strcmp(key, "requires_grad")) {
        if (nn_set_requires_grad(t, lua_toboolean(L, 3)) < 0) return nnL_engine_error(L);
        return 0;
    }
    if (key && !strcmp(key, "grad")) return set_grad(L, t);
    return luaL_error(L, "cannot set field '%s' of a tensor", luaL_tolstring(L, 2, NULL));
}

static int t_len(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    if (t->ndim == 0) return nnL_error(L, "length of a 0-dim tensor");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

static int arith(lua_State *L, nn_binary_op op) {
    nn_tensor *a0 = nnL_testtensor(L, 1), *b0 = nnL_testtensor(L, 2);
    nn_tensor *a = a0 && b0 ? a0 : nnL_checkoperand(L, 1, b0); /* two tensors: checked once */
    nn_tensor *b = a0 && b0 ? b0 : nnL_checkoperand(L, 2, a0 ? a0 : a);
    nn_tensor **slot = nnL_newslot(L);
    *slot = nn_binary(op, a, b);
    return nnL_finish(L, slot);
}

static int t_add(lua_State *L) { return arith(L, NN_ADD); }
static int t_sub(lua_State *L) { return arith(L, NN_SUB); }
static int t_mul(lua_State *L) { return arith(L, NN_MUL); }
static int t_div(lua_State *L) { return arith(L, NN_DIV); }
static int t_pow(lua_State *L) { return arith(L, NN_POW); }
static int t_mod(lua_State *L) { return arith(L, NN_REMAINDER); }

static int t_idiv(lua_State *L) { return arith(L, NN_FLOOR_DIVIDE); }

static int t_unm(lua_State *L) {
    nn_tensor *a = nnL_checktensor(L, 1);
    nn_tensor **slot = nnL_newslot(L);
    *slot = nn_unary(NN_NEG, a, 0, 0);
    return nnL_finish(L, slot);
}

void nnL_open_tensor(lua_State *L) {
    /* expects the module table on top: it is the method table */
    static const luaL_Reg meta[] = {
        {"__gc", t_gc}, {"__close", t_close}, {"__newindex", t_newindex},
        {"__len", t_len}, {"__tostring", nnL_tostring}, {"__add", t_add},
        {"__sub", t_sub}, {"__mul", t_mul}, {"__div", t_div},
        {"__pow", t_pow}, {"__mod", t_mod}, {"__idiv", t_idiv},
        {"__unm", t_unm}, {NULL, NULL}};
    luaL_newmetatable(L, NNL_TENSOR);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &TENSOR_MT);
    nnL_setfuncs(L, meta, 0);
    lua_pushvalue(L, -2);
    nnL_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "nnlua.Tensor");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    lua_pushcfunction(L, t_close);
    lua_setfield(L, -2, "close");
}
