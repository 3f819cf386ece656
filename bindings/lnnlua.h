/* lnnlua.h -- helpers shared by the binding files (not installed).
 *
 * The bindings check arguments, convert, call the engine and turn engine
 * failures into Lua errors; they hold no maths. Lua counts from 1: dims and
 * indices arrive 1-based (negative from the end) and are converted here. */
#ifndef LNNLUA_H
#define LNNLUA_H

#include <lauxlib.h>
#include <lua.h>

#include "nn.h"

#define NNL_TENSOR "nnlua.Tensor"
#define NNL_STATE_KEY "nnlua.state"
#define NNL_CORE_KEY "nnlua.core" /* registry: the core module table */
#define NNL_BASE 1 /* index base of the Lua API */

/* A rule for every binding: a tensor read out of a table (an argument's
 * field, a list entry, a layer's parameter) stays on the stack until the
 * call is done with it, so no metamethod or finaliser can free it. */

/* The userdata: the tensor, NULL once closed. A tensor closed while an
 * nnlua call that may be reading it is running (from a metamethod or a
 * finaliser) waits in `deferred` until the userdata is collected. */
typedef struct { nn_tensor *t, *deferred; } nnL_tensor;

/* What nnlua keeps per lua_State (a userdata in the registry). */
typedef struct {
    nn_rng rng;
    int64_t gc_threshold; /* live tensor bytes that trigger a full GC */
    int64_t gc_debt;      /* new tensor bytes not yet paid for with collector steps */
    /* grad-mode scopes (lautograd.c): each coroutine has its own mode */
    int scopes;           /* open no_grad/enable_grad scopes, all coroutines */
    int base_mode;        /* the mode of coroutines with no open scope */
    lua_State *cached;    /* the coroutine whose mode the engine holds */
} nnL_state;

/* The engine's grad mode is per OS thread; with scopes open, each binding
 * call (nnL_checktensor) sets it to the running coroutine's, so a
 * coroutine suspended inside nn.no_grad() leaves the others alone. */
extern int nnL_grad_scopes; /* open scopes in the process: 0 is the fast path */
void nnL_sync_grad_mode(lua_State *L);

nnL_state *nnL_getstate(lua_State *L);

/* luaL_setfuncs that also records the functions as nnlua calls: a tensor
 * closed while one of them is on the stack is released later, not under
 * its feet. Functions that only run user code (no_grad) use luaL_setfuncs. */
void nnL_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void nnL_mark_functions(lua_State *L, const luaL_Reg *l);
/* lua_pushcclosure, recording fn the same way. */
void nnL_pushcclosure(lua_State *L, lua_CFunction fn, int n);
/* Whether a recorded nnlua call is running below the caller on this
 * thread's stack (and may hold raw pointers into its arguments): close
 * methods then defer the release to __gc. */
int nnL_inside_call(lua_State *L);

nn_tensor *nnL_checktensor(lua_State *L, int arg);
/* a state's core is closing: tensor checks forget their cached metatable */
void nnL_state_closed(void);
/* The tensors of the list at arg, checked, in an array pushed on the
 * stack (a userdata); the list stays on the stack and holds them. */
nn_tensor **nnL_checktensorlist(lua_State *L, int arg, int *n, const char *what);
nn_tensor *nnL_testtensor(lua_State *L, int arg);
/* the tensor at arg, or NULL when it is none or nil */
nn_tensor *nnL_opttensor(lua_State *L, int arg);
/* Pushes an empty tensor userdata and returns its slot: create the
 * userdata first, then let the engine allocate into the slot. */
nn_tensor **nnL_newslot(lua_State *L);
/* Finishes a slot filled by an engine call: raises the engine's error when
 * it failed, otherwise tells the collector about new memory. Returns 1. */
int nnL_finish(lua_State *L, nn_tensor **slot);
/* Wraps a tensor the caller owns (steals the reference); raises on NULL. */
int nnL_push(lua_State *L, nn_tensor *t);
/* Pushes the result slot, then calls the engine and returns the result:
 * read every argument before, as the slot takes the next stack index. */
#define NNL_RETURN(call)                                                     \
    do {                                                                     \
        nn_tensor **slot_ = nnL_newslot(L);                                  \
        *slot_ = (call);                                                     \
        return nnL_finish(L, slot_);                                         \
    } while (0)
/* Raises the engine's last error in Lua's words. */
int nnL_engine_error(lua_State *L);
/* Converts a number at arg into a 0-dim tensor (replacing it on the stack)
 * so operators accept `t + 1`; `like` picks i64 for integers. */
nn_tensor *nnL_checkoperand(lua_State *L, int arg, const nn_tensor *like);
/* A 1-based (or negative) dim of t as a 0-based engine dim. */
int nnL_checkdim(lua_State *L, int arg, int ndim);
int nnL_optdim(lua_State *L, int arg, int ndim, int def);
/* dims of x from a number or a non-empty list at arg (nil: none, 0) into
 * dims, 0-based; returns how many */
int nnL_checkdims(lua_State *L, int arg, const nn_tensor *x, int *dims);
/* #t of the table at arg (its __len included), raising unless 0..max. */
int nnL_checklen(lua_State *L, int arg, int max);
/* A shape from a table at arg or from integers arg..top; returns ndim. */
int nnL_checkshape(lua_State *L, int arg, int64_t *shape);
/* the same, allowing one -1 (a size to infer, for view/reshape/expand) */
int nnL_checkshape_signed(lua_State *L, int arg, int64_t *shape);
nn_dtype nnL_checkdtype(lua_State *L, int arg);
nn_dtype nnL_optdtype(lua_State *L, int arg, nn_dtype def);
nn_rng *nnL_rng(lua_State *L);
/* field k of the options table at t (def when t is not a table, or k nil) */
double nnL_optnumfield(lua_State *L, int t, const char *k, double def);
int nnL_optboolfield(lua_State *L, int t, const char *k, int def);
/* Options tables (loptions.c). Each options-taking function lists the keys
 * it accepts once; nnL_checkoptions raises on any other key ("Conv2d:
 * unknown option 'grups' (accepted: stride, ...)"). nil means no options. */
typedef struct { const char *fname; const char *const *keys; } nnL_options;
void nnL_define_options(lua_State *L, const nnL_options *specs); /* {NULL} ends */
void nnL_checkoptions(lua_State *L, int arg, const char *fname, const char *const *keys);
void nnL_open_options(lua_State *L);  /* fills the table on top */

/* Raises "fname: message" with the running C function's name. */
int nnL_error(lua_State *L, const char *fmt, ...);

void nnL_open_tensor(lua_State *L);   /* metatable; leaves nothing */
void nnL_open_ops(lua_State *L);      /* fills the table on top */
void nnL_open_create(lua_State *L);   /* fills the table on top */
void nnL_open_autograd(lua_State *L); /* fills the table on top */
void nnL_open_graph(lua_State *L);    /* fills the table on top */
void nnL_open_functional(lua_State *L); /* fills the table on top */
void nnL_open_fusion(lua_State *L);   /* fills the table on top */
void nnL_open_kge(lua_State *L);      /* fills the table on top */
void nnL_open_layers(lua_State *L);   /* fills the table on top */
void nnL_open_checkpoint(lua_State *L); /* fills the table on top */
void nnL_open_bpe(lua_State *L);      /* fills the table on top */
void nnL_open_prefetch(lua_State *L); /* fills the table on top */
void nnL_open_profile(lua_State *L); /* fills the table on top */
void nnL_open_media(lua_State *L);   /* fills the table on top */
void nnL_open_dist(lua_State *L);     /* sets _dist in the table on top */
/* a number or {h, w} pair in field k of the table at t (def if absent) */
/* a number or {h, w} pair at arg (def when absent; errors name it `what`),
 * or in field k of table t */
void nnL_pair(lua_State *L, int arg, const char *what, int *out, int def);
void nnL_pair_field(lua_State *L, int t, const char *k, int *out, int def);
/* max_pool2d's result (and, with_indices, the winners' positions in their
 * planes, counted from 1) pushed; returns the number of results */
int nnL_max_pool_call(lua_State *L, nn_tensor *x, const int *kernel, const int *stride,
                      const int *padding, int ceil_mode, int with_indices);
/* field "groups" of the options table at t: an integer in 1..4096 (1) */
int64_t nnL_groups_field(lua_State *L, int t);
int nnL_tostring(lua_State *L);       /* __tostring */
int nnL_index_get(lua_State *L);      /* t[key] for number/table keys */
int nnL_index_set(lua_State *L);      /* t[key] = v */
int nnL_from_table(lua_State *L, int arg, nn_dtype dtype);
int nnL_totable(lua_State *L);
/* pushes t[idx] as a Lua integer (i64, exactly) or float */
void nnL_pushelement(lua_State *L, const nn_tensor *t, const int64_t *idx);

#endif
