/* lrearrange.c -- rearranging copies and resizing: nn.pad, flip, roll,
 * tile (and repeat), repeat_interleave, unfold, interpolate and the
 * Upsample layer (engine/ops/rearrange.c, engine/nn/interpolate.c). Each
 * is also a tensor method: x:flip(1), x:pad({1, 1}, 'reflect'). */
#include "llayer.h"

#include <math.h>
#include <string.h>

/* integers from a number or a list at arg (or, with varargs, from arg to
 * the top); returns how many */
static int int_list(lua_State *L, int arg, int64_t *out, int max, int varargs) {
    int n, table = lua_istable(L, arg);
    if (table) n = nnL_checklen(L, arg, max);
    else n = varargs ? lua_gettop(L) - arg + 1 : 1;
    if (n > max) luaL_argerror(L, arg, lua_pushfstring(L, "at most %d values", max));
    for (int i = 0; i < n; i++) {
        if (table) lua_geti(L, arg, i + 1);
        else lua_pushvalue(L, arg + i);
        int isint;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_argerror(L, arg, "expected integers");
        out[i] = (int64_t)v;
        lua_pop(L, 1);
    }
    return n;
}

/* pad(x, pads[, mode = 'constant'[, value = 0]]): pads as PyTorch's F.pad,
 * (left, right) of the last dim first */
static int l_pad(lua_State *L) {
    static const char *const modes[] = {"constant", "reflect", "replicate", "circular", NULL};
    nn_tensor *x = nnL_checktensor(L, 1);
    int64_t pads[2 * NN_MAX_DIMS];
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = int_list(L, 2, pads, 2 * NN_MAX_DIMS, 0);
    if (n == 0 || n % 2) return luaL_argerror(L, 2, "pads come in (left, right) pairs");
    int mode = luaL_checkoption(L, 3, "constant", modes);
    double value = luaL_optnumber(L, 4, 0);
    if (mode != NN_PAD_CONSTANT && !lua_isnoneornil(L, 4))
        return luaL_argerror(L, 4, "a fill value is for constant padding only");
    NNL_RETURN(nn_pad(x, n / 2, pads, (nn_pad_mode)mode, value));
}

/* flip(x, dims) */
static int l_flip(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    luaL_checkany(L, 2);
    int dims[NN_MAX_DIMS], n = nnL_checkdims(L, 2, x, dims);
    NNL_RETURN(nn_flip(x, n, dims));
}

/* roll(x, shifts[, dims]): without dims, over the flattened tensor */
static int l_roll(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int64_t shifts[NN_MAX_DIMS];
    int n = int_list(L, 2, shifts, NN_MAX_DIMS, 0), dims[NN_MAX_DIMS];
    if (lua_isnoneornil(L, 3)) NNL_RETURN(nn_roll(x, n, shifts, NULL));
    if (nnL_checkdims(L, 3, x, dims) != n)
        return luaL_argerror(L, 3, "one dim per shift");
    NNL_RETURN(nn_roll(x, n, shifts, dims));
}

/* tile(x, reps...) or tile(x, {reps}): fewer reps than dims repeat the
 * last dims (PyTorch's tile); repeat(x, ...) needs one per dim at least */
static int tile_or_repeat(lua_State *L, int strict) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int64_t reps[NN_MAX_DIMS];
    int n = int_list(L, 2, reps, NN_MAX_DIMS, 1);
    if (n < x->ndim) {
        if (strict)
            return luaL_argerror(L, 2, lua_pushfstring(L, "repeat: %d repeats for a %d-dim tensor "
                                                          "(one a dim at least)", n, x->ndim));
        memmove(reps + (x->ndim - n), reps, sizeof *reps * (size_t)n);
        for (int i = 0; i < x->ndim - n; i++) reps[i] = 1;
        n = x->ndim;
    }
    NNL_RETURN(nn_repeat(x, n, reps));
}
static int l_tile(lua_State *L) { return tile_or_repeat(L, 0); }
static int l_repeat(lua_State *L) { return tile_or_repeat(L, 1); }

/* repeat_interleave(x, repeats[, dim]): repeats a count or an i64 tensor */
static int l_repeat_interleave(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *rt = nnL_testtensor(L, 2);
    lua_Integer r = rt ? 0 : luaL_checkinteger(L, 2);
    if (lua_isnoneornil(L, 3)) NNL_RETURN(nn_repeat_interleave(x, rt, r, NULL));
    int d = nnL_checkdim(L, 3, x->ndim);
    NNL_RETURN(nn_repeat_interleave(x, rt, r, &d));
}

/* unfold(x, dim, size, step) */
static int l_unfold(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int d = nnL_checkdim(L, 2, x->ndim);
    lua_Integer size = luaL_checkinteger(L, 3), step = luaL_checkinteger(L, 4);
    NNL_RETURN(nn_unfold(x, d, (int64_t)size, (int64_t)step));
}

/* ---- interpolate(x, {size =, scale_factor =, mode = 'nearest',
 * align_corners = false}) and Upsample{...} ------------------------------------ */
static const char *const interp_modes[] = {"nearest", "bilinear", "linear", NULL};
static const char *const interp_opts[] = {"size", "scale_factor", "mode", "align_corners", NULL};

typedef struct {
    nnL_shape size; /* {OH, OW} or {OL}, or none */
    double scale_factor[2];
    int has_scale, mode, align_corners;
} interp_cfg;

/* reads the options at t into c (what Upsample keeps) */
static void interp_options(lua_State *L, int t, interp_cfg *c) {
    memset(c, 0, sizeof *c);
    if (!lua_istable(L, t)) luaL_argerror(L, t, "expected {size = ...} or {scale_factor = ...}");
    lua_getfield(L, t, "mode");
    c->mode = luaL_checkoption(L, -1, "nearest", interp_modes);
    lua_pop(L, 1);
    c->align_corners = nnL_optboolfield(L, t, "align_corners", 0);
    if (c->align_corners && c->mode == NN_INTERP_NEAREST)
        luaL_argerror(L, t, "align_corners is for the linear modes only");
    lua_getfield(L, t, "size");
    if (!lua_isnil(L, -1)) {
        c->size.n = int_list(L, lua_gettop(L), c->size.v, 2, 0);
        for (int i = 0; i < c->size.n; i++)
            if (c->size.v[i] < 1) luaL_argerror(L, t, "size must be positive");
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "scale_factor");
    if (!lua_isnil(L, -1)) {
        if (lua_istable(L, -1)) {
            int n = nnL_checklen(L, lua_gettop(L), 2);
            for (int i = 0; i < n; i++) {
                lua_geti(L, -1, i + 1);
                c->scale_factor[i] = luaL_checknumber(L, -1);
                lua_pop(L, 1);
            }
            if (n == 1) c->scale_factor[1] = c->scale_factor[0];
        } else {
            c->scale_factor[0] = c->scale_factor[1] = luaL_checknumber(L, -1);
        }
        c->has_scale = 1;
        if (!(c->scale_factor[0] > 0 && c->scale_factor[1] > 0))
            luaL_argerror(L, t, "scale_factor must be positive");
    }
    lua_pop(L, 1);
    if (c->has_scale == (c->size.n > 0))
        luaL_argerror(L, t, "give one of size and scale_factor");
}

static int interp_call(lua_State *L, nn_tensor *x, const interp_cfg *c) {
    char s[96];
    int one_d = x->ndim == 3;
    if (x->ndim != 3 && x->ndim != 4)
        return luaL_error(L, "interpolate: expected (N, C, L) or (N, C, H, W), got %s",
                          nn_shape_str(x, s, sizeof s));
    if ((c->mode == 2) != one_d && c->mode != NN_INTERP_NEAREST)
        return luaL_error(L, "interpolate: mode '%s' is for %s input, got %s", interp_modes[c->mode],
                          c->mode == 2 ? "(N, C, L)" : "(N, C, H, W)", nn_shape_str(x, s, sizeof s));
    int64_t size[2];
    double scales[2] = {c->scale_factor[0], c->scale_factor[1]};
    if (c->size.n) {
        if (c->size.n != (one_d ? 1 : 2) && c->size.n != 1)
            return luaL_error(L, "interpolate: size has %d values for %s", c->size.n,
                              nn_shape_str(x, s, sizeof s));
        size[0] = c->size.v[0];
        size[1] = c->size.n == 2 ? c->size.v[1] : c->size.v[0];
    } else {
        size[0] = (int64_t)floor((double)x->shape[2] * scales[0]);
        size[1] = (int64_t)floor((double)x->shape[one_d ? 2 : 3] * scales[1]);
    }
    nn_tensor *x4 = x;
    if (one_d) { /* as an image of height 1 */
        x4 = nnL_keep(L, nn_unsqueeze(x, 2));
        size[1] = size[0];
        size[0] = 1;
        scales[1] = scales[0];
        scales[0] = 1;
    }
    nn_interp_mode mode = c->mode == NN_INTERP_NEAREST ? NN_INTERP_NEAREST : NN_INTERP_BILINEAR;
    nn_tensor *y = nnL_keep(L, nn_interpolate(x4, size, c->has_scale ? scales : NULL, mode,
                                              c->align_corners));
    if (one_d) nnL_keep(L, nn_squeeze(y, 2));
    return 1;
}

static int l_interpolate(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    nnL_checkoptions(L, 2, "interpolate", interp_opts);
    interp_cfg c;
    interp_options(L, 2, &c);
    return interp_call(L, x, &c);
}

static void upsample_build(lua_State *L, nnL_layer *l) {
    interp_options(L, 1, NNL_CFG(l, interp_cfg));
}

static int upsample_forward(lua_State *L, nnL_layer *l) {
    return interp_call(L, nnL_checktensor(L, 2), NNL_CFG(l, interp_cfg));
}

static const nnL_slot no_slots[] = {{NULL, 0}};
static const nnL_field upsample_fields[] = {
    {"size", NNL_F_SHAPE, offsetof(interp_cfg, size), NULL},
    {"scale_factor", NNL_F_NUM, offsetof(interp_cfg, scale_factor), NULL},
    {"mode", NNL_F_CHOICE, offsetof(interp_cfg, mode), interp_modes},
    NNL_FIELD(NNL_F_BOOL, interp_cfg, align_corners), NNL_END_FIELDS};
static const nnL_layer_class upsample_class = {"Upsample", sizeof(interp_cfg), no_slots,
                                               upsample_fields, interp_opts, 1, upsample_build,
                                               upsample_forward, NULL};

void nnL_open_rearrange(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&upsample_class, NULL};
    static const luaL_Reg fns[] = {
        {"pad", l_pad}, {"flip", l_flip}, {"roll", l_roll}, {"tile", l_tile}, {"repeat", l_repeat},
        {"repeat_interleave", l_repeat_interleave}, {"unfold", l_unfold},
        {"interpolate", l_interpolate}, {NULL, NULL}};
    static const nnL_options options[] = {{"interpolate", interp_opts}, {NULL, NULL}};
    nnL_register_layers(L, classes);
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
