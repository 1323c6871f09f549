-- A tiny test runner inside Neovim: `nvim --headless --clean -l tests/runner.lua SPEC.lua`.
-- SPEC calls it(name, fn); each case runs in order (they may build on each other); prints
-- "ok"/"FAIL" per case and one "N passed, N failed" line; exits 1 on a failure.
local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h')
local root = vim.fn.fnamemodify(here, ':h')
vim.opt.rtp:prepend(root)
package.path = here .. '/?.lua;' .. package.path
vim.cmd.runtime('plugin/locus.lua')

local cases = {}
_G.it = function(name, fn)
  cases[#cases + 1] = { name = name, fn = fn }
end
dofile(assert(arg[1], 'usage: nvim -l runner.lua SPEC.lua'))

local passed, failed = 0, 0
for _, case in ipairs(cases) do
  local ok, err = xpcall(case.fn, debug.traceback)
  if ok then
    passed = passed + 1
    io.stdout:write('ok   ' .. case.name .. '\n')
  else
    failed = failed + 1
    io.stdout:write('FAIL ' .. case.name .. '\n' .. tostring(err) .. '\n')
  end
end
io.stdout:write(('%d passed, %d failed\n'):format(passed, failed))
io.stdout:flush()
os.exit(failed == 0 and 0 or 1)
