/* lprint.c -- __tostring: tensors print like PyTorch, with their shape and
 * dtype; tensors of more than 1000 elements show 3 entries at each end of
 * every long dim, with "..." between. */
#include "lnnlua.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define EDGE 3
#define LINE 80

typedef struct {
    luaL_Buffer *b;
    const nn_tensor *t;
    int summarize;
    int style; /* 0 integral floats "1.", 1 fixed "%.4f", 2 "%.4e", 3 ints */
    int width;
} printer;

static int shown(const printer *p, int dim, int64_t i) {
    int64_t n = p->t->shape[dim];
    return !p->summarize || n <= 2 * EDGE || i < EDGE || i >= n - EDGE;
}

/* the element at idx as the printer shows it */
static int format(const printer *p, const int64_t *idx, char *out, size_t n) {
    if (p->style == 3) return snprintf(out, n, "%lld", (long long)nn_get_i64(p->t, idx));
    double v = nn_get(p->t, idx);
    if (isnan(v)) return snprintf(out, n, "nan");
    if (isinf(v)) return snprintf(out, n, v > 0 ? "inf" : "-inf");
    if (p->style == 0) return snprintf(out, n, "%.0f.", v);
    return snprintf(out, n, p->style == 1 ? "%.4f" : "%.4e", v);
}

/* visit every printed element: pick the style, then the width */
static void scan(printer *p, int dim, int64_t *idx, double *stats) {
    const nn_tensor *t = p->t;
    if (dim == t->ndim) {
        double v = nn_get(t, idx), a = fabs(v);
        if (!isfinite(v)) return;
        if (v != floor(v)) stats[0] = 0;             /* all integral? */
        if (a > stats[1]) stats[1] = a;               /* max |v| */
        if (a > 0 && (stats[2] == 0 || a < stats[2])) stats[2] = a;
        return;
    }
    for (int64_t i = 0; i < t->shape[dim]; i++)
        if (shown(p, dim, i)) {
            idx[dim] = i;
            scan(p, dim + 1, idx, stats);
        }
}

static void measure(printer *p, int dim, int64_t *idx) {
    const nn_tensor *t = p->t;
    if (dim == t->ndim) {
        char s[64];
        int w = format(p, idx, s, sizeof s);
        if (w > p->width) p->width = w;
        return;
    }
    for (int64_t i = 0; i < t->shape[dim]; i++)
        if (shown(p, dim, i)) {
            idx[dim] = i;
            measure(p, dim + 1, idx);
        }
}

static void add_indent(printer *p, int n) {
    for (int i = 0; i < n; i++) luaL_addchar(p->b, ' ');
}

static void emit(printer *p, int dim, int64_t *idx, int indent) {
    const nn_tensor *t = p->t;
    int inner = dim == t->ndim - 1;
    int64_t n = t->shape[dim];
    int col = indent + 1;
    luaL_addchar(p->b, '[');
    for (int64_t i = 0; i < n; i++) {
        if (i > 0) {
            luaL_addchar(p->b, ',');
            if (!inner) {
                for (int k = 0; k < t->ndim - dim - 1; k++) luaL_addchar(p->b, '\n');
                add_indent(p, indent + 1);
            } else if (col + p->width + 2 > LINE) {
                luaL_addchar(p->b, '\n');
                add_indent(p, indent + 1);
                col = indent + 1;
            } else {
                luaL_addchar(p->b, ' ');
                col += 2;
            }
        }
        if (!shown(p, dim, i)) {
            luaL_addstring(p->b, "...");
            col += 3;
            i = n - EDGE - 1; /* continue with the tail */
            continue;
        }
        idx[dim] = i;
        if (inner) {
            char s[64];
            int w = format(p, idx, s, sizeof s);
            add_indent(p, p->width - w);
            luaL_addlstring(p->b, s, w);
            col += p->width;
        } else {
            emit(p, dim + 1, idx, indent + 1);
        }
    }
    luaL_addchar(p->b, ']');
}

int nnL_tostring(lua_State *L) {
    nnL_tensor *u = luaL_checkudata(L, 1, NNL_TENSOR);
    if (!u->t) {
        lua_pushliteral(L, "tensor(<closed>)");
        return 1;
    }
    const nn_tensor *t = u->t;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    printer p = {&b, t, nn_numel(t) > 1000, 3, 1};
    int64_t idx[NN_MAX_DIMS] = {0};
    if (t->dtype != NN_I64 && nn_numel(t) > 0) { /* an empty one has no dims to walk */
        double stats[3] = {1, 0, 0};
        scan(&p, 0, idx, stats);
        int integral = stats[0] != 0 && stats[1] < 1e8;
        int sci = stats[1] >= 1e8 || (stats[2] > 0 && stats[2] < 1e-4);
        p.style = integral ? 0 : (sci ? 2 : 1);
    }
    luaL_addstring(&b, "tensor(");
    if (t->ndim == 0) {
        char s[64];
        luaL_addlstring(&b, s, format(&p, idx, s, sizeof s));
    } else if (nn_numel(t) == 0) {
        luaL_addstring(&b, "[]");
    } else {
        measure(&p, 0, idx);
        emit(&p, 0, idx, 7);
    }
    luaL_addstring(&b, ", shape={");
    for (int i = 0; i < t->ndim; i++) {
        char s[32];
        snprintf(s, sizeof s, i ? ", %lld" : "%lld", (long long)t->shape[i]);
        luaL_addstring(&b, s);
    }
    luaL_addstring(&b, "}, dtype=");
    luaL_addstring(&b, nn_dtype_name(t->dtype));
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    return 1;
}
