--- A CIFAR-style ResNet (He et al. 2016, section 4.2) for small images:
--- a 3x3 stem, three stages of `blocks` basic blocks at widths w, 2w, 4w
--- (the second and third start with a stride-2 block whose shortcut is a
--- 1x1 convolution and BatchNorm), global average pooling, a linear head.
--- blocks = 3 is ResNet-20 (0.27M parameters at w = 16).
local nn = require 'nnlua'

local Block = nn.Module:extend()
Block._name = 'BasicBlock'

function Block:_init(cin, cout, stride)
  self.conv1 = nn.Conv2d(cin, cout, 3, { stride = stride, padding = 1, bias = false })
  self.bn1 = nn.BatchNorm2d(cout)
  self.conv2 = nn.Conv2d(cout, cout, 3, { padding = 1, bias = false })
  self.bn2 = nn.BatchNorm2d(cout)
  if stride ~= 1 or cin ~= cout then
    self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, { stride = stride, bias = false }),
                                  nn.BatchNorm2d(cout))
  end
end

function Block:forward(x)
  local y = self.bn1(self.conv1(x)):relu()
  y = self.bn2(self.conv2(y))
  return (y + (self.shortcut and self.shortcut(x) or x)):relu()
end

local ResNet = nn.Module:extend()
ResNet._name = 'ResNet'

--- ResNet{blocks = 3, width = 16, channels = 1, classes = 10}
function ResNet:_init(o)
  o = o or {}
  local w, blocks = o.width or 16, o.blocks or 3
  self.stem = nn.Sequential(nn.Conv2d(o.channels or 1, w, 3, { padding = 1, bias = false }),
                            nn.BatchNorm2d(w), nn.ReLU())
  local layers, cin = {}, w
  for stage, cout in ipairs({ w, 2 * w, 4 * w }) do
    for b = 1, blocks do
      layers[#layers + 1] = Block(cin, cout, (b == 1 and stage > 1) and 2 or 1)
      cin = cout
    end
  end
  self.stages = nn.Sequential(table.unpack(layers))
  self.pool = nn.AdaptiveAvgPool2d(1)
  self.head = nn.Linear(cin, o.classes or 10)
  for _, m in ipairs(self:modules()) do -- He initialisation for the convolutions
    if tostring(m):match('^Conv2d') then nn.init.kaiming_normal_(m.weight, { mode = 'fan_out' }) end
  end
end

function ResNet:forward(x)
  x = self.stages(self.stem(x))
  return self.head(self.pool(x):flatten(2))
end

return ResNet
