/* lbpe.c -- the byte-level BPE tokenizer as userdata (nnlua.BPE). Token ids
 * count from 1 in Lua (engine id + 1), so they index Embedding rows. */
#include "lnnlua.h"

#include <stdlib.h>
#include <string.h>

#define NNL_BPE "nnlua.BPE"

typedef struct { nn_bpe *b, *deferred; } nnL_bpe; /* as nnL_tensor */

static nn_bpe *checkbpe(lua_State *L, int arg) {
    nnL_bpe *u = luaL_checkudata(L, arg, NNL_BPE);
    if (!u->b) luaL_argerror(L, arg, "tokenizer already freed");
    return u->b;
}

static nnL_bpe *newbpe(lua_State *L) {
    nnL_bpe *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->b = u->deferred = NULL;
    luaL_setmetatable(L, NNL_BPE);
    return u;
}

/* bpe_train(text, vocab_size) */
static int l_train(lua_State *L) {
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    lua_Integer v = luaL_checkinteger(L, 2);
    if (v < 256 || v > 1 << 20) return luaL_argerror(L, 2, "vocabulary size must be 256..2^20");
    nnL_bpe *u = newbpe(L);
    if (!(u->b = nn_bpe_train((const uint8_t *)text, n, (int)v))) return nnL_engine_error(L);
    return 1;
}

/* bpe_from_merges({{a, b}, ...}) with 1-based ids */
static int l_from_merges(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = nnL_checklen(L, 1, 1 << 20);
    int32_t *pairs = lua_newuserdatauv(L, (size_t)(n ? n : 1) * 2 * sizeof *pairs, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        for (int k = 0; k < 2; k++) {
            lua_geti(L, -1 - k, k + 1);
            pairs[2 * i + k] = (int32_t)luaL_checkinteger(L, -1) - 1;
        }
        lua_pop(L, 3);
    }
    nnL_bpe *u = newbpe(L);
    if (!(u->b = nn_bpe_from_merges(pairs, (int)n))) return nnL_engine_error(L);
    return 1;
}

static int l_encode(lua_State *L) {
    nn_bpe *b = checkbpe(L, 1);
    size_t n, count;
    const char *text = luaL_checklstring(L, 2, &n);
    int64_t *ids;
    if (nn_bpe_encode(b, (const uint8_t *)text, n, &ids, &count) < 0) return nnL_engine_error(L);
    for (size_t i = 0; i < count; i++) ids[i] += NNL_BASE;
    int64_t shape = (int64_t)count;
    nn_tensor **slot = nnL_newslot(L);
    *slot = nn_empty(NN_I64, 1, &shape);
    if (*slot) memcpy(nn_data(*slot), ids, count * sizeof *ids);
    free(ids);
    return nnL_finish(L, slot);
}

static int l_decode(lua_State *L) {
    nn_bpe *b = checkbpe(L, 1);
    nn_tensor *t = nnL_checktensor(L, 2);
    if (t->dtype != NN_I64) return luaL_argerror(L, 2, "ids must be an i64 tensor");
    nn_tensor *c = nn_contiguous(t);
    if (!c) return nnL_engine_error(L);
    size_t n = (size_t)nn_numel(c);
    int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = ids ? 0 : -1;
    for (size_t i = 0; ids && i < n; i++) ids[i] = ((int64_t *)nn_data(c))[i] - NNL_BASE;
    nn_release(c);
    if (rc == 0) rc = nn_bpe_decode(b, ids, n, &text, &len);
    free(ids);
    if (rc < 0) return nnL_engine_error(L);
    lua_pushlstring(L, (const char *)text, len);
    free(text);
    return 1;
}

/* merges(): {{a, b}, ...} with 1-based ids, for saving */
static int l_merges(lua_State *L) {
    int n;
    const int32_t *m = nn_bpe_merges(checkbpe(L, 1), &n);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 2, 0);
        for (int k = 0; k < 2; k++) {
            lua_pushinteger(L, m[2 * i + k] + NNL_BASE);
            lua_rawseti(L, -2, k + 1);
        }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_vocab_size(lua_State *L) {
    lua_pushinteger(L, nn_bpe_vocab_size(checkbpe(L, 1)));
    return 1;
}

static int l_gc(lua_State *L) {
    nnL_bpe *u = luaL_checkudata(L, 1, NNL_BPE);
    nn_bpe_free(u->b);
    nn_bpe_free(u->deferred);
    u->b = u->deferred = NULL;
    return 0;
}

static int l_close(lua_State *L) {
    nnL_bpe *u = luaL_checkudata(L, 1, NNL_BPE);
    if (u->b && nnL_inside_call(L)) { /* an encode may be reading it */
        u->deferred = u->b;
        u->b = NULL;
    }
    return l_gc(L);
}

void nnL_open_bpe(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"encode", l_encode}, {"decode", l_decode}, {"merges", l_merges},
        {"vocab_size", l_vocab_size}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"bpe_train", l_train}, {"bpe_from_merges", l_from_merges}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_mark_functions(L, fns);
    luaL_newmetatable(L, NNL_BPE);
    lua_newtable(L);
    nnL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}
