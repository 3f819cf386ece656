/* threads.c -- two host threads, each with its own lua_State running nnlua:
 * both train an XOR model, change the thread count, and save and load
 * checkpoints, to their own files and to one shared path. A host such as a
 * web server does this; `make tsan` runs it under ThreadSanitizer and the
 * tests run it in the normal build.
 *
 *   ./threads DIR [MAX_THREADS]   -> "threads: ok ...", exit 0
 *
 * MAX_THREADS (default 2) bounds the engine's thread count. */
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "nnlua.h"

#define ROUNDS 20

typedef struct {
    const char *dir;
    int id, max_threads, ok;
    double loss;
    char error[512];
} job;

/* Each round: train a little, save to this thread's file and to the shared
 * one, load both back (the shared file holds one complete save, whichever). */
static const char *rounds =
    "local id, dir, rounds, max = ...\n"
    "nn.manual_seed(1)\n"
    "local X = nn.tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}})\n"
    "local Y = nn.tensor({{0}, {1}, {1}, {0}})\n"
    "local model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))\n"
    "local opt = nn.optim.Adam(model:parameters(), {lr = 0.05})\n"
    "local function train(steps)\n"
    "  local loss\n"
    "  for _ = 1, steps do\n"
    "    loss = nn.F.binary_cross_entropy_with_logits(model(X), Y)\n"
    "    opt:zero_grad()\n"
    "    loss:backward()\n"
    "    opt:step()\n"
    "  end\n"
    "  return loss:item()\n"
    "end\n"
    "local mine = ('%s/model%d.safetensors'):format(dir, id)\n"
    "local shared = dir .. '/shared.safetensors'\n"
    "local loss\n"
    "for r = 1, rounds do\n"
    "  nn.set_num_threads(1 + (r + id) % max)\n"
    "  loss = train(10)\n"
    "  assert(nn.checkpoint.save(mine, {model = model, optimizer = opt, step = r}))\n"
    "  assert(nn.checkpoint.save(shared, {model = model, step = r}))\n"
    "  assert(nn.checkpoint.load(mine, {model = model, optimizer = opt}).step == r)\n"
    "  local t = assert(nn.load(shared))\n"
    "  for name, p in model:named_parameters() do\n"
    "    assert(t['model.' .. name] and t['model.' .. name]:numel() == p:numel(), name)\n"
    "  end\n"
    "end\n"
    "return loss\n";

static void *run(void *arg) {
    job *j = arg;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "nnlua.core", luaopen_nnlua_core, 0);
    lua_pop(L, 1);
    int rc = luaL_dostring(L, "package.path = './lua/?.lua;' .. package.path\n"
                              "nn = require 'nnlua'");
    if (rc == LUA_OK) rc = luaL_loadstring(L, rounds);
    if (rc == LUA_OK) {
        lua_pushinteger(L, j->id);
        lua_pushstring(L, j->dir);
        lua_pushinteger(L, ROUNDS);
        lua_pushinteger(L, j->max_threads);
        rc = lua_pcall(L, 4, 1, 0);
    }
    if (rc == LUA_OK) {
        j->loss = lua_tonumber(L, -1);
        j->ok = 1;
    } else {
        snprintf(j->error, sizeof j->error, "%s", lua_tostring(L, -1));
    }
    lua_close(L);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [MAX_THREADS]\n", argv[0]);
        return 2;
    }
    int max_threads = argc > 2 ? atoi(argv[2]) : 2;
    if (max_threads < 1) max_threads = 1;
    job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (job){argv[1], i + 1, max_threads, 0, 0, ""};
        if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0) return 1;
    }
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        if (!jobs[i].ok) fprintf(stderr, "threads: thread %d: %s\n", i + 1, jobs[i].error);
        ok &= jobs[i].ok;
    }
    if (!ok) return 1;
    /* the same seed, script and data: both threads reach the same loss */
    if (jobs[0].loss != jobs[1].loss) {
        fprintf(stderr, "threads: losses differ: %.9g vs %.9g\n", jobs[0].loss, jobs[1].loss);
        return 1;
    }
    printf("threads: ok (loss %.6f in both)\n", jobs[0].loss);
    return 0;
}
