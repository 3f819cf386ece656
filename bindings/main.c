/* main.c -- the nnlua executable: `lua` with the engine built in as the
 * global `nn`, and a REPL with line editing, history, completion and
 * pretty-printed results.
 *
 *   nnlua [options] [script [args]]
 *     -e stat   run the statement        -i   REPL after the script
 *     -l mod    require mod into global   -v   print the version
 *     -         run standard input        --   stop handling options
 */
#include <editline/readline.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnlua.h"

static const char *progname = "nnlua";
static lua_State *globalL;

/* ---- Ctrl-C: interrupt the running chunk, not the process ---------------- */

static void stop_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
    signal(sig, SIG_DFL); /* a second Ctrl-C kills, as in lua.c */
    lua_sethook(globalL, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* The exit status of a script that raised an error object with a numeric
 * `exit_code` field (nn.cli's usage errors and --help): such an object is
 * shown alone, without traceback, and becomes the status. */
static int exit_code = EXIT_FAILURE;

static int is_exit_request(lua_State *L, int idx) {
    if (!lua_istable(L, idx)) return 0;
    int isnum = lua_getfield(L, idx, "exit_code") == LUA_TNUMBER;
    lua_pop(L, 1);
    return isnum;
}

static void report(lua_State *L, int status) {
    if (status != LUA_OK && is_exit_request(L, -1)) {
        lua_getfield(L, -1, "exit_code");
        exit_code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        const char *msg = luaL_tolstring(L, -1, NULL);
        fprintf(exit_code ? stderr : stdout, "%s\n", msg);
        fflush(NULL);
        lua_pop(L, 2);
        return;
    }
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (!msg) msg = "(error object is not a string)";
        fprintf(stderr, "%s: %s\n", progname, msg);
        fflush(stderr);
        lua_pop(L, 1);
    }
}

static int traceback(lua_State *L) {
    if (is_exit_request(L, 1)) return 1; /* shown as it is */
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    globalL = L;
    signal(SIGINT, on_sigint);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    lua_remove(L, base);
    return status;
}

/* ---- set-up ------------------------------------------------------------- */

/* Lua files next to the executable (build tree: ./lua, or ../lua for the
 * sanitizer and debug builds in build-*; installed: ../share/lua/5.4)
 * come before the default path. */
static void add_lua_path(lua_State *L) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = 0;
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/../lua/?.lua;"
                       "%s/../share/lua/5.4/?.lua;%s/../share/lua/5.4/?/init.lua;",
                    exe, exe, exe, exe, exe);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

/* The C core linked into this executable becomes nnlua.core; the package
 * root lua/nnlua.lua is required over it when the Lua files are found, as
 * they are in the build tree and when installed. */
static void load_nnlua(lua_State *L) {
    luaL_requiref(L, "nnlua.core", luaopen_nnlua_core, 0);
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushliteral(L, "nnlua");
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 1);
    int found = lua_isstring(L, -1);
    lua_pop(L, 2);
    if (!found) {
        luaL_requiref(L, "nnlua", luaopen_nnlua, 0);
        return;
    }
    lua_getglobal(L, "require");
    lua_pushliteral(L, "nnlua");
    lua_call(L, 1, 1);
}

static void create_arg(lua_State *L, char **argv, int argc, int script) {
    lua_createtable(L, argc - script - 1, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int run_chunk(lua_State *L, int status) {
    if (status == LUA_OK) status = docall(L, 0, 0);
    report(L, status);
    return status == LUA_OK;
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
    const char *fname = argv[script];
    if (!strcmp(fname, "-") && strcmp(argv[script - 1], "--")) fname = NULL;
    int status = luaL_loadfile(L, fname);
    if (status != LUA_OK) {
        report(L, status);
        return 0;
    }
    int n = argc - script - 1;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_pushstring(L, argv[script + i]);
    status = docall(L, n, LUA_MULTRET);
    report(L, status);
    return status == LUA_OK;
}

/* ---- completion: globals, and fields or methods after '.' or ':' ------- */

static char **matches;
static int nmatches, match_at;

static void add_match(const char *prefix, size_t plen, const char *head,
                      const char *key) {
    if (strncmp(key, prefix, plen)) return;
    char **m = realloc(matches, (nmatches + 2) * sizeof *m);
    if (!m) return;
    matches = m;
    size_t len = strlen(head) + strlen(key) + 1;
    if ((matches[nmatches] = malloc(len))) {
        snprintf(matches[nmatches], len, "%s%s", head, key);
        nmatches++;
    }
}

/* push the table whose keys complete `path` (a.b.c), or nothing */
static int push_scope(lua_State *L, const char *path, size_t len) {
    lua_pushglobaltable(L);
    size_t at = 0;
    while (at < len) {
        size_t end = at;
        while (end < len && path[end] != '.' && path[end] != ':') end++;
        lua_pushlstring(L, path + at, end - at);
        lua_gettable(L, -2);
        lua_remove(L, -2);
        if (lua_isuserdata(L, -1) || lua_isstring(L, -1)) { /* methods */
            if (!lua_getmetatable(L, -1)) { lua_pop(L, 1); return 0; }
            lua_remove(L, -2);
            lua_getfield(L, -1, "__index");
            lua_remove(L, -2);
            if (lua_iscfunction(L, -1) && lua_getupvalue(L, -1, 1)) lua_remove(L, -2);
        }
        if (!lua_istable(L, -1)) { lua_pop(L, 1); return 0; }
        at = end + 1;
    }
    return 1;
}

static void collect(const char *text) {
    lua_State *L = globalL;
    const char *sep = NULL;
    for (const char *p = text; *p; p++)
        if (*p == '.' || *p == ':') sep = p;
    size_t headlen = sep ? (size_t)(sep - text) + 1 : 0;
    const char *prefix = text + headlen;
    char head[512];
    if (headlen >= sizeof head) return;
    memcpy(head, text, headlen);
    head[headlen] = 0;
    int top = lua_gettop(L);
    if (push_scope(L, text, sep ? (size_t)(sep - text) : 0)) {
        for (int level = 0; level < 2 && lua_istable(L, -1); level++) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                if (lua_type(L, -2) == LUA_TSTRING)
                    add_match(prefix, strlen(prefix), head, lua_tostring(L, -2));
                lua_pop(L, 1);
            }
            /* and what the table inherits through a table __index */
            if (!lua_getmetatable(L, -1)) break;
            lua_getfield(L, -1, "__index");
            lua_remove(L, -2);
            lua_remove(L, -2);
        }
    }
    lua_settop(L, top);
}

static char *complete_next(const char *text, int state) {
    if (state == 0) {
        for (int i = match_at; i < nmatches; i++) free(matches[i]);
        free(matches);
        matches = NULL;
        nmatches = match_at = 0;
        collect(text);
    }
    return match_at < nmatches ? matches[match_at++] : NULL;
}

static char **complete(const char *text, int start, int end) {
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_completion_append_character = '\0'; /* "x:sum" then "(" , no space */
    return rl_completion_matches(text, complete_next);
}

/* ---- the REPL ---------------------------------------------------------- */

static char history_path[4096];

static int incomplete(lua_State *L, int status) {
    if (status != LUA_ERRSYNTAX) return 0;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    const char *eof = "<eof>";
    size_t elen = strlen(eof);
    if (len >= elen && !strcmp(msg + len - elen, eof)) {
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}

/* Reads a statement (more lines while it is incomplete) and compiles it,
 * first as `return <line>` so expressions print. */
static int load_statement(lua_State *L, int *eof) {
    char *line = readline("> ");
    if (!line) {
        *eof = 1;
        return -1;
    }
    lua_pushstring(L, line);
    free(line);
    const char *src = lua_tostring(L, -1);
    const char *ret = lua_pushfstring(L, "return %s;", src);
    int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    if (status == LUA_OK) {
        lua_remove(L, -2); /* the "return" string */
        if (*src) add_history(src);
        lua_remove(L, -2);
        return LUA_OK;
    }
    lua_pop(L, 2); /* error and the "return" string */
    for (;;) {
        size_t len;
        src = lua_tolstring(L, -1, &len);
        status = luaL_loadbuffer(L, src, len, "=stdin");
        if (!incomplete(L, status)) break;
        char *more = readline(">> ");
        if (!more) break;
        lua_pushliteral(L, "\n");
        lua_pushstring(L, more);
        free(more);
        lua_concat(L, 3);
    }
    add_history(lua_tostring(L, -2));
    lua_remove(L, -2);
    return status;
}

static void print_results(lua_State *L) {
    int n = lua_gettop(L);
    if (n == 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
        fprintf(stderr, "%s: error calling 'print' (%s)\n", progname,
                lua_tostring(L, -1));
}

static void repl(lua_State *L) {
    const char *home = getenv("HOME");
    if (home) {
        snprintf(history_path, sizeof history_path, "%s/.nnlua_history", home);
        read_history(history_path);
    }
    globalL = L;
    rl_readline_name = "nnlua";
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
    rl_attempted_completion_function = complete;
    int eof = 0;
    for (;;) {
        lua_settop(L, 0);
        int status = load_statement(L, &eof);
        if (eof) break;
        if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) print_results(L);
        else report(L, status);
    }
    lua_settop(L, 0);
    putchar('\n');
    if (home) {
        write_history(history_path);
        history_truncate_file(history_path, 1000);
    }
}

/* ---- main -------------------------------------------------------------- */

static void print_version(void) {
    printf("nnlua %s (%s)\n", NNLUA_VERSION, LUA_RELEASE);
    fflush(stdout);
}

static void usage(const char *badopt) {
    fprintf(stderr, "%s: unrecognized option '%s'\n"
            "usage: %s [options] [script [args]]\n"
            "  -e stat   execute string 'stat'\n"
            "  -i        enter interactive mode after running the script\n"
            "  -l mod    require library 'mod' into global 'mod'\n"
            "  -v        show version information\n"
            "  --        stop handling options\n"
            "  -         execute stdin and stop handling options\n",
            progname, badopt, progname);
}

typedef struct { int argc; char **argv; int ok; } main_args;

static int pmain(lua_State *L) {
    main_args *m = lua_touserdata(L, 1);
    int argc = m->argc, script = 0, interactive = 0, version = 0, ran = 0;
    char **argv = m->argv;
    luaL_checkversion(L);
    luaL_openlibs(L);
    add_lua_path(L);
    load_nnlua(L);
    lua_setglobal(L, "nn");
    /* options: first pass finds the script and flags */
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') break;
        if (!strcmp(a, "--")) { i++; break; }
        if (!strcmp(a, "-")) break;
        if (!strcmp(a, "-i")) interactive = version = 1;
        else if (!strcmp(a, "-v")) version = 1;
        else if (!strcmp(a, "-e") || !strcmp(a, "-l")) {
            if (++i >= argc) { usage(a); return 0; }
        } else { usage(a); return 0; }
    }
    script = i < argc ? i : 0;
    if (version) print_version();
    create_arg(L, argv, argc, script ? script : argc - 1);
    for (int j = 1; j < (script ? script : argc); j++) {
        if (!strcmp(argv[j], "-e")) {
            const char *chunk = argv[++j];
            ran = 1;
            if (!run_chunk(L, luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)")))
                return 0;
        } else if (!strcmp(argv[j], "-l")) {
            lua_getglobal(L, "require");
            lua_pushstring(L, argv[++j]);
            int st = docall(L, 1, 1);
            if (st != LUA_OK) { report(L, st); return 0; }
            lua_setglobal(L, argv[j]);
        }
    }
    if (script && !run_script(L, argv, argc, script)) return 0;
    if (interactive) {
        repl(L);
    } else if (!script && !ran && !version) {
        if (isatty(0)) {
            print_version();
            repl(L);
        } else if (!run_chunk(L, luaL_loadfile(L, NULL))) {
            return 0;
        }
    }
    m->ok = 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argv[0] && argv[0][0]) progname = argv[0];
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
        return EXIT_FAILURE;
    }
    main_args m = {argc, argv, 0};
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, &m);
    int status = lua_pcall(L, 1, 0, 0);
    report(L, status);
    lua_close(L);
    return (status == LUA_OK && m.ok) ? EXIT_SUCCESS : exit_code;
}
