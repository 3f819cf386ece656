/* lconvlayers.c -- Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and
 * AdaptiveMaxPool2d as built-in layers (and the adaptive pools' functional
 * forms). */
#include "llayer.h"

#include <math.h>
#include <string.h>

#define PAIR(s, f) NNL_FIELD(NNL_F_PAIR, s, f)

/* ---- Conv2d(in, out, kernel[, {stride=1, padding=0, dilation=1, groups=1,
 * bias=true}]): weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) ---------- */
typedef struct {
    int64_t in_channels, out_channels;
    int kernel_size[2], stride[2], padding[2], dilation[2];
    int64_t groups;
    int bias;
} conv_cfg;

void nnL_conv_args(lua_State *L, int64_t *in, int64_t *out, int *kernel, int *stride, int *padding,
                   int *dilation, int64_t *groups, int *bias) {
    *in = nnL_checkpositive(L, 1, "in_channels");
    *out = nnL_checkpositive(L, 2, "out_channels");
    luaL_checkany(L, 3);
    nnL_pair(L, 3, "kernel_size", kernel, 0);
    nnL_pair_field(L, 4, "stride", stride, 1);
    nnL_pair_field(L, 4, "padding", padding, 0);
    nnL_pair_field(L, 4, "dilation", dilation, 1);
    *groups = nnL_groups_field(L, 4);
    *bias = nnL_optboolfield(L, 4, "bias", 1);
}

static void conv_build(lua_State *L, nnL_layer *l) {
    conv_cfg *c = NNL_CFG(l, conv_cfg);
    nnL_conv_args(L, &c->in_channels, &c->out_channels, c->kernel_size, c->stride, c->padding,
                  c->dilation, &c->groups, &c->bias);
    const int *k = c->kernel_size, *s = c->stride, *p = c->padding, *d = c->dilation;
    if (k[0] < 1 || k[1] < 1) luaL_argerror(L, 3, "kernel_size must be positive");
    if (s[0] < 1 || s[1] < 1 || d[0] < 1 || d[1] < 1 || p[0] < 0 || p[1] < 0)
        luaL_argerror(L, 4, "stride and dilation must be >= 1, padding >= 0");
    int64_t in = c->in_channels, out = c->out_channels;
    if (in % c->groups || out % c->groups)
        luaL_error(L, "Conv2d: groups = %I must divide in_channels %I and out_channels %I",
                   (lua_Integer)c->groups, (lua_Integer)in, (lua_Integer)out);
    int64_t per = in / c->groups; /* input channels each filter sees */
    double bound = 1.0 / sqrt((double)(per * k[0] * k[1]));
    nnL_set_param(L, 0, nnL_uniform(L, 4, (int64_t[]){out, per, k[0], k[1]}, bound));
    if (c->bias) nnL_set_param(L, 1, nnL_uniform(L, 1, &out, bound));
}

static int conv_forward(lua_State *L, nnL_layer *l) {
    const conv_cfg *c = NNL_CFG(l, conv_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    nn_tensor *w = nnL_slot_tensor(L, 1, 0), *b = nnL_slot_tensor(L, 1, 1);
    NNL_RETURN(nn_conv2d_groups(x, w, b, c->stride, c->padding, c->dilation, c->groups));
}

static const nnL_slot conv_slots[] = {{"weight", NNL_PARAM}, {"bias", NNL_PARAM}, {NULL, 0}};
static const nnL_field conv_fields[] = {
    NNL_FIELD(NNL_F_INT, conv_cfg, in_channels),
    NNL_FIELD(NNL_F_INT, conv_cfg, out_channels),
    PAIR(conv_cfg, kernel_size), PAIR(conv_cfg, stride), PAIR(conv_cfg, padding),
    PAIR(conv_cfg, dilation), NNL_FIELD(NNL_F_INT, conv_cfg, groups),
    NNL_FIELD(NNL_F_BOOL, conv_cfg, bias), NNL_END_FIELDS};
static const char *const conv_opts[] = {"stride", "padding", "dilation", "groups", "bias", NULL};
static const nnL_layer_class conv_class = {
    "Conv2d", sizeof(conv_cfg), conv_slots, conv_fields, conv_opts, 4, conv_build, conv_forward, NULL};

/* ---- MaxPool2d(kernel[, {stride = kernel, padding = 0, ceil_mode = false,
 * return_indices = false}]) and AvgPool2d (no return_indices) ---------------- */
typedef struct { int kernel_size[2], stride[2], padding[2], ceil_mode, return_indices; } pool_cfg;

static void pool_build(lua_State *L, nnL_layer *l) {
    pool_cfg *c = NNL_CFG(l, pool_cfg);
    int *k = c->kernel_size, *s = c->stride, *p = c->padding;
    luaL_checkany(L, 1);
    nnL_pair(L, 1, "kernel_size", k, 0);
    nnL_pair_field(L, 2, "stride", s, 0);
    if (s[0] == 0) memcpy(s, k, sizeof c->stride);
    nnL_pair_field(L, 2, "padding", p, 0);
    if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1 || p[0] < 0 || p[1] < 0)
        luaL_argerror(L, 1, "kernel and stride must be >= 1, padding >= 0");
    c->ceil_mode = nnL_optboolfield(L, 2, "ceil_mode", 0);
    c->return_indices = nnL_optboolfield(L, 2, "return_indices", 0);
}

static int maxpool_forward(lua_State *L, nnL_layer *l) {
    const pool_cfg *c = NNL_CFG(l, pool_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    return nnL_max_pool_call(L, x, c->kernel_size, c->stride, c->padding, c->ceil_mode,
                             c->return_indices);
}

static int avgpool_forward(lua_State *L, nnL_layer *l) {
    const pool_cfg *c = NNL_CFG(l, pool_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    NNL_RETURN(nn_avg_pool2d_ex(x, c->kernel_size, c->stride, c->padding, c->ceil_mode));
}

static const nnL_slot no_slots[] = {{NULL, 0}};
static const nnL_field maxpool_fields[] = {
    PAIR(pool_cfg, kernel_size), PAIR(pool_cfg, stride), PAIR(pool_cfg, padding),
    NNL_FIELD(NNL_F_BOOL, pool_cfg, ceil_mode), NNL_FIELD(NNL_F_BOOL, pool_cfg, return_indices),
    NNL_END_FIELDS};
static const nnL_field avgpool_fields[] = {
    PAIR(pool_cfg, kernel_size), PAIR(pool_cfg, stride), PAIR(pool_cfg, padding),
    NNL_FIELD(NNL_F_BOOL, pool_cfg, ceil_mode), NNL_END_FIELDS};
static const char *const maxpool_opts[] = {"stride", "padding", "ceil_mode", "return_indices", NULL};
static const char *const avgpool_opts[] = {"stride", "padding", "ceil_mode", NULL};
static const nnL_layer_class maxpool_class = {
    "MaxPool2d", sizeof(pool_cfg), no_slots, maxpool_fields, maxpool_opts, 2, pool_build,
    maxpool_forward, NULL};
static const nnL_layer_class avgpool_class = {
    "AvgPool2d", sizeof(pool_cfg), no_slots, avgpool_fields, avgpool_opts, 2, pool_build,
    avgpool_forward, NULL};

/* ---- AdaptiveAvgPool2d(output_size) and AdaptiveMaxPool2d(output_size[,
 * {return_indices = false}]): output_size a number or {OH, OW} ---------------- */
typedef struct { int output_size[2]; int return_indices; } adaptive_cfg;

static void adaptive_size(lua_State *L, int arg, int *out) {
    luaL_checkany(L, arg);
    nnL_pair(L, arg, "output_size", out, 0);
    if (out[0] < 1 || out[1] < 1) luaL_argerror(L, arg, "output_size must be positive");
}

static void adaptive_build(lua_State *L, nnL_layer *l) {
    adaptive_cfg *c = NNL_CFG(l, adaptive_cfg);
    adaptive_size(L, 1, c->output_size);
    c->return_indices = nnL_optboolfield(L, 2, "return_indices", 0);
}

/* y, and the maxima's positions in their H x W planes (counted from 1)
 * when asked */
static int adaptive_call(lua_State *L, nn_tensor *x, const int *size, int is_max, int with_indices) {
    int64_t out[2] = {size[0], size[1]};
    if (!is_max) NNL_RETURN(nn_adaptive_avg_pool2d(x, out));
    nn_tensor **slot = nnL_newslot(L);
    nn_tensor *idx = NULL;
    *slot = nn_adaptive_max_pool2d(x, out, with_indices ? &idx : NULL, NNL_BASE);
    nnL_finish(L, slot);
    if (!with_indices) return 1;
    nnL_push(L, idx);
    return 2;
}

static int adaptive_avg_forward(lua_State *L, nnL_layer *l) {
    return adaptive_call(L, nnL_checktensor(L, 2), NNL_CFG(l, adaptive_cfg)->output_size, 0, 0);
}

static int adaptive_max_forward(lua_State *L, nnL_layer *l) {
    const adaptive_cfg *c = NNL_CFG(l, adaptive_cfg);
    return adaptive_call(L, nnL_checktensor(L, 2), c->output_size, 1, c->return_indices);
}

static const nnL_field adaptive_fields[] = {PAIR(adaptive_cfg, output_size), NNL_END_FIELDS};
static const nnL_field adaptive_max_fields[] = {
    PAIR(adaptive_cfg, output_size), NNL_FIELD(NNL_F_BOOL, adaptive_cfg, return_indices), NNL_END_FIELDS};
static const char *const adaptive_max_opts[] = {"return_indices", NULL};
static const nnL_layer_class adaptive_avg_class = {
    "AdaptiveAvgPool2d", sizeof(adaptive_cfg), no_slots, adaptive_fields, NULL, 0, adaptive_build,
    adaptive_avg_forward, NULL};
static const nnL_layer_class adaptive_max_class = {
    "AdaptiveMaxPool2d", sizeof(adaptive_cfg), no_slots, adaptive_max_fields, adaptive_max_opts, 2,
    adaptive_build, adaptive_max_forward, NULL};

/* adaptive_avg_pool2d(x, output_size), adaptive_max_pool2d(x, output_size[,
 * {return_indices = false}]) -> y[, indices] */
static const char *const adaptive_fn_opts[] = {"return_indices", NULL};

static int l_adaptive_avg_pool2d(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int size[2];
    adaptive_size(L, 2, size);
    return adaptive_call(L, x, size, 0, 0);
}

static int l_adaptive_max_pool2d(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    int size[2];
    adaptive_size(L, 2, size);
    nnL_checkoptions(L, 3, "adaptive_max_pool2d", adaptive_fn_opts);
    return adaptive_call(L, x, size, 1, nnL_optboolfield(L, 3, "return_indices", 0));
}

void nnL_open_conv_layers(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&conv_class, &maxpool_class, &avgpool_class,
                                                     &adaptive_avg_class, &adaptive_max_class, NULL};
    static const luaL_Reg fns[] = {{"adaptive_avg_pool2d", l_adaptive_avg_pool2d},
                                   {"adaptive_max_pool2d", l_adaptive_max_pool2d}, {NULL, NULL}};
    static const nnL_options options[] = {{"adaptive_max_pool2d", adaptive_fn_opts}, {NULL, NULL}};
    nnL_register_layers(L, classes);
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
