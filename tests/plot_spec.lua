-- Pictures size themselves to what they show (checked on the SVG text; the
-- examples' figures were also rendered to PNG and looked at).
local nn = require 'nnlua'
local support = require 'support'

local function svg_of(fn)
  local path = os.tmpname() .. '.svg'
  assert(fn(path))
  local s = support.read(path)
  os.remove(path)
  return s
end

local function size(s)
  return tonumber(s:match('<svg[^>]- width="(%d+)"')), tonumber(s:match('<svg[^>]- height="(%d+)"'))
end

describe('nn.plot', function()
  it('heatmap: wide enough for its title, rows centred, long labels vertical, a colour scale', function()
    local title = 'last layer attention, mean over 4 heads: characters 1-48 of 123 (prompt 63)'
    local rows = { 'a', 'b', 'c' }
    local s = svg_of(function(p)
      return nn.plot.heatmap(p, nn.rand(3, 3), { title = title, rows = rows, cols = { 'alpha', 'beta', 'gamma' },
                                                  xlabel = 'key', ylabel = 'query', colorbar = 'weight' })
    end)
    local w = size(s)
    assert.truthy(w >= #title * 13 * 0.5, ('%d px for a %d-character title'):format(w, #title))
    assert.truthy(s:find('rotate(-90', 1, true)) -- the column labels wider than a cell
    local _, rects = s:gsub('<rect', '')
    assert.truthy(rects > 9 + 10, 'no colour scale') -- 9 cells, the background, the scale's steps
    assert.truthy(s:find('>weight<', 1, true) and s:find('>key<', 1, true) and s:find('>query<', 1, true))
    -- row labels sit at the middle of their row (its baseline a third of the font below)
    local big = svg_of(function(p) return nn.plot.heatmap(p, nn.rand(2, 2), { rows = { 'a', 'b' }, cell = 30 }) end)
    local first_cell = tonumber(big:match('<rect x="%d+" y="(%d+)" width="30" height="30"'))
    local label_y = tonumber(big:match('<text x="%d+" y="([%d.]+)" text%-anchor="end">a<'))
    assert.truthy(label_y > first_cell + 16 and label_y < first_cell + 21, ('%s vs %s'):format(label_y, first_cell))
  end)

  it('svg: the legend stands right of the plot, clear of the curves', function()
    local s = svg_of(function(p)
      return nn.plot.svg(p, { { name = 'train_loss', y = { 3, 2, 1 } }, { name = 'test_accuracy', y = { 0.5, 0.8, 0.9 } } })
    end)
    local frame_x, frame_w = s:match('<rect x="(%d+)" y="%d+" width="(%d+)" height="%d+" fill="none"')
    local legend_x = tonumber(s:match('<text x="(%d+)" y="%d+">test_accuracy<'))
    assert.truthy(legend_x > tonumber(frame_x) + tonumber(frame_w), s:sub(1, 300))
  end)

  it('image_grid: labelled panels, captions and a scale for the coloured ones', function()
    local s = svg_of(function(p)
      return nn.plot.image_grid(p, { { images = { nn.rand(4, 4), nn.rand(4, 4) }, caption = { 'true: Bag' } } },
        { title = 'where it looks', columns = { 'image', 'saliency' }, colormaps = { 'grey', 'heat' }, scale = 'share' })
    end)
    for _, t in ipairs({ '>where it looks<', '>image<', '>saliency<', '>true: Bag<', '>share<' }) do
      assert.truthy(s:find(t, 1, true), t)
    end
    assert.has_error(function()
      nn.plot.image_grid(os.tmpname(), { { images = { nn.rand(2, 2) } } }, { colormaps = { 'rainbow' } })
    end, "plot.image_grid: unknown colormap rainbow")
  end)
end)
