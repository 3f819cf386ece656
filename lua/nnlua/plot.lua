--- nnlua.plot: line charts as SVG files a browser opens, for loss and
--- metric curves.
---
---   nn.plot.svg('loss.svg', { { name = 'train', x = steps, y = train },
---                             { name = 'val', x = steps2, y = val } },
---               { title = 'GPT on fortunes', xlabel = 'step', ylabel = 'loss' })
---   nn.plot.from_log('metrics.jsonl', 'loss.svg', { 'train_loss', 'val_loss' })
local nn = require 'nnlua'
local files = require 'nnlua.files'

local M = {}

local COLORS = { '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b' }

local function nice_ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs({ 1, 2, 2.5, 5, 10 }) do
    if m * mag >= raw then step = m * mag; break end
  end
  local ticks, t = {}, math.ceil(lo / step) * step
  while t <= hi + 1e-9 * step do ticks[#ticks + 1] = t; t = t + step end
  return ticks
end

local function esc(s)
  return (tostring(s):gsub('&', '&amp;'):gsub('<', '&lt;'):gsub('>', '&gt;'))
end

local function header(out, w, h, font_size)
  out[#out + 1] = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
    .. 'viewBox="0 0 %d %d" font-family="sans-serif" font-size="%d">'):format(w, h, w, h, font_size or 11)
  out[#out + 1] = '<rect width="100%" height="100%" fill="white"/>'
end

local function finish(path, out)
  out[#out + 1] = '</svg>'
  return files.write_atomic(path, table.concat(out, '\n') .. '\n')
end

-- an estimate of a label's width in pixels (sans-serif, average glyph)
local function text_width(t, font_size)
  local s = tostring(t)
  return (utf8.len(s) or #s) * font_size * 0.62
end

local function widest(labels, font_size)
  local w = 0
  for _, l in ipairs(labels or {}) do w = math.max(w, text_width(l, font_size)) end
  return w
end

local OPTIONS_PLOT_SVG = nn.define_options('plot.svg', { 'width', 'height', 'title', 'xlabel', 'ylabel', 'logy' })
--- svg(path, series, opts): series = list of {name =, x = {...}, y = {...}};
--- opts: title, xlabel, ylabel, width (640), height (400), logy.
--- Returns true, or nil and a message.
function M.svg(path, series, o)
  o = OPTIONS_PLOT_SVG(o)
  local w, h = o.width or 640, o.height or 400
  local names = {}
  for k, s in ipairs(series) do names[k] = s.name or ('series ' .. k) end
  -- the legend sits right of the plot, never over the curves
  local ml, mr, mt, mb = 64, 36 + math.ceil(widest(names, 12)), 36, 48
  w = w + mr - 20
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  local function ty(v) return o.logy and math.log(v, 10) or v end
  for _, s in ipairs(series) do
    for i = 1, #s.y do
      local x, y = s.x and s.x[i] or i, s.y[i]
      if y == y and y ~= math.huge and y ~= -math.huge and (not o.logy or y > 0) then
        xmin, xmax = math.min(xmin, x), math.max(xmax, x)
        ymin, ymax = math.min(ymin, ty(y)), math.max(ymax, ty(y))
      end
    end
  end
  if xmin > xmax then return nil, 'plot: no finite points' end
  if ymax == ymin then ymin, ymax = ymin - 1, ymax + 1 end
  if xmax == xmin then xmax = xmin + 1 end
  local pad = (ymax - ymin) * 0.05
  ymin, ymax = ymin - pad, ymax + pad
  local function px(x) return ml + (x - xmin) / (xmax - xmin) * (w - ml - mr) end
  local function py(y) return h - mb - (y - ymin) / (ymax - ymin) * (h - mt - mb) end
  local out = {}
  local function add(s, ...) out[#out + 1] = s:format(...) end
  header(out, w, h, 12)
  for _, t in ipairs(nice_ticks(ymin, ymax, 6)) do
    local y = py(t)
    add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>', ml, y, w - mr, y)
    add('<text x="%.1f" y="%.1f" text-anchor="end">%s</text>', ml - 6, y + 4,
      esc(('%.4g'):format(o.logy and 10 ^ t or t)))
  end
  for _, t in ipairs(nice_ticks(xmin, xmax, 6)) do
    local x = px(t)
    add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>', x, mt, x, h - mb)
    add('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>', x, h - mb + 16, esc(('%.6g'):format(t)))
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>', ml, mt, w - ml - mr, h - mt - mb)
  for k, s in ipairs(series) do
    local pts = {}
    for i = 1, #s.y do
      local x, y = s.x and s.x[i] or i, s.y[i]
      if y == y and y ~= math.huge and y ~= -math.huge and (not o.logy or y > 0) then
        pts[#pts + 1] = ('%.1f,%.1f'):format(px(x), py(ty(y)))
      end
    end
    local color = COLORS[(k - 1) % #COLORS + 1]
    add('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>', color, table.concat(pts, ' '))
    add('<rect x="%d" y="%d" width="12" height="3" fill="%s"/>', w - mr + 8, mt + 10 + 16 * (k - 1), color)
    add('<text x="%d" y="%d">%s</text>', w - mr + 24, mt + 15 + 16 * (k - 1), esc(names[k]))
  end
  if o.title then add('<text x="%d" y="22" text-anchor="middle" font-size="14">%s</text>', w // 2, esc(o.title)) end
  if o.xlabel then add('<text x="%d" y="%d" text-anchor="middle">%s</text>', (ml + w - mr) // 2, h - 10, esc(o.xlabel)) end
  if o.ylabel then
    add('<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>',
      (mt + h - mb) // 2, (mt + h - mb) // 2, esc(o.ylabel))
  end
  return finish(path, out)
end

-- white -> dark blue, for v in [0, 1]
local function shade(v)
  v = math.max(0, math.min(1, v))
  return ('rgb(%d,%d,%d)'):format(math.floor(255 - 247 * v), math.floor(255 - 207 * v),
    math.floor(255 - 148 * v))
end

local function ylabel_text(out, x, y, text)
  out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle" transform="rotate(-90 %d %d)">%s</text>')
    :format(x, y, x, y, esc(text))
end

-- a vertical colour scale at (x, y), h high, from lo (bottom) to hi (top)
local function colorbar(out, x, y, h, lo, hi, label, colour)
  local steps = 32
  colour = colour or shade
  for k = 0, steps - 1 do
    out[#out + 1] = ('<rect x="%d" y="%.1f" width="12" height="%.2f" fill="%s"/>'):format(
      x, y + h - (k + 1) * h / steps, h / steps + 0.5, colour((k + 0.5) / steps))
  end
  out[#out + 1] = ('<rect x="%d" y="%d" width="12" height="%d" fill="none" stroke="#444"/>'):format(x, y, h)
  for _, t in ipairs(nice_ticks(lo, hi, 4)) do
    local ty = y + h - (t - lo) / (hi - lo) * h
    out[#out + 1] = ('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#444"/>'):format(x + 12, ty, x + 15, ty)
    out[#out + 1] = ('<text x="%d" y="%.1f">%s</text>'):format(x + 17, ty + 4, esc(('%.3g'):format(t)))
  end
  if label then ylabel_text(out, x + 62, y + h // 2, label) end
end

local OPTIONS_PLOT_HEATMAP = nn.define_options('plot.heatmap',
  { 'cell', 'rows', 'cols', 'title', 'xlabel', 'ylabel', 'colorbar' })
--- heatmap(path, m (R, C) tensor[, {rows =, cols = (labels), title =,
--- xlabel =, ylabel =, colorbar = label or false, cell = 14}]): attention
--- maps and other matrices, darker = larger, with a colour scale. The
--- picture sizes itself to its labels and title; column labels turn
--- vertical when they are wider than a cell.
function M.heatmap(path, m, o)
  o = OPTIONS_PLOT_HEATMAP(o)
  local r, c = m:size(1), m:size(2)
  local cell, fs = o.cell or 14, 11
  local vertical = widest(o.cols, fs) > cell
  local row_w = widest(o.rows, fs)
  local col_h = vertical and widest(o.cols, fs) or (o.cols and fs + 2 or 0)
  local ml = math.ceil(row_w) + 8 + (o.ylabel and 22 or 0) + 6
  local mt = (o.title and 30 or 8) + math.ceil(col_h) + 6
  local bar = o.colorbar ~= false
  local mr = bar and (o.colorbar and 84 or 64) or 12
  local mb = o.xlabel and 32 or 12
  local w = ml + c * cell + mr
  local title_w = o.title and text_width(o.title, 13) + 20 or 0
  if title_w > w then ml, w = ml + math.ceil((title_w - w) / 2), math.ceil(title_w) + 1 end
  local h = mt + r * cell + mb
  local v = m:totable()
  local lo, hi = math.huge, -math.huge
  for i = 1, r do for j = 1, c do lo, hi = math.min(lo, v[i][j]), math.max(hi, v[i][j]) end end
  if hi <= lo then hi = lo + 1 end
  local out = {}
  header(out, w, h, fs)
  if o.title then out[#out + 1] = ('<text x="%d" y="20" text-anchor="middle" font-size="13">%s</text>'):format(w // 2, esc(o.title)) end
  for i = 1, r do
    for j = 1, c do
      out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>'):format(
        ml + (j - 1) * cell, mt + (i - 1) * cell, cell, cell, shade((v[i][j] - lo) / (hi - lo)))
    end
    if o.rows then -- centred on the row
      out[#out + 1] = ('<text x="%d" y="%.1f" text-anchor="end">%s</text>'):format(ml - 4,
        mt + (i - 0.5) * cell + fs * 0.35, esc(o.rows[i] or ''))
    end
  end
  if o.cols then
    for j = 1, c do
      local x = ml + (j - 0.5) * cell
      if vertical then
        out[#out + 1] = ('<text x="%.1f" y="%d" text-anchor="start" transform="rotate(-90 %.1f %d)">%s</text>')
          :format(x + fs * 0.35, mt - 4, x + fs * 0.35, mt - 4, esc(o.cols[j] or ''))
      else
        out[#out + 1] = ('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'):format(x, mt - 4, esc(o.cols[j] or ''))
      end
    end
  end
  if o.xlabel then
    out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle">%s</text>'):format(
      ml + c * cell // 2, mt + r * cell + 22, esc(o.xlabel))
  end
  if o.ylabel then ylabel_text(out, ml - math.ceil(row_w) - 18, mt + r * cell // 2, o.ylabel) end
  if bar then
    colorbar(out, ml + c * cell + 10, mt, math.min(r * cell, math.max(120, r * cell // 2)), lo, hi,
      type(o.colorbar) == 'string' and o.colorbar or nil)
  end
  return finish(path, out)
end

local OPTIONS_PLOT_SCATTER = nn.define_options('plot.scatter', { 'width', 'height', 'title', 'labels', 'xlabel', 'ylabel' })
--- scatter(path, xy (N, 2) tensor[, {labels =, title =, xlabel =,
--- ylabel =}]): labelled points, e.g. embeddings projected to 2-D (see pca2)
function M.scatter(path, xy, o)
  o = OPTIONS_PLOT_SCATTER(o)
  local w, h, m = o.width or 640, o.height or 480, 40
  if o.title then w = math.max(w, math.ceil(text_width(o.title, 13)) + 20) end
  local p = xy:totable()
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, q in ipairs(p) do
    xmin, xmax = math.min(xmin, q[1]), math.max(xmax, q[1])
    ymin, ymax = math.min(ymin, q[2]), math.max(ymax, q[2])
  end
  if xmax <= xmin then xmax = xmin + 1 end
  if ymax <= ymin then ymax = ymin + 1 end
  local out = {}
  header(out, w, h)
  if o.title then out[#out + 1] = ('<text x="%d" y="20" text-anchor="middle" font-size="13">%s</text>'):format(w // 2, esc(o.title)) end
  out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>'):format(m - 8, m - 8, w - 2 * m + 16, h - 2 * m + 16)
  if o.xlabel then out[#out + 1] = ('<text x="%d" y="%d" text-anchor="middle">%s</text>'):format(w // 2, h - 12, esc(o.xlabel)) end
  if o.ylabel then ylabel_text(out, 16, h // 2, o.ylabel) end
  for i, q in ipairs(p) do
    local x = m + (q[1] - xmin) / (xmax - xmin) * (w - 2 * m)
    local y = h - m - (q[2] - ymin) / (ymax - ymin) * (h - 2 * m)
    out[#out + 1] = ('<circle cx="%.1f" cy="%.1f" r="2.5" fill="#1f77b4"/>'):format(x, y)
    if o.labels and o.labels[i] then
      out[#out + 1] = ('<text x="%.1f" y="%.1f">%s</text>'):format(x + 4, y - 3, esc(o.labels[i]))
    end
  end
  return finish(path, out)
end

local COLORMAPS = {
  grey = function(s) local g = math.floor(255 * (1 - s)) return ('rgb(%d,%d,%d)'):format(g, g, g) end,
  heat = function(s) -- white -> orange -> dark red
    return ('rgb(%d,%d,%d)'):format(math.floor(255 - 100 * s), math.floor(255 - 230 * s), math.floor(255 - 250 * s))
  end,
  blue = shade,
}

local OPTIONS_PLOT_IMAGE_GRID = nn.define_options('plot.image_grid',
  { 'title', 'subtitle', 'columns', 'colormaps', 'cell', 'scale' })
--- image_grid(path, rows[, {title =, subtitle =, columns = {names},
--- colormaps = {'grey' | 'heat' | 'blue', ...}, cell = 4, scale = label}]):
--- pictures side by side, one row per example. rows[i] = {images = {(H, W)
--- tensors with values in [0, 1]}, caption = {lines}}; columns name the
--- panels above the first row; a colour scale (0 to 1, titled `scale`) is
--- drawn for every colormap other than grey.
function M.image_grid(path, rows, o)
  o = OPTIONS_PLOT_IMAGE_GRID(o)
  local cell, gap, left = o.cell or 4, 24, 10
  local top = (o.title and 26 or 6) + (o.subtitle and 18 or 0) + (o.columns and 20 or 0)
  local first = rows[1] and rows[1].images or {}
  local ph, pw = first[1] and first[1]:size(1) * cell or 0, first[1] and first[1]:size(2) * cell or 0
  local maps = o.colormaps or {}
  local caption_w = 0
  for _, r in ipairs(rows) do caption_w = math.max(caption_w, widest(r.caption, 13)) end
  local bars = 0
  for k = 1, #first do if (maps[k] or 'grey') ~= 'grey' then bars = 1 end end
  local x_caption = left + #first * (pw + gap)
  local width = math.max(x_caption + math.ceil(caption_w) + 10 + bars * 80,
    o.title and math.ceil(text_width(o.title, 15)) + 20 or 0,
    o.subtitle and math.ceil(text_width(o.subtitle, 11)) + 20 or 0)
  local height = top + #rows * (ph + gap)
  local out = {}
  header(out, width, height, 13)
  local y = 0
  if o.title then y = y + 20; out[#out + 1] = ('<text x="%d" y="%d" font-size="15">%s</text>'):format(left, y, esc(o.title)) end
  if o.subtitle then y = y + 18; out[#out + 1] = ('<text x="%d" y="%d" font-size="11">%s</text>'):format(left, y, esc(o.subtitle)) end
  for k, name in ipairs(o.columns or {}) do
    out[#out + 1] = ('<text x="%d" y="%d">%s</text>'):format(left + (k - 1) * (pw + gap), top - 8, esc(name))
  end
  for i, r in ipairs(rows) do
    local y0 = top + (i - 1) * (ph + gap)
    for k, img in ipairs(r.images) do
      local colour = COLORMAPS[maps[k] or 'grey'] or error('plot.image_grid: unknown colormap ' .. tostring(maps[k]), 2)
      local v, x0 = img:totable(), left + (k - 1) * (pw + gap)
      for a = 1, #v do
        for b = 1, #v[a] do
          out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>'):format(
            x0 + (b - 1) * cell, y0 + (a - 1) * cell, cell, cell, colour(math.max(0, math.min(1, v[a][b]))))
        end
      end
    end
    for l, line in ipairs(r.caption or {}) do
      out[#out + 1] = ('<text x="%d" y="%d">%s</text>'):format(x_caption, y0 + 20 * l + 10, esc(line))
    end
  end
  if bars > 0 then -- one scale for the coloured panels, beside the first row
    local name
    for k = 1, #first do if (maps[k] or 'grey') ~= 'grey' then name = maps[k] break end end
    colorbar(out, width - 80, top, math.max(ph, 80), 0, 1, o.scale, COLORMAPS[name])
  end
  return finish(path, out)
end

--- pca2(x (N, D)) -> (N, 2): the rows projected on their two main
--- directions (power iteration on the covariance, in the engine)
function M.pca2(x)
  local nn_ = require 'nnlua'
  local c = x - x:mean(1, true)
  local cov = c:t():matmul(c)
  local dirs = {}
  for k = 1, 2 do
    local v = nn_.randn(cov:size(1), 1)
    for _ = 1, 100 do
      for _, d in ipairs(dirs) do v = v - d * (d:t():matmul(v)) end -- deflate
      v = cov:matmul(v)
      v = v / v:norm():item()
    end
    dirs[k] = v
  end
  return c:matmul(nn_.cat(dirs, 2))
end

local OPTIONS_PLOT_FROM_LOG = nn.define_options('plot.from_log', { 'width', 'height', 'title', 'xlabel', 'ylabel', 'logy' })
--- from_log(jsonl_path, svg_path, keys[, opts]): plots numeric fields of a
--- metrics log (nn.progress.log) against its `step` field.
function M.from_log(log_path, svg_path, keys, o)
  o = OPTIONS_PLOT_FROM_LOG(o)
  local f, err = io.open(log_path)
  if not f then return nil, err end
  local series = {}
  for i, k in ipairs(keys) do series[i] = { name = k, x = {}, y = {} } end
  for line in f:lines() do
    local step = tonumber(line:match('"step":([-%d.eE+]+)'))
    for _, s in ipairs(series) do
      local v = tonumber(line:match('"' .. s.name .. '":([-%d.eE+]+)'))
      if v and step then
        s.x[#s.x + 1] = step
        s.y[#s.y + 1] = v
      end
    end
  end
  f:close()
  o = o or {}
  o.xlabel = o.xlabel or 'step'
  return M.svg(svg_path, series, o)
end

return M
