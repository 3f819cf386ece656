/* lnnlua.c -- luaopen_nnlua_core: the core module table, configuration, threads, the
 * clock, and a raw-sgemm timer for benchmarks. */
#include "lnnlua.h"
#include "nnlua.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

/* PyTorch's default seed: runs are reproducible unless reseeded. */
#define DEFAULT_SEED 67280421310721ULL

static int l_config(lua_State *L) {
    lua_createtable(L, 0, 6);
    lua_pushliteral(L, NNLUA_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, nn_blas_core());
    lua_setfield(L, -2, "blas_core");
    lua_pushstring(L, nn_blas_choice());
    lua_setfield(L, -2, "blas_choice");
    lua_pushstring(L, nn_blas_library());
    lua_setfield(L, -2, "blas_library");
    lua_pushinteger(L, nn_get_num_threads());
    lua_setfield(L, -2, "threads");
    lua_pushstring(L, nn_build_flags());
    lua_setfield(L, -2, "build");
    lua_pushstring(L, nn_conv_backend());
    lua_setfield(L, -2, "conv");
    lua_pushstring(L, LUA_RELEASE);
    lua_setfield(L, -2, "lua");
    return 1;
}

static int l_set_num_threads(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1 || n > 1024) return luaL_argerror(L, 1, "expected 1..1024 threads");
    nn_set_num_threads((int)n);
    return 0;
}

/* set_memory_limit(bytes | nil) -> the previous limit (nil: none) */
static int l_set_memory_limit(lua_State *L) {
    lua_Integer b = luaL_optinteger(L, 1, 0);
    if (b < 0) return luaL_argerror(L, 1, "expected a byte count >= 0 (0 or nil: no limit)");
    int64_t prev = nn_set_memory_limit(b);
    if (prev) lua_pushinteger(L, prev);
    else lua_pushnil(L);
    return 1;
}

/* live_bytes() -> bytes of tensor storage alive now (the caching allocator's
 * free blocks not counted) */
static int l_live_bytes(lua_State *L) {
    lua_pushinteger(L, nn_live_bytes());
    return 1;
}

/* cached_bytes() -> bytes of freed blocks the allocator keeps for reuse */
static int l_cached_bytes(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)nn_cached_bytes());
    return 1;
}

/* empty_cache(): gives those blocks back to the system */
static int l_empty_cache(lua_State *L) {
    (void)L;
    nn_empty_cache();
    return 0;
}

static int l_get_num_threads(lua_State *L) {
    lua_pushinteger(L, nn_get_num_threads());
    return 1;
}

/* terminal_width([fd]) -> columns of the terminal on fd (stdout), or nil
 * when it is not a terminal */
static int l_terminal_width(lua_State *L) {
    struct winsize ws;
    int fd = (int)luaL_optinteger(L, 1, 1);
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
    lua_pushinteger(L, ws.ws_col);
    return 1;
}

/* isatty(fd): whether stdout (1) or another descriptor is a terminal */
static int l_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
    return 1;
}

static int l_clock(lua_State *L) {
    lua_pushnumber(L, nn_clock());
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sgemm_time(m, n, k, reps[, trans_b[, inner[, bf16]]]): median over reps
 * of the seconds per call of `inner` back-to-back raw sgemm calls (or
 * nn_bf16_gemm calls) on buffers allocated once -- the baselines
 * bench/matmul.lua compares with */
static int l_sgemm_time(lua_State *L) {
    lua_Integer m = luaL_checkinteger(L, 1), n = luaL_checkinteger(L, 2);
    lua_Integer k = luaL_checkinteger(L, 3), reps = luaL_optinteger(L, 4, 10);
    int tb = lua_toboolean(L, 5);
    lua_Integer inner = luaL_optinteger(L, 6, 1);
    int bf16 = lua_toboolean(L, 7);
    if (m < 1 || n < 1 || k < 1 || reps < 1 || reps > 10000 || inner < 1)
        return nnL_error(L, "sizes and reps must be positive");
    int64_t sa[2] = {m, k}, sb[2] = {tb ? n : k, tb ? k : n}, sc[2] = {m, n};
    nn_tensor **a = nnL_newslot(L), **b = nnL_newslot(L), **c = nnL_newslot(L);
    *a = nn_full(2, sa, 0.5);
    *b = nn_full(2, sb, 0.25);
    *c = nn_zeros(NN_F32, 2, sc);
    if (!*a || !*b || !*c) return nnL_engine_error(L);
    double *t = lua_newuserdatauv(L, reps * sizeof *t, 0);
    for (lua_Integer r = -1; r < reps; r++) { /* one warm-up call */
        double t0 = nn_clock();
        for (lua_Integer i = 0; i < inner; i++)
            if ((bf16 ? nn_bf16_gemm : nn_sgemm)(0, tb, m, n, k, 1.0f, nn_data(*a), k,
                                                 nn_data(*b), tb ? k : n, 0.0f, nn_data(*c),
                                                 n) < 0)
                return nnL_engine_error(L);
        if (r >= 0) t[r] = (nn_clock() - t0) / (double)inner;
    }
    qsort(t, reps, sizeof *t, cmp_double);
    lua_pushnumber(L, t[reps / 2]);
    return 1;
}

int nnlua_push_borrowed(lua_State *L, float *data, int ndim, const int64_t *shape) {
    nn_tensor **slot = nnL_newslot(L);
    *slot = nn_from_buffer(data, NN_F32, ndim, shape);
    return nnL_finish(L, slot);
}

const float *nnlua_tensor_data(lua_State *L, int idx, int *ndim, int64_t *shape) {
    nn_tensor *t = nnL_testtensor(L, idx);
    if (!t || t->dtype != NN_F32 || !nn_is_contiguous(t)) return NULL;
    *ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    return nn_data(t);
}

static int state_gc(lua_State *L) {
    (void)L;
    nnL_state_closed();
    return 0;
}

/* The C core: no Lua module or class names here (lua/nnlua.lua, the
 * package root, adds those). */
int luaopen_nnlua_core(lua_State *L) {
    if (nn_init() < 0) return luaL_error(L, "nnlua: %s", nn_last_error());
    /* one core per lua_State: opened again (the package root drops the
     * nnlua.core name so tracebacks say nnlua.f), it is the same table */
    if (lua_getfield(L, LUA_REGISTRYINDEX, NNL_CORE_KEY) == LUA_TTABLE) return 1;
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"config", l_config}, {"set_num_threads", l_set_num_threads},
        {"get_num_threads", l_get_num_threads}, {"clock", l_clock},
        {"set_memory_limit", l_set_memory_limit}, {"live_bytes", l_live_bytes},
        {"cached_bytes", l_cached_bytes}, {"empty_cache", l_empty_cache},
        {"isatty", l_isatty}, {"terminal_width", l_terminal_width},
        {"sgemm_time", l_sgemm_time}, {NULL, NULL}};
    nnL_state *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s); /* no grad-mode scopes open */
    lua_createtable(L, 0, 1); /* collected when the state closes */
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    s->base_mode = 1;
    nn_rng_seed(&s->rng, DEFAULT_SEED);
    s->gc_threshold = nn_live_bytes() + ((int64_t)64 << 20);
    lua_setfield(L, LUA_REGISTRYINDEX, NNL_STATE_KEY);
    lua_newtable(L);
    nnL_setfuncs(L, fns, 0);
    nnL_mark_functions(L, fns);
    nnL_open_create(L);
    nnL_open_ops(L);
    nnL_open_autograd(L);
    nnL_open_graph(L);
    nnL_open_functional(L);
    nnL_open_fusion(L);
    nnL_open_kge(L);
    nnL_open_layers(L);
    nnL_open_checkpoint(L);
    nnL_open_bpe(L);
    nnL_open_prefetch(L);
    nnL_open_dist(L);
    nnL_open_profile(L);
    nnL_open_media(L);
    nnL_open_options(L);
    nnL_open_tensor(L);
    lua_pushliteral(L, "nnlua " NNLUA_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, NNL_CORE_KEY);
    return 1;
}

/* For hosts without the Lua files: the core, also known as nnlua.core. */
int luaopen_nnlua(lua_State *L) {
    luaL_requiref(L, "nnlua.core", luaopen_nnlua_core, 0);
    return 1;
}
