--- Agent text (file names, diff lines, titles, questions) made safe to show: one line, control
--- characters written out, and `%` doubled where Vim would read it as a statusline item.
local M = {}

--- A single line: control characters (newline, escape, CR…) become \xNN.
--- @param value any
--- @return string
function M.oneline(value)
  local s = tostring(value == nil and '' or value)
  return (s:gsub('[%z\1-\31\127]', function(c)
    return ('\\x%02x'):format(c:byte())
  end))
end

--- A diff or code line for a buffer: tabs stay, other control characters are written out.
--- @param value string
--- @return string
function M.codeline(value)
  return (value:gsub('[%z\1-\8\10-\31\127]', function(c)
    return ('\\x%02x'):format(c:byte())
  end))
end

--- Text that goes into a statusline or a 'quickfixtextfunc'-style format: `%` doubled.
--- @param value any
--- @return string
function M.statusline(value)
  return (M.oneline(value):gsub('%%', '%%%%'))
end

--- Lines of a multi-line text (a summary, file content), each made a code line.
--- @param value string|nil
--- @return string[]
function M.lines(value)
  local out = {}
  for line in ((value or '') .. '\n'):gmatch('(.-)\r?\n') do
    out[#out + 1] = M.codeline(line)
  end
  if value ~= nil and value:sub(-1) == '\n' then
    out[#out] = nil
  end
  return out
end

return M
