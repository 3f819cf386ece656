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
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn_dist.h"
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
        if (nn_dist_world_size() > 1) /* under mpirun: say which rank failed */
            fprintf(stderr, "%s (rank %d of %d): %s\n", progname, nn_dist_rank(),
                    nn_dist_world_size(), msg);
        else
            fprintf(stderr, "%s: %s\n", progname, msg);
        fflush(stderr);
        lua_pop(L, 1);
    }
}

/* With NNLUA_DEBUG=1 a user error keeps its traceback too (and exits 1). */
static int traceback(lua_State *L) {
    const char *debug = getenv("NNLUA_DEBUG");
    if (is_exit_request(L, 1)) {
        if (!debug || !*debug || !strcmp(debug, "0")) return 1; /* shown as it is */
        luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
        return 1;
    }
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

/* ---- completion, from nnlua.repl's complete(word) ----------------------- */

static char **matches;
static int nmatches, match_at;

static void free_matches(void) {
    for (int i = match_at; i < nmatches; i++) free(matches[i]);
    free(matches);
    matches = NULL;
    nmatches = match_at = 0;
}

/* asks lua/nnlua/repl.lua; nothing when it is missing or fails */
static void collect(const char *text) {
    lua_State *L = globalL;
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "nnlua.repl");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "complete");
        lua_pushstring(L, text);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
            int n = (int)lua_rawlen(L, -1);
            matches = calloc((size_t)n + 1, sizeof *matches);
            for (int i = 1; matches && i <= n; i++) {
                lua_rawgeti(L, -1, i);
                const char *m = lua_tostring(L, -1);
                if (m && (matches[nmatches] = strdup(m))) nmatches++;
                lua_pop(L, 1);
            }
        }
    }
    lua_settop(L, top);
}

static char *complete_next(const char *text, int state) {
    if (state == 0) {
        free_matches();
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

/* ---- Ctrl-C at the prompt ------------------------------------------------
 * While readline waits, SIGINT only sets a flag (no SA_RESTART, so the read
 * fails with EINTR); our getc then reports end of input, readline returns,
 * and the REPL drops the line instead of exiting. */

static volatile sig_atomic_t prompt_interrupted;
static int typed; /* characters read since the prompt was shown */

static void on_prompt_sigint(int sig) {
    (void)sig;
    prompt_interrupted = 1;
}

static int repl_getc(FILE *f) {
    unsigned char c;
    for (;;) {
        if (prompt_interrupted) return EOF;
        ssize_t n = read(fileno(f), &c, 1);
        if (n == 1) {
            typed++;
            return c;
        }
        if (n < 0 && errno == EINTR) continue; /* the flag decides */
        return EOF;
    }
}

/* readline with Ctrl-C turned into *interrupted (NULL returned) */
static char *read_line(const char *prompt, int *interrupted, int *empty) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prompt_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    prompt_interrupted = 0;
    typed = 0;
    char *line = readline(prompt);
    sigaction(SIGINT, &old, NULL);
    *interrupted = prompt_interrupted;
    *empty = typed == 0;
    if (*interrupted) {
        free(line);
        line = NULL;
    }
    return line;
}

/* ---- history: on disk after every entered statement --------------------- */

static char history_path[4096];

/* (the whole list is rewritten: libedit 3.1's append_history(1, f)
 * appends two entries) */
static void remember(const char *src) {
    if (!*src) return;
    add_history(src);
    if (*history_path) write_history(history_path);
}

/* ---- the REPL ---------------------------------------------------------- */

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

enum { STATEMENT, END_OF_INPUT, INTERRUPTED };

/* Reads a statement (more lines while it is incomplete) and compiles it,
 * first as `return <line>` so expressions print. Leaves the chunk or the
 * error on the stack; *status is the load status. */
static int load_statement(lua_State *L, int *status, int *empty) {
    int interrupted;
    char *line = read_line("> ", &interrupted, empty);
    if (interrupted) return INTERRUPTED;
    if (!line) return END_OF_INPUT;
    lua_pushstring(L, line);
    free(line);
    const char *src = lua_tostring(L, -1);
    const char *ret = lua_pushfstring(L, "return %s;", src);
    *status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    if (*status == LUA_OK) {
        lua_remove(L, -2); /* the "return" string */
        remember(src);
        lua_remove(L, -2);
        return STATEMENT;
    }
    lua_pop(L, 2); /* error and the "return" string */
    for (;;) {
        size_t len;
        src = lua_tolstring(L, -1, &len);
        *status = luaL_loadbuffer(L, src, len, "=stdin");
        if (!incomplete(L, *status)) break;
        int more_empty;
        char *more = read_line(">> ", &interrupted, &more_empty);
        if (interrupted) { /* drop the whole statement */
            *empty = 0;
            return INTERRUPTED;
        }
        if (!more) break;
        lua_pushliteral(L, "\n");
        lua_pushstring(L, more);
        free(more);
        lua_concat(L, 3);
    }
    remember(lua_tostring(L, -2));
    lua_remove(L, -2);
    return STATEMENT;
}

/* prints the results through nnlua.repl's show (tables readably), or
 * through print when it is missing */
static void print_results(lua_State *L) {
    int n = lua_gettop(L);
    if (n == 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "require");
    lua_pushliteral(L, "nnlua.repl");
    int have_show = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) &&
                    lua_getfield(L, -1, "show") == LUA_TFUNCTION;
    if (have_show) {
        int show = lua_gettop(L);
        for (int i = 1; i <= n; i++) {
            lua_pushvalue(L, show);
            lua_pushvalue(L, i);
            if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
                lua_pop(L, 1);
                luaL_tolstring(L, i, NULL);
            }
            lua_replace(L, i);
        }
    }
    lua_settop(L, n);
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
        fprintf(stderr, "%s: error calling 'print' (%s)\n", progname,
                lua_tostring(L, -1));
}

static void repl(lua_State *L) {
    /* set before anything calls rl_initialize (read_history does) */
    globalL = L;
    rl_readline_name = "nnlua";
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
    rl_attempted_completion_function = complete;
    rl_catch_signals = 0;
    rl_getc_function = repl_getc;
    const char *home = getenv("HOME");
    if (home) {
        snprintf(history_path, sizeof history_path, "%s/.nnlua_history", home);
        read_history(history_path);
        stifle_history(1000); /* and every rewrite keeps the file at that */
    }
    for (;;) {
        lua_settop(L, 0);
        int status = LUA_OK, empty = 0;
        int got = load_statement(L, &status, &empty);
        if (got == END_OF_INPUT) break;
        if (got == INTERRUPTED) {
            fputs(empty ? "\n(To exit, press Ctrl-D or type os.exit())\n" : "\n", stdout);
            fflush(stdout);
            continue;
        }
        if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) print_results(L);
        else report(L, status);
    }
    lua_settop(L, 0);
    putchar('\n');
    free_matches();
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
