/* lrnnlayers.c -- the recurrent layers RNN, LSTM and GRU with PyTorch's
 * options and parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0,
 * bias_hh_l0, ..._reverse), so PyTorch state dicts load.
 *
 *   out, h_n = rnn(x[, h0[, lengths]])            RNN, GRU
 *   out, {h_n, c_n} = lstm(x[, {h0, c0}[, lengths]])
 *
 * x is (T, B, I), or (B, T, I) with batch_first; h0, c0 and the final
 * states are (num_layers * directions, B, H); out is (T, B, directions * H)
 * (batch first likewise). lengths: an i64 tensor (B), or a padding mask
 * shaped like x's first two dims (non-zero = a real step, a prefix of each
 * sequence). Per layer and direction: one GEMM of the input side over the
 * whole sequence (nn_linear), then the recurrence (nn_rnn_scan). */
#include "llayer.h"

#include <math.h>
#include <string.h>

#define RNN_MAX_LAYERS 8

typedef struct {
    int64_t input_size, hidden_size, num_layers;
    int nonlinearity; /* RNN: 0 tanh, 1 relu */
    int bias, batch_first, bidirectional;
    double dropout;
} rnn_cfg;

enum { W_IH, W_HH, B_IH, B_HH, PER_DIRECTION };

#define RNN_DIR_SLOTS(l, sfx)                                                              \
    {"weight_ih_l" #l sfx, NNL_PARAM}, {"weight_hh_l" #l sfx, NNL_PARAM},                    \
        {"bias_ih_l" #l sfx, NNL_PARAM}, {"bias_hh_l" #l sfx, NNL_PARAM}
#define RNN_LAYER_SLOTS(l) RNN_DIR_SLOTS(l, ""), RNN_DIR_SLOTS(l, "_reverse")
static const nnL_slot rnn_slots[] = {RNN_LAYER_SLOTS(0), RNN_LAYER_SLOTS(1), RNN_LAYER_SLOTS(2),
                                     RNN_LAYER_SLOTS(3), RNN_LAYER_SLOTS(4), RNN_LAYER_SLOTS(5),
                                     RNN_LAYER_SLOTS(6), RNN_LAYER_SLOTS(7), {NULL, 0}};
_Static_assert(sizeof rnn_slots / sizeof *rnn_slots == RNN_MAX_LAYERS * 2 * PER_DIRECTION + 1,
               "rnn slots");

static int slot_of(int64_t layer, int dir, int which) {
    return (int)((layer * 2 + dir) * PER_DIRECTION + which);
}

static const char *const nonlinearities[] = {"tanh", "relu", NULL};

static void build_gates(lua_State *L, nnL_layer *l, int64_t gates) {
    rnn_cfg *c = NNL_CFG(l, rnn_cfg);
    c->input_size = nnL_checkpositive(L, 1, "input_size");
    c->hidden_size = nnL_checkpositive(L, 2, "hidden_size");
    c->num_layers = 1;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "num_layers");
        if (!lua_isnil(L, -1)) c->num_layers = luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    if (c->num_layers < 1 || c->num_layers > RNN_MAX_LAYERS)
        luaL_argerror(L, 3, "num_layers must be in 1..8");
    c->bias = nnL_optboolfield(L, 3, "bias", 1);
    c->batch_first = nnL_optboolfield(L, 3, "batch_first", 0);
    c->bidirectional = nnL_optboolfield(L, 3, "bidirectional", 0);
    c->dropout = nnL_optnumfield(L, 3, "dropout", 0);
    if (!(c->dropout >= 0 && c->dropout < 1)) luaL_argerror(L, 3, "dropout must be in [0, 1)");
    int dirs = c->bidirectional ? 2 : 1;
    int64_t H = c->hidden_size;
    double bound = 1 / sqrt((double)H); /* PyTorch: U(-1/sqrt(H), 1/sqrt(H)) for all */
    for (int64_t k = 0; k < c->num_layers; k++)
        for (int d = 0; d < dirs; d++) {
            int64_t in = k == 0 ? c->input_size : dirs * H;
            nnL_set_param(L, slot_of(k, d, W_IH), nnL_uniform(L, 2, (int64_t[]){gates * H, in}, bound));
            nnL_set_param(L, slot_of(k, d, W_HH), nnL_uniform(L, 2, (int64_t[]){gates * H, H}, bound));
            if (!c->bias) continue;
            nnL_set_param(L, slot_of(k, d, B_IH), nnL_uniform(L, 1, (int64_t[]){gates * H}, bound));
            nnL_set_param(L, slot_of(k, d, B_HH), nnL_uniform(L, 1, (int64_t[]){gates * H}, bound));
        }
}

static void rnn_build(lua_State *L, nnL_layer *l) {
    rnn_cfg *c = NNL_CFG(l, rnn_cfg);
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "nonlinearity");
        c->nonlinearity = luaL_checkoption(L, -1, "tanh", nonlinearities);
        lua_pop(L, 1);
    }
    build_gates(L, l, 1);
}
static void lstm_build(lua_State *L, nnL_layer *l) { build_gates(L, l, 4); }
static void gru_build(lua_State *L, nnL_layer *l) { build_gates(L, l, 3); }

/* lengths from a padding mask m shaped (B, T) (batch_first) or (T, B) */
static nn_tensor *mask_lengths(lua_State *L, const nnL_layer *l, nn_tensor *m, int64_t T,
                               int64_t B, int batch_first) {
    char s[96];
    int64_t want0 = batch_first ? B : T, want1 = batch_first ? T : B;
    if (m->shape[0] != want0 || m->shape[1] != want1)
        luaL_error(L, "%s: padding mask %s must be %s = (%I, %I)", l->cls->name,
                   nn_shape_str(m, s, sizeof s), batch_first ? "(B, T)" : "(T, B)",
                   (lua_Integer)want0, (lua_Integer)want1);
    nn_tensor *len = nnL_keep(L, nn_zeros(NN_I64, 1, &B));
    for (int64_t b = 0; b < B; b++) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++) {
            double v = nn_get(m, batch_first ? (int64_t[]){b, t} : (int64_t[]){t, b});
            if (v != 0 && n < t)
                luaL_error(L, "%s: the padding mask of sequence %I is not a prefix (step %I is "
                              "real after padding)", l->cls->name, (lua_Integer)(b + 1),
                           (lua_Integer)(t + 1));
            if (v != 0) n++;
        }
        nn_set(len, (int64_t[]){b}, (double)n);
    }
    return len;
}

static void check_lengths(lua_State *L, const nnL_layer *l, const nn_tensor *len, int64_t T,
                          int64_t B) {
    char s[96];
    if (len->dtype != NN_I64 || len->ndim != 1 || len->shape[0] != B)
        luaL_error(L, "%s: lengths %s must be i64 (B) = (%I), or a padding mask", l->cls->name,
                   nn_shape_str(len, s, sizeof s), (lua_Integer)B);
    for (int64_t b = 0; b < B; b++) {
        double v = nn_get(len, (int64_t[]){b});
        if (v < 1 || v > T)
            luaL_error(L, "%s: length %I of sequence %I is outside 1..%I", l->cls->name,
                       (lua_Integer)v, (lua_Integer)(b + 1), (lua_Integer)T);
    }
}

/* the initial state h0 or c0 (at arg, or NULL) checked against (L D, B, H) */
static void check_state(lua_State *L, const nnL_layer *l, const nn_tensor *s, const char *what,
                        int64_t B) {
    const rnn_cfg *c = NNL_CFG(l, rnn_cfg);
    int64_t ld = c->num_layers * (c->bidirectional ? 2 : 1);
    if (!s || (s->ndim == 3 && s->shape[0] == ld && s->shape[1] == B && s->shape[2] == c->hidden_size))
        return;
    char sh[96];
    luaL_error(L, "%s: %s %s must be (num_layers * directions, B, H) = (%I, %I, %I)", l->cls->name,
               what, nn_shape_str(s, sh, sizeof sh), (lua_Integer)ld, (lua_Integer)B,
               (lua_Integer)c->hidden_size);
}

static int recurrent_forward(lua_State *L, nnL_layer *l, nn_rnn_mode mode) {
    const rnn_cfg *c = NNL_CFG(l, rnn_cfg);
    const char *name = l->cls->name;
    int dirs = c->bidirectional ? 2 : 1, lstm = mode == NN_LSTM;
    lua_settop(L, 4); /* x, the initial state, lengths: the rest of the stack is ours */
    luaL_checkstack(L, 16 + 8 * (int)c->num_layers * dirs, name);
    nn_tensor *x = nnL_checktensor(L, 2);
    char s[96];
    if (x->ndim != 3 || x->shape[2] != c->input_size)
        return luaL_error(L, "%s(%I, %I): expected input %s with %I features, got %s", name,
                          (lua_Integer)c->input_size, (lua_Integer)c->hidden_size,
                          c->batch_first ? "(B, T, I)" : "(T, B, I)", (lua_Integer)c->input_size,
                          nn_shape_str(x, s, sizeof s));
    nn_tensor *h0 = NULL, *c0 = NULL;
    if (lstm && lua_istable(L, 3)) {
        lua_rawgeti(L, 3, 1);
        lua_rawgeti(L, 3, 2);
        h0 = nnL_testtensor(L, -2), c0 = nnL_testtensor(L, -1);
        if (!h0 || !c0) return luaL_error(L, "LSTM: the initial state must be {h0, c0}");
    } else if (lstm && !lua_isnoneornil(L, 3)) {
        return luaL_error(L, "LSTM: the initial state must be {h0, c0}, got %s", luaL_typename(L, 3));
    } else if (!lstm) {
        h0 = nnL_opttensor(L, 3);
    }
    nn_tensor *xt = c->batch_first ? nnL_keep(L, nn_transpose(x, 0, 1)) : x;
    int64_t T = xt->shape[0], B = xt->shape[1];
    check_state(L, l, h0, "h0", B);
    check_state(L, l, c0, "c0", B);
    nn_tensor *lengths = nnL_opttensor(L, 4);
    if (lengths && lengths->ndim == 2) lengths = mask_lengths(L, l, lengths, T, B, c->batch_first);
    else if (lengths) check_lengths(L, l, lengths, T, B);
    nn_tensor *inp = xt, *hs[2 * RNN_MAX_LAYERS], *cs[2 * RNN_MAX_LAYERS];
    for (int64_t k = 0; k < c->num_layers; k++) {
        nn_tensor *outs[2];
        if (k > 0 && c->dropout > 0 && l->training)
            inp = nnL_keep(L, nn_dropout(nnL_rng(L), inp, c->dropout, 1));
        for (int d = 0; d < dirs; d++) {
            nn_tensor *wih = nnL_slot_tensor(L, 1, slot_of(k, d, W_IH));
            nn_tensor *whh = nnL_slot_tensor(L, 1, slot_of(k, d, W_HH));
            nn_tensor *bih = nnL_slot_tensor(L, 1, slot_of(k, d, B_IH));
            nn_tensor *bhh = nnL_slot_tensor(L, 1, slot_of(k, d, B_HH));
            if (!wih || !whh) return luaL_error(L, "%s: layer %I has no weights", name, (lua_Integer)k);
            nn_tensor *xw = nnL_keep(L, nn_linear(inp, wih, bih));
            int at = (int)(k * dirs + d);
            nn_tensor *h0k = h0 ? nnL_keep(L, nn_select(h0, 0, at)) : NULL;
            nn_tensor *c0k = c0 ? nnL_keep(L, nn_select(c0, 0, at)) : NULL;
            nn_tensor *hn = NULL, *cn = NULL;
            if (nn_rnn_scan(mode, xw, whh, bhh, h0k, c0k, lengths, d == 1, &outs[d], &hn,
                            lstm ? &cn : NULL) < 0)
                return nnL_engine_error(L);
            nnL_keep(L, outs[d]);
            hs[at] = nnL_keep(L, hn);
            if (lstm) cs[at] = nnL_keep(L, cn);
        }
        inp = dirs == 2 ? nnL_keep(L, nn_cat(outs, 2, 2)) : outs[0];
    }
    int n = (int)c->num_layers * dirs;
    nn_tensor *out = c->batch_first ? nnL_keep(L, nn_contiguous(nnL_keep(L, nn_transpose(inp, 0, 1))))
                                    : inp;
    nnL_push(L, nn_retain(out));
    int out_at = lua_gettop(L);
    nnL_keep(L, nn_stack(hs, n, 0));
    if (lstm) {
        lua_createtable(L, 2, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        nnL_keep(L, nn_stack(cs, n, 0));
        lua_rawseti(L, -2, 2);
    }
    lua_pushvalue(L, out_at);
    lua_insert(L, -2);
    return 2;
}

static int rnn_forward(lua_State *L, nnL_layer *l) {
    return recurrent_forward(L, l, NNL_CFG(l, rnn_cfg)->nonlinearity ? NN_RNN_RELU : NN_RNN_TANH);
}
static int lstm_forward(lua_State *L, nnL_layer *l) { return recurrent_forward(L, l, NN_LSTM); }
static int gru_forward(lua_State *L, nnL_layer *l) { return recurrent_forward(L, l, NN_GRU); }

#define RNN_COMMON_FIELDS                                                                   \
    NNL_FIELD(NNL_F_INT, rnn_cfg, input_size), NNL_FIELD(NNL_F_INT, rnn_cfg, hidden_size),   \
        NNL_FIELD(NNL_F_INT, rnn_cfg, num_layers), NNL_FIELD(NNL_F_BOOL, rnn_cfg, bias),     \
        NNL_FIELD(NNL_F_BOOL, rnn_cfg, batch_first), NNL_FIELD(NNL_F_NUM, rnn_cfg, dropout), \
        NNL_FIELD(NNL_F_BOOL, rnn_cfg, bidirectional)
static const nnL_field rnn_fields[] = {
    RNN_COMMON_FIELDS, {"nonlinearity", NNL_F_CHOICE, offsetof(rnn_cfg, nonlinearity), nonlinearities},
    NNL_END_FIELDS};
static const nnL_field gated_fields[] = {RNN_COMMON_FIELDS, NNL_END_FIELDS};
static const char *const rnn_opts[] = {"num_layers", "nonlinearity", "bias", "batch_first",
                                       "dropout", "bidirectional", NULL};
static const char *const gated_opts[] = {"num_layers", "bias", "batch_first", "dropout",
                                         "bidirectional", NULL};
static const nnL_layer_class rnn_class = {"RNN", sizeof(rnn_cfg), rnn_slots, rnn_fields,
                                          rnn_opts, 3, rnn_build, rnn_forward, NULL};
static const nnL_layer_class lstm_class = {"LSTM", sizeof(rnn_cfg), rnn_slots, gated_fields,
                                           gated_opts, 3, lstm_build, lstm_forward, NULL};
static const nnL_layer_class gru_class = {"GRU", sizeof(rnn_cfg), rnn_slots, gated_fields,
                                          gated_opts, 3, gru_build, gru_forward, NULL};

void nnL_open_rnn_layers(lua_State *L) {
    static const nnL_layer_class *const classes[] = {&rnn_class, &lstm_class, &gru_class, NULL};
    nnL_register_layers(L, classes);
}
