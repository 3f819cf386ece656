rockspec_format = "3.0"
package = "nnlua"
version = "scm-1"
source = {
   url = "git+file:///nnlua",
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
