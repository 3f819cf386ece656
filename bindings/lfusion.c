/* lfusion.c -- the fused cross-modal operators: nn.gated_fusion(h, g[, mask])
 * and nn.mfb_pool(a, b, factor). The layers around them (projections,
 * masks, modules) are in lua/nnlua/multimodal.lua. */
#include "lnnlua.h"

/* gated_fusion(h (B, M, D), g (B, M, D)[, mask (B, M)]) */
static int l_gated_fusion(lua_State *L) {
    nn_tensor *h = nnL_checktensor(L, 1), *g = nnL_checktensor(L, 2);
    nn_tensor *mask = lua_isnoneornil(L, 3) ? NULL : nnL_checktensor(L, 3);
    NNL_RETURN(nn_gated_fusion(h, g, mask));
}

/* mfb_pool(a (B, D*factor), b (B, D*factor), factor) */
static int l_mfb_pool(lua_State *L) {
    nn_tensor *a = nnL_checktensor(L, 1), *b = nnL_checktensor(L, 2);
    lua_Integer factor = luaL_checkinteger(L, 3);
    if (factor < 1) return luaL_argerror(L, 3, "factor must be positive");
    NNL_RETURN(nn_mfb_pool(a, b, (int64_t)factor));
}

void nnL_open_fusion(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"gated_fusion", l_gated_fusion}, {"mfb_pool", l_mfb_pool}, {NULL, NULL}};
    nnL_setfuncs(L, fns, 0);
}
