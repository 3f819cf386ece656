/* lgraph.c -- Lua code on the tape: backward, nn.autograd.grad,
 * t:register_hook(fn), and the engine half of nn.autograd.Function (a
 * function whose backward is a Lua closure).
 *
 * The engine calls back through C function pointers with a small record
 * (callback) naming a slot of the registry table NNL_CALLBACKS. The engine
 * may drop a record wherever a tensor is released, where running Lua is
 * not safe, so dropping only queues the slot; the next call here frees the
 * queued slots. A callback runs its Lua code under lua_pcall: a Lua error
 * becomes an engine error, so no longjmp crosses the engine, and the
 * backward that ran it raises it. Backward runs callbacks on the lua_State
 * that called it (`running`); a record made by another state refuses. */
#include "lnnlua.h"

#include <stdlib.h>
#include <string.h>

#define NNL_CALLBACKS "nnlua.callbacks" /* registry: slot -> Lua value */
#define NNL_QUEUE "nnlua.callback_queue"
#define NNL_HOOK_HANDLE "nnlua.HookHandle"
#define NNL_WHEN_DONE "nnlua.backward_callbacks" /* registry: functions queued */

/* slots whose records the engine dropped; shared by a state and its
 * records (holders), freed by the last */
typedef struct {
    int holders, closed;
    int *dead;
    size_t n, cap;
} queue;

typedef struct {
    queue *q;
    int ref;
} callback;

static _Thread_local lua_State *running;

static queue *state_queue(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_QUEUE);
    queue **qp = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return qp ? *qp : NULL;
}

static void queue_drop(queue *q) {
    if (--q->holders > 0) return;
    free(q->dead);
    free(q);
}

static int queue_gc(lua_State *L) {
    queue **qp = lua_touserdata(L, 1);
    if (*qp) {
        (*qp)->closed = 1;
        queue_drop(*qp);
        *qp = NULL;
    }
    return 0;
}

/* frees the slots of dropped records */
static void sweep(lua_State *L) {
    queue *q = state_queue(L);
    if (!q || !q->n) return;
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_CALLBACKS);
    while (q->n) luaL_unref(L, -1, q->dead[--q->n]);
    lua_pop(L, 1);
}

/* the engine dropped a record: queue its slot (no Lua here) */
static void callback_release(void *ud) {
    callback *c = ud;
    queue *q = c->q;
    if (!q->closed) {
        if (q->n == q->cap) {
            size_t cap = q->cap ? 2 * q->cap : 16;
            int *v = realloc(q->dead, cap * sizeof *v);
            if (v) q->dead = v, q->cap = cap;
        }
        if (q->n < q->cap) q->dead[q->n++] = c->ref; /* else the slot leaks */
    }
    queue_drop(q);
    free(c);
}

/* a record for the value on top of the stack (popped) */
static callback *new_callback(lua_State *L) {
    queue *q = state_queue(L);
    callback *c = malloc(sizeof *c);
    if (!c) luaL_error(L, "out of memory");
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_CALLBACKS);
    lua_rotate(L, -2, 1);
    c->ref = luaL_ref(L, -2); /* may raise: c is then lost, nothing else */
    lua_pop(L, 1);
    c->q = q;
    q->holders++;
    return c;
}

/* pushes the value of c's slot, or fails when c belongs to another state */
static lua_State *callback_state(callback *c) {
    lua_State *L = running;
    if (!L || state_queue(L) != c->q) {
        nn_set_error("a Lua callback ran outside the Lua state that made it");
        return NULL;
    }
    return L;
}

/* runs fn protected with the light userdata args; on error leaves the
 * message as the engine's error */
static int protected_call(lua_State *L, lua_CFunction fn, int nargs, void **args) {
    if (!lua_checkstack(L, nargs + 4)) return nn_set_error("Lua stack overflow in backward");
    lua_pushcfunction(L, fn);
    for (int i = 0; i < nargs; i++) lua_pushlightuserdata(L, args[i]);
    if (lua_pcall(L, nargs, 0, 0) == LUA_OK) return 0;
    const char *msg = lua_tostring(L, -1);
    nn_set_error(msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
    return -1;
}

static void push_slot(lua_State *L, const callback *c) {
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_CALLBACKS);
    lua_rawgeti(L, -1, c->ref);
    lua_remove(L, -2);
}

/* ---- gradient hooks ------------------------------------------------------ */

/* (record, g, result*): calls entry.fn(g); a tensor replaces g, nil keeps it */
static int hook_body(lua_State *L) {
    callback *c = lua_touserdata(L, 1);
    nn_tensor *g = lua_touserdata(L, 2), **result = lua_touserdata(L, 3);
    push_slot(L, c);
    lua_getfield(L, -1, "fn");
    if (lua_isnil(L, -1)) { /* removed */
        *result = nn_retain(g);
        return 0;
    }
    nnL_push(L, nn_retain(g));
    lua_call(L, 1, 1);
    nn_tensor *r = lua_isnil(L, -1) ? g : nnL_testtensor(L, -1);
    if (!r)
        return luaL_error(L, "a gradient hook returned a %s (a tensor or nil expected)",
                          luaL_typename(L, -1));
    if (r->dtype != NN_F32) return luaL_error(L, "a gradient hook returned an i64 tensor");
    *result = nn_retain(r);
    return 0;
}

static nn_tensor *hook_fn(void *ud, nn_tensor *g) {
    lua_State *L = callback_state(ud);
    nn_tensor *result = NULL;
    void *args[3] = {ud, g, &result};
    if (!L || protected_call(L, hook_body, 3, args) < 0) return NULL;
    return result;
}

/* t:register_hook(fn) -> handle: fn(grad) runs when t's gradient is known
 * in a backward and may return a replacement; handle:remove() (or closing
 * the handle) stops it */
static int l_register_hook(lua_State *L) {
    nn_tensor *t = nnL_checktensor(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    sweep(L);
    if (!t->requires_grad)
        return nnL_error(L, "argument #1 does not require grad (a %s tensor with no history)",
                         nn_dtype_name(t->dtype));
    lua_createtable(L, 0, 1); /* the entry, which is the handle */
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "fn");
    luaL_setmetatable(L, NNL_HOOK_HANDLE);
    lua_pushvalue(L, -1);
    callback *c = new_callback(L);
    if (nn_register_hook(t, hook_fn, c, callback_release) < 0) return nnL_engine_error(L);
    return 1;
}

static int handle_remove(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int ok = lua_getmetatable(L, 1);
    luaL_getmetatable(L, NNL_HOOK_HANDLE);
    if (!ok || !lua_rawequal(L, -1, -2)) return luaL_typeerror(L, 1, "hook handle");
    lua_pushnil(L);
    lua_setfield(L, 1, "fn");
    return 0;
}

/* ---- functions with a Lua backward ------------------------------------------ */

/* (record, nout, gouts, nin, gins): gins = closure(gout...), one value per
 * input (nil: no gradient); all checked before any is kept */
static int function_body(lua_State *L) {
    callback *c = lua_touserdata(L, 1);
    int nout = (int)(intptr_t)lua_touserdata(L, 2), nin = (int)(intptr_t)lua_touserdata(L, 4);
    nn_tensor *const *gouts = lua_touserdata(L, 3);
    nn_tensor **gins = lua_touserdata(L, 5);
    luaL_checkstack(L, nout + nin + 4, "backward");
    push_slot(L, c);
    for (int k = 0; k < nout; k++) {
        if (gouts[k]) nnL_push(L, nn_retain(gouts[k]));
        else lua_pushnil(L);
    }
    int base = lua_gettop(L) - nout;
    lua_call(L, nout, nin);
    for (int i = 0; i < nin; i++)
        if (!lua_isnil(L, base + i) && !nnL_testtensor(L, base + i))
            return luaL_error(L, "backward returned a %s for input %d (a tensor or nil expected)",
                              luaL_typename(L, base + i), i + 1);
    for (int i = 0; i < nin; i++)
        gins[i] = nn_retain(lua_isnil(L, base + i) ? NULL : nnL_testtensor(L, base + i));
    return 0;
}

static int function_backward(void *ud, int nout, nn_tensor *const *gouts, int nin,
                             nn_tensor **gins) {
    lua_State *L = callback_state(ud);
    void *args[5] = {ud, (void *)(intptr_t)nout, (void *)gouts, (void *)(intptr_t)nin, gins};
    return L ? protected_call(L, function_body, 5, args) : -1;
}

/* an array of n pointers that lives on the stack (pushed: a userdata) */
static void *stack_array(lua_State *L, size_t n) {
    void **v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
    memset(v, 0, (n ? n : 1) * sizeof *v);
    return v;
}

nn_tensor **nnL_checktensorlist(lua_State *L, int arg, int *n, const char *what) {
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Unsigned len = lua_rawlen(L, arg);
    if (len > (1u << 20)) return nnL_error(L, "%s: more than 2^20 tensors", what), NULL;
    nn_tensor **out = stack_array(L, len);
    for (int i = 0; i < (int)len; i++) {
        lua_rawgeti(L, arg, i + 1);
        out[i] = nnL_testtensor(L, -1);
        if (!out[i])
            return nnL_error(L, "%s: entry %d is a %s (a tensor expected)", what, i + 1,
                             luaL_typename(L, -1)), NULL;
        lua_pop(L, 1);
    }
    *n = (int)len;
    return out;
}

/* nn._record_function(name, backward, inputs, outputs) -> {outputs with
 * history}: the outputs (computed without history) become the outputs of
 * one node whose backward calls backward(grad_out...) -> grad_in... */
static int l_record_function(lua_State *L) {
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 4);
    int nin, nout;
    nn_tensor **ins = nnL_checktensorlist(L, 3, &nin, "inputs");   /* 5 */
    nn_tensor **outs = nnL_checktensorlist(L, 4, &nout, "outputs"); /* 6 */
    nn_tensor **aliases = stack_array(L, (size_t)nout);    /* 7 */
    sweep(L);
    lua_createtable(L, nout, 0); /* 8: the result */
    luaL_checkstack(L, 4, "record_function");
    for (int k = 0; k < nout; k++) {
        if (outs[k]->dtype != NN_F32)
            return nnL_error(L, "output %d is an i64 tensor: only f32 outputs are differentiable",
                             k + 1);
        nn_tensor **slot = nnL_newslot(L);
        *slot = nn_detach(outs[k]);
        nnL_finish(L, slot);
        aliases[k] = *slot;
        lua_rawseti(L, 8, k + 1);
    }
    lua_pushvalue(L, 2);
    callback *c = new_callback(L);
    if (nn_record_function(lua_tostring(L, 1), function_backward, c, callback_release, nin,
                           (const nn_tensor *const *)ins, nout, aliases) < 0)
        return nnL_engine_error(L);
    lua_settop(L, 8);
    return 1;
}

/* ---- backward and grad ---------------------------------------------------------- */

/* nn._queue_callback(fn): fn() runs once when the running t:backward()
 * (or, outside one, the next) has finished; nn.autograd.grad does not run
 * them. What data-parallel training averages its gradients in. */
static int l_queue_callback(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_getfield(L, LUA_REGISTRYINDEX, NNL_WHEN_DONE);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

/* after the outermost backward: runs the queued functions (and any they
 * queue) in order, or drops them when the backward failed */
static void when_done(lua_State *L, int ok) {
    for (;;) {
        lua_getfield(L, LUA_REGISTRYINDEX, NNL_WHEN_DONE);
        if (lua_rawlen(L, -1) == 0) {
            lua_pop(L, 1);
            return;
        }
        lua_newtable(L);
        lua_setfield(L, LUA_REGISTRYINDEX, NNL_WHEN_DONE);
        if (!ok) {
            lua_pop(L, 1);
            return;
        }
        for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, -1); i <= n; i++) {
            lua_rawgeti(L, -1, i);
            lua_call(L, 0, 0); /* an error propagates: we are outside the engine */
        }
        lua_pop(L, 1);
    }
}

/* runs the engine's backward with L as the state callbacks run on */
static int run_backward(lua_State *L, int (*fn)(void *), void *args) {
    sweep(L);
    lua_State *prev = running;
    running = L;
    int rc = fn(args);
    running = prev;
    sweep(L);
    return rc;
}

typedef struct {
    nn_tensor *root;
    const nn_tensor *grad;
    int flags;
} backward_args;

static int do_backward(void *p) {
    backward_args *a = p;
    return nn_backward_ex(a->root, a->grad, a->flags);
}

/* backward([grad][, retain_graph]) or backward{grad =, retain_graph =,
 * create_graph =} */
static const char *const backward_opts[] = {"grad", "retain_graph", "create_graph", NULL};

static int l_backward(lua_State *L) {
    backward_args a = {nnL_checktensor(L, 1), NULL, 0};
    if (lua_istable(L, 2)) {
        nnL_checkoptions(L, 2, "backward", backward_opts);
        lua_getfield(L, 2, "grad");
        if (!lua_isnil(L, -1) && !(a.grad = nnL_testtensor(L, -1)))
            return luaL_argerror(L, 2, "grad must be a tensor");
        a.flags = (nnL_optboolfield(L, 2, "retain_graph", 0) ? NN_RETAIN_GRAPH : 0) |
                  (nnL_optboolfield(L, 2, "create_graph", 0) ? NN_CREATE_GRAPH : 0);
    } else {
        if (!lua_isnoneornil(L, 2)) a.grad = nnL_checktensor(L, 2);
        a.flags = lua_toboolean(L, 3) ? NN_RETAIN_GRAPH : 0;
    }
    int outermost = running == NULL, rc = run_backward(L, do_backward, &a);
    if (outermost) when_done(L, rc >= 0);
    if (rc < 0) return nnL_engine_error(L);
    return 0;
}

typedef struct {
    int n, m, flags;
    nn_tensor **roots, **inputs, **gins;
    const nn_tensor **grads;
} grad_args;

static int do_grad(void *p) {
    grad_args *a = p;
    return nn_grad(a->n, a->roots, a->grads, a->m, a->inputs, a->gins, a->flags);
}

/* nn._grad(outputs, inputs, grad_outputs or nil, retain, create) -> {grads}
 * (nil where an input is not reached); nn.autograd.grad wraps it */
static int l_grad(lua_State *L) {
    lua_settop(L, 5);
    int n, m;
    nn_tensor **roots = nnL_checktensorlist(L, 1, &n, "outputs");   /* 6 */
    nn_tensor **inputs = nnL_checktensorlist(L, 2, &m, "inputs");   /* 7 */
    if (n == 0 || m == 0) return nnL_error(L, "outputs and inputs must not be empty");
    const nn_tensor **grads = stack_array(L, (size_t)n);   /* 8 */
    nn_tensor **gins = stack_array(L, (size_t)m);          /* 9 */
    if (!lua_isnil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, 3, i + 1);
            if (!lua_isnil(L, -1) && !(grads[i] = nnL_testtensor(L, -1)))
                return nnL_error(L, "grad_outputs[%d] is a %s (a tensor or nil expected)", i + 1,
                                 luaL_typename(L, -1));
            lua_pop(L, 1); /* still held by the table */
        }
    }
    int flags = (lua_toboolean(L, 4) ? NN_RETAIN_GRAPH : 0) |
                (lua_toboolean(L, 5) ? NN_CREATE_GRAPH : 0);
    luaL_checkstack(L, m + 4, "grad");
    lua_createtable(L, m, 0); /* 10: the results */
    for (int j = 0; j < m; j++) nnL_newslot(L); /* 11 + j, before the engine allocates */
    grad_args a = {n, m, flags, roots, inputs, gins, grads};
    if (run_backward(L, do_grad, &a) < 0) return nnL_engine_error(L);
    for (int j = 0; j < m; j++) {
        nn_tensor **slot = lua_touserdata(L, 11 + j);
        *slot = gins[j];
        if (!gins[j]) continue;
        nnL_finish(L, slot);
        lua_pushvalue(L, 11 + j);
        lua_rawseti(L, 10, j + 1);
    }
    lua_settop(L, 10);
    return 1;
}

/* t:_version(): bumped by every in-place write to t's storage */
static int l_version(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)nnL_checktensor(L, 1)->storage->version);
    return 1;
}

void nnL_open_graph(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"backward", l_backward}, {"register_hook", l_register_hook},
        {"_record_function", l_record_function}, {"_grad", l_grad},
        {"_version", l_version}, {"_queue_callback", l_queue_callback}, {NULL, NULL}};
    static const nnL_options options[] = {{"backward", backward_opts}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, NNL_CALLBACKS);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, NNL_WHEN_DONE);
    queue **qp = lua_newuserdatauv(L, sizeof *qp, 0);
    *qp = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, queue_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    *qp = calloc(1, sizeof **qp);
    if (!*qp) luaL_error(L, "out of memory");
    (*qp)->holders = 1;
    lua_setfield(L, LUA_REGISTRYINDEX, NNL_QUEUE);
    luaL_newmetatable(L, NNL_HOOK_HANDLE);
    lua_pushcfunction(L, handle_remove);
    lua_setfield(L, -2, "remove");
    lua_pushcfunction(L, handle_remove);
    lua_setfield(L, -2, "__close");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "HookHandle");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}
