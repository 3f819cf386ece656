/* lmedia.c -- images and sound: the PNG and audio readers, stft, resample
 * and mel filter banks (engine/io/image.c, audio.c; engine/nn/stft.c,
 * resample.c, mel.c). nn.image and nn.audio (lua/nnlua/) build on these. */
#include "llayer.h"

#include <string.h>

/* _read_png(path[, r, g, b]) -> (C, H, W) image, bit depth; with a
 * background colour: (3, H, W), alpha composited over it */
static int l_read_png(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int rgb = !lua_isnoneornil(L, 2);
    float bg[3] = {0, 0, 0};
    for (int k = 0; rgb && k < 3; k++) bg[k] = (float)luaL_checknumber(L, 2 + k);
    int depth = 0;
    nn_tensor **slot = nnL_newslot(L);
    *slot = rgb ? nn_image_read_png_rgb(path, bg, &depth) : nn_image_read_png(path, &depth);
    nnL_finish(L, slot);
    lua_pushinteger(L, depth);
    return 2;
}

/* _write_png(path, image) */
static int l_write_png(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nn_tensor *img = nnL_checktensor(L, 2);
    if (nn_image_write_png(path, img) < 0) return nnL_engine_error(L);
    return 0;
}

/* _read_audio(path) -> (channels, samples) signal, sample rate */
static int l_read_audio(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int64_t rate = 0;
    nn_tensor **slot = nnL_newslot(L);
    *slot = nn_audio_read(path, &rate);
    nnL_finish(L, slot);
    lua_pushinteger(L, (lua_Integer)rate);
    return 2;
}

static lua_Integer int_field(lua_State *L, int t, const char *k, lua_Integer def, lua_Integer lo,
                             lua_Integer hi) {
    lua_Integer v = def;
    if (lua_getfield(L, t, k) != LUA_TNIL) {
        int isint;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < lo || v > hi)
            luaL_argerror(L, t, lua_pushfstring(L, "%s must be an integer in %I..%I", k, lo, hi));
    }
    lua_pop(L, 1);
    return v;
}

/* field k of the options table at t, one of list (def when absent) */
static int choice_field(lua_State *L, int t, const char *k, int def, const char *const *list) {
    int v = def;
    if (lua_getfield(L, t, k) != LUA_TNIL) {
        const char *name = lua_tostring(L, -1);
        for (v = 0; list[v] && !(name && lua_type(L, -1) == LUA_TSTRING && !strcmp(list[v], name)); v++) {}
        if (!list[v]) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int i = 0; list[i]; i++) {
                if (i) luaL_addstring(&b, ", ");
                luaL_addstring(&b, list[i]);
            }
            luaL_pushresult(&b);
            const char *accepted = lua_tostring(L, -1);
            const char *got = luaL_tolstring(L, -2, NULL);
            luaL_argerror(L, t, lua_pushfstring(L, "%s must be one of %s, got %s", k, accepted, got));
        }
    }
    lua_pop(L, 1);
    return v;
}

static const char *const stft_opts[] = {"n_fft", "hop_length", "win_length", "window", "center",
                                        "pad_mode", "normalized", NULL};

/* stft(x, {n_fft =, hop_length = n_fft // 4, win_length = n_fft, window =,
 * center = true, pad_mode = 'reflect', normalized = false}) as torch.stft
 * with return_complex = false */
static int l_stft(lua_State *L) {
    static const char *const modes[] = {"constant", "reflect", "replicate", "circular", NULL};
    nn_tensor *x = nnL_checktensor(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    nnL_checkoptions(L, 2, "stft", stft_opts);
    if (lua_getfield(L, 2, "n_fft") == LUA_TNIL) return luaL_argerror(L, 2, "n_fft is required");
    lua_pop(L, 1);
    lua_Integer n_fft = int_field(L, 2, "n_fft", 0, 1, 1 << 24);
    lua_Integer hop = int_field(L, 2, "hop_length", n_fft / 4 > 0 ? n_fft / 4 : 1, 1, (lua_Integer)1 << 40);
    lua_Integer win = int_field(L, 2, "win_length", n_fft, 1, n_fft);
    lua_getfield(L, 2, "window"); /* stays on the stack while the call runs */
    nn_tensor *window = nnL_opttensor(L, -1);
    if (!window && !lua_isnil(L, -1)) return luaL_argerror(L, 2, "window must be a tensor");
    char s[96];
    if (window && (window->ndim != 1 || window->shape[0] != win))
        return luaL_argerror(L, 2, lua_pushfstring(L, "window %s must have win_length %I points",
                                                   nn_shape_str(window, s, sizeof s), win));
    int mode = choice_field(L, 2, "pad_mode", NN_PAD_REFLECT, modes);
    int center = nnL_optboolfield(L, 2, "center", 1), normalized = nnL_optboolfield(L, 2, "normalized", 0);
    nn_tensor *ones = NULL;
    if (!window && win < n_fft) { /* torch: a win_length window of ones centred in n_fft */
        ones = nnL_keep(L, nn_full(1, (int64_t[]){win}, 1.0));
        window = ones;
    }
    NNL_RETURN(nn_stft(x, n_fft, hop, window, center, (nn_pad_mode)mode, normalized));
}

static const char *const resample_opts[] = {"lowpass_filter_width", "rolloff", NULL};

/* resample(x, orig_freq, new_freq[, {lowpass_filter_width = 6, rolloff = 0.99}]) */
static int l_resample(lua_State *L) {
    nn_tensor *x = nnL_checktensor(L, 1);
    lua_Integer orig = luaL_checkinteger(L, 2), new_ = luaL_checkinteger(L, 3);
    nnL_checkoptions(L, 4, "resample", resample_opts);
    lua_Integer width = lua_istable(L, 4) ? int_field(L, 4, "lowpass_filter_width", 6, 1, 1024) : 6;
    double rolloff = nnL_optnumfield(L, 4, "rolloff", 0.99);
    NNL_RETURN(nn_resample(x, orig, new_, (int)width, rolloff));
}

static const char *const mel_opts[] = {"norm", "mel_scale", NULL};

/* mel_filterbank(n_freqs, f_min, f_max, n_mels, sample_rate[, {norm =
 * 'slaney' | nil, mel_scale = 'htk' | 'slaney'}]) -> (n_freqs, n_mels) */
static int l_mel_filterbank(lua_State *L) {
    static const char *const norms[] = {"none", "slaney", NULL};
    static const char *const scales[] = {"htk", "slaney", NULL};
    lua_Integer n_freqs = luaL_checkinteger(L, 1);
    double f_min = luaL_checknumber(L, 2), f_max = luaL_checknumber(L, 3);
    lua_Integer n_mels = luaL_checkinteger(L, 4), rate = luaL_checkinteger(L, 5);
    nnL_checkoptions(L, 6, "mel_filterbank", mel_opts);
    int norm = 0, scale = 0;
    if (lua_istable(L, 6)) {
        norm = choice_field(L, 6, "norm", 0, norms);
        scale = choice_field(L, 6, "mel_scale", 0, scales);
    }
    NNL_RETURN(nn_mel_filterbank(n_freqs, f_min, f_max, n_mels, rate, norm == 1, scale == 0));
}

void nnL_open_media(lua_State *L) {
    static const luaL_Reg fns[] = {{"_read_png", l_read_png}, {"_write_png", l_write_png}, {"_read_audio", l_read_audio},
                                   {"stft", l_stft}, {"resample", l_resample},
                                   {"mel_filterbank", l_mel_filterbank}, {NULL, NULL}};
    static const nnL_options options[] = {{"stft", stft_opts}, {"resample", resample_opts},
                                          {"mel_filterbank", mel_opts}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
    nnL_define_options(L, options);
}
