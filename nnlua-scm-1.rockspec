rockspec_format = "3.0"
package = "nnlua"
version = "scm-1"
-- Built from a checkout of this repository with
--   luarocks --lua-version 5.4 make nnlua-scm-1.rockspec
-- (Debian's luarocks defaults to Lua 5.1). nnlua is not published on a
-- rocks server, so `luarocks install nnlua` has nothing to fetch, and
-- `luarocks build` cannot unpack the checkout: `make` ignores this source.
source = {
   url = "file://.",
}
description = {
   summary = "A neural-network engine in C, scripted in Lua 5.4",
   detailed = [[
      Tensors with reverse-mode autograd, fused layers (attention,
      convolution, normalisation), optimizers, Transformers, checkpoints
      in safetensors, data loading and tokenizers, with the heavy work in
      C and OpenBLAS. `require "nnlua"` gives the library.
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
build = {
   type = "make",
   build_variables = {
      CC = "$(CC)",
   },
   install_variables = {
      PREFIX = "$(PREFIX)",
      LUA_LIBDIR = "$(LIBDIR)",
      LUA_SHAREDIR = "$(LUADIR)",
   },
   install_target = "install-rock",
}
