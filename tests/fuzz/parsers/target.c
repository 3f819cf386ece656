/* target.c -- libFuzzer harness for nnlua's file readers, one binary per
 * reader (FUZZ_<NAME> picks it; `make fuzz-parsers` builds and runs them).
 *
 * Each input becomes a file (the triples reader gets a directory: the
 * input's part before a line "%%" is entities.dict, the rest train.txt)
 * and goes to the reader as a user would call it. The C safetensors parser
 * is called directly; the readers written in Lua run in one lua_State with
 * nnlua, where any Lua error is a fine answer. A crash, a sanitizer report
 * or a leak is a bug. Lua code is not instrumented, so a line hook feeds
 * libFuzzer with which Lua lines (and line pairs) ran, through its extra
 * counters: the fuzzer is guided through the readers written in Lua too. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn.h"
#include "nnlua.h"

#if defined(FUZZ_SAFETENSORS) || defined(FUZZ_PNG) || defined(FUZZ_AUDIO)
#define CODE NULL /* C readers, called directly */
#elif defined(FUZZ_IDX)
#define CODE "local p = ... return nn.data.read_idx(p)"
#elif defined(FUZZ_BPE)
#define CODE "local p = ... local t = nn.tokenizer.BPE.load(p) if t then t:decode(t:encode('to be or not')) end"
#elif defined(FUZZ_CHAR)
#define CODE "local p = ... local t = nn.tokenizer.Char.load(p) if t then t:decode(t:encode('abc')) end"
#elif defined(FUZZ_TRIPLES)
#define CODE "local p = ... return nn.kge.load_triples(p, {splits = {'train'}})"
#elif defined(FUZZ_JSONL)
#define CODE "local p = ... return nn.data.read_jsonl(p)"
#elif defined(FUZZ_CSV)
#define CODE "local p = ... return nn.data.read_table(p .. '.csv', {header = true})"
#else
#error "define one FUZZ_<READER>"
#endif

/* Lua line coverage for libFuzzer: counters[hash(previous line, line)] */
#define COUNTERS 65536
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t counters[COUNTERS];
static uint32_t previous;

static void line_hook(lua_State *L, lua_Debug *ar) {
    if (!lua_getinfo(L, "S", ar)) return;
    uint32_t h = 2166136261u;
    for (const char *c = ar->source; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    h ^= (uint32_t)ar->currentline * 2654435761u;
    counters[(h ^ (previous >> 1)) % COUNTERS]++;
    previous = h;
}

static lua_State *L;
static char dir[64], file[128];
static int reader = LUA_NOREF;

static void put(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    nn_set_memory_limit(256 << 20);
    snprintf(dir, sizeof dir, "/tmp/nnlua-fuzz-XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(file, sizeof file, "%s/input", dir);
    if (!CODE) return 0;
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "nnlua.core", luaopen_nnlua_core, 0);
    lua_pop(L, 1);
    if (luaL_dostring(L, "package.path = '" NNLUA_LUA_DIR "/?.lua;' .. package.path\n"
                         "nn = require 'nnlua'") != LUA_OK ||
        luaL_loadstring(L, CODE) != LUA_OK) {
        fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1));
        abort();
    }
    reader = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
#if defined(FUZZ_SAFETENSORS)
    put(file, data, size);
    nn_safetensors_free(nn_safetensors_load(file));
#elif defined(FUZZ_PNG)
    put(file, data, size);
    nn_release(nn_image_read_png(file, NULL));
    nn_release(nn_image_read_png_rgb(file, (const float[]){1, 0.5f, 0}, NULL)); /* the compositing path */
#elif defined(FUZZ_AUDIO)
    int64_t rate;
    put(file, data, size);
    nn_release(nn_audio_read(file, &rate));
#else
    const char *arg = file;
#if defined(FUZZ_TRIPLES)
    char ents[160], train[160];
    snprintf(ents, sizeof ents, "%s/entities.dict", dir);
    snprintf(train, sizeof train, "%s/train.txt", dir);
    const uint8_t *sep = memmem(data, size, "\n%%\n", 4);
    if (sep) {
        put(ents, data, (size_t)(sep - data));
        put(train, sep + 4, size - (size_t)(sep - data) - 4);
    } else {
        unlink(ents);
        put(train, data, size);
    }
    arg = dir;
#elif defined(FUZZ_CSV)
    char csv[160];
    snprintf(csv, sizeof csv, "%s.csv", file);
    put(csv, data, size);
#else
    put(file, data, size);
#endif
    lua_rawgeti(L, LUA_REGISTRYINDEX, reader);
    lua_pushstring(L, arg);
    lua_pcall(L, 1, 0, 0); /* an error is an answer */
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
#endif
    return 0;
}
