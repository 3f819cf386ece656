/* lconvfamily.c -- Conv1d and ConvTranspose2d as built-in layers with
 * PyTorch's options and names, and their functional forms nn.conv1d and
 * nn.conv_transpose2d. */
#include "llayer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PAIR(s, f) NNL_FIELD(NNL_F_PAIR, s, f)

static const nnL_slot conv_slots[] = {{"weight", NNL_PARAM}, {"bias", NNL_PARAM}, {NULL, 0}};

/* an integer option k of the table t, at least lo (def when absent) */
static int int_field(lua_State *L, int t, const char *k, int def, int lo) {
    double v = nnL_optnumfield(L, t, k, def);
    if (v != floor(v) || v < lo || v > 1 << 20) {
        char got[32];
        snprintf(got, sizeof got, "%g", v);
        luaL_error(L, "%s must be an integer >= %d, got %s", k, lo, got);
    }
    return (int)v;
}

/* channels in and out divisible by groups, or an error naming the layer */
static void check_groups(lua_State *L, const char *layer, int64_t in, int64_t out, int64_t groups) {
    if (in % groups || out % groups)
        luaL_error(L, "%s: groups = %I must divide in_channels %I and out_channels %I", layer,
                   (lua_Integer)groups, (lua_Integer)in, (lua_Integer)out);
}

/* ---- Conv1d(in, out, kernel[, {stride = 1, padding = 0, dilation = 1,
 * groups = 1, bias = true}]) --------------------------------------------------- */
typedef struct {
    int64_t in_channels, out_channels, kernel_size, stride, padding, dilation, groups;
    int bias;
} conv1d_cfg;

static void conv1d_build(lua_State *L, nnL_layer *l) {
    conv1d_cfg *c = NNL_CFG(l, conv1d_cfg);
    c->in_channels = nnL_checkpositive(L, 1, "in_channels");
    c->out_channels = nnL_checkpositive(L, 2, "out_channels");
    c->kernel_size = nnL_checkpositive(L, 3, "kernel_size");
    c->stride = int_field(L, 4, "stride", 1, 1);
    c->padding = int_field(L, 4, "padding", 0, 0);
    c->dilation = int_field(L, 4, "dilation", 1, 1);
    c->groups = nnL_groups_field(L, 4);
    c->bias = nnL_optboolfield(L, 4, "bias", 1);
    check_groups(L, "Conv1d", c->in_channels, c->out_channels, c->groups);
    int64_t per = c->in_channels / c->groups, out = c->out_channels;
    double bound = 1.0 / sqrt((double)(per * c->kernel_size));
    nnL_set_param(L, 0, nnL_uniform(L, 3, (int64_t[]){out, per, c->kernel_size}, bound));
    if (c->bias) nnL_set_param(L, 1, nnL_uniform(L, 1, &out, bound));
}

static int conv1d_forward(lua_State *L, nnL_layer *l) {
    const conv1d_cfg *c = NNL_CFG(l, conv1d_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    nn_tensor *w = nnL_slot_tensor(L, 1, 0), *b = nnL_slot_tensor(L, 1, 1);
    NNL_RETURN(nn_conv1d(x, w, b, (int)c->stride, (int)c->padding, (int)c->dilation, c->groups));
}

static const nnL_field conv1d_fields[] = {
    NNL_FIELD(NNL_F_INT, conv1d_cfg, in_channels), NNL_FIELD(NNL_F_INT, conv1d_cfg, out_channels),
    NNL_FIELD(NNL_F_INT, conv1d_cfg, kernel_size), NNL_FIELD(NNL_F_INT, conv1d_cfg, stride),
    NNL_FIELD(NNL_F_INT, conv1d_cfg, padding), NNL_FIELD(NNL_F_INT, conv1d_cfg, dilation),
    NNL_FIELD(NNL_F_INT, conv1d_cfg, groups), NNL_FIELD(NNL_F_BOOL, conv1d_cfg, bias),
    NNL_END_FIELDS};
static const char *const conv1d_opts[] = {"stride", "padding", "dilation", "groups", "bias", NULL};
static const nnL_layer_class conv1d_class = {"Conv1d", sizeof(conv1d_cfg), conv_slots,
                                             conv1d_fields, conv1d_opts, 4, conv1d_build,
                                             conv1d_forward, NULL};

/* ---- ConvTranspose2d(in, out, kernel[, {stride = 1, padding = 0,
 * output_padding = 0, dilation = 1, groups = 1, bias = true}]): weight (in,
 * out / groups, kh, kw) --------------------------------------------------------- */
typedef struct {
    int64_t in_channels, out_channels;
    int kernel_size[2], stride[2], padding[2], output_padding[2], dilation[2];
    int64_t groups;
    int bias;
} tconv_cfg;

static void tconv_build(lua_State *L, nnL_layer *l) {
    tconv_cfg *c = NNL_CFG(l, tconv_cfg);
    nnL_conv_args(L, &c->in_channels, &c->out_channels, c->kernel_size, c->stride, c->padding,
                  c->dilation, &c->groups, &c->bias);
    nnL_pair_field(L, 4, "output_padding", c->output_padding, 0);
    const int *k = c->kernel_size, *s = c->stride, *d = c->dilation;
    if (k[0] < 1 || k[1] < 1) luaL_argerror(L, 3, "kernel_size must be positive");
    for (int i = 0; i < 2; i++)
        if (s[i] < 1 || d[i] < 1 || c->padding[i] < 0 || c->output_padding[i] < 0 ||
            (c->output_padding[i] >= s[i] && c->output_padding[i] >= d[i]))
            luaL_argerror(L, 4, "stride and dilation must be >= 1, padding >= 0, output_padding "
                                "smaller than the stride or the dilation");
    check_groups(L, "ConvTranspose2d", c->in_channels, c->out_channels, c->groups);
    int64_t per = c->out_channels / c->groups, out = c->out_channels;
    double bound = 1.0 / sqrt((double)(per * k[0] * k[1])); /* PyTorch's fan_in: weight dim 1 */
    nnL_set_param(L, 0, nnL_uniform(L, 4, (int64_t[]){c->in_channels, per, k[0], k[1]}, bound));
    if (c->bias) nnL_set_param(L, 1, nnL_uniform(L, 1, &out, bound));
}

static int tconv_forward(lua_State *L, nnL_layer *l) {
    const tconv_cfg *c = NNL_CFG(l, tconv_cfg);
    nn_tensor *x = nnL_checktensor(L, 2);
    nn_tensor *w = nnL_slot_tensor(L, 1, 0), *b = nnL_slot_tensor(L, 1, 1);
    NNL_RETURN(nn_conv_transpose2d(x, w, b, c->stride, c->padding, c->output_padding, c->dilation,
                                   c->groups));
}

static const nnL_field tconv_fields[] = {
    NNL_FIELD(NNL_F_INT, tconv_cfg, in_channels), NNL_FIELD(NNL_F_INT, tconv_cfg, out_channels),
    PAIR(tconv_cfg, kernel_size), PAIR(tconv_cfg, stride), PAIR(tconv_cfg, padding),
    PAIR(tconv_cfg, output_padding), PAIR(tconv_cfg, dilation),
    NNL_FIELD(NNL_F_INT, tconv_cfg, groups), NNL_FIELD(NNL_F_BOOL, tconv_cfg, bias), NNL_END_FIELDS};
static const char *const tconv_opts[] = {"stride", "padding", "output_padding", "dilation",
                                         "groups", "bias", NULL};
static const nnL_layer_class tconv_class = {"ConvTranspose2d", sizeof(tconv_cfg), conv_slots,
                                            tconv_fields, tconv_opts, 4, tconv_build,
                                            tconv_forward, NULL};

/* conv1d(x, weight[, bias[, {stride, padding, dilation, groups}]]) */
static const char *const conv1d_fn_opts[] = {"stride", "padding", "dilation", "groups", NULL};
static int l_conv1d(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *w = nnL_checktensor(L, 2), *b = nnL_opttensor(L, 3);
    nnL_checkoptions(L, 4, "conv1d", conv1d_fn_opts);
    int stride = int_field(L, 4, "stride", 1, 1), padding = int_field(L, 4, "padding", 0, 0);
    int dilation = int_field(L, 4, "dilation", 1, 1);
    int64_t groups = nnL_groups_field(L, 4);
    NNL_RETURN(nn_conv1d(x, w, b, stride, padding, dilation, groups));
}

/* conv_transpose2d(x, weight[, bias[, {stride, padding, output_padding,
 * dilation, groups}]]) */
static const char *const tconv_fn_opts[] = {"stride", "padding", "output_padding", "dilation",
                                            "groups", NULL};
static int l_conv_transpose2d(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1), *w = nnL_checktensor(L, 2), *b = nnL_opttensor(L, 3);
    nnL_checkoptions(L, 4, "conv_transpose2d", tconv_fn_opts);
    int stride[2], padding[2], out_pad[2], dilation[2];
    nnL_pair_field(L, 4, "stride", stride, 1);
    nnL_pair_field(L, 4, "padding", padding, 0);
    nnL_pair_field(L, 4, "output_padding", out_pad, 0);
    nnL_pair_field(L, 4, "dilation", dilation, 1);
    int64_t groups = nnL_groups_field(L, 4);
    NNL_RETURN(nn_conv_transpose2d(x, w, b, stride, padding, out_pad, dilation, groups));
}

void nnL_open_conv_family(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&conv1d_class, &tconv_class, NULL};
    static const luaL_Reg fns[] = {{"conv1d", l_conv1d}, {"conv_transpose2d", l_conv_transpose2d},
                                   {NULL, NULL}};
    static const nnL_options options[] = {{"conv1d", conv1d_fn_opts},
                                          {"conv_transpose2d", tconv_fn_opts}, {NULL, NULL}};
    nnL_register_layers(L, classes);
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
