--- nnlua.utils: helpers for training loops (nn.utils.checkpoint,
--- nn.utils.clip_grad_norm_, nn.utils.clip_grad_value_).
local optim = require 'nnlua.optim'

return {
  checkpoint = require('nnlua.autograd').checkpoint,
  clip_grad_norm_ = optim.clip_grad_norm_,
  clip_grad_value_ = optim.clip_grad_value_,
}
