-- What the specs share: waiting (test code may wait; the plugin never does), a request with
-- its answer, notifications and prompts recorded.
local client = require('locus.client')

local M = {}

M.WAIT = 30000

--- Wait for `condition` or fail naming `what`.
function M.wait_for(what, condition, ms)
  if not vim.wait(ms or M.WAIT, condition, 10) then
    error('timed out waiting for ' .. what, 2)
  end
end

--- A request and its answer (err, result).
function M.call(method, params)
  local done, err, result = false, nil, nil
  client.request(method, params, function(e, r)
    done, err, result = true, e, r
  end)
  M.wait_for('an answer to ' .. method, function()
    return done
  end)
  return err, result
end

--- The result of a request that must succeed.
function M.ok(method, params)
  local err, result = M.call(method, params)
  assert(err == nil, method .. ': ' .. vim.inspect(err))
  return result
end

--- Record vim.notify calls (and still say nothing).
function M.record_notifications()
  local seen = {}
  vim.notify = function(message, level)
    seen[#seen + 1] = { message = message, level = level }
  end
  return seen
end

--- Run an Ex command and wait for the notification it ends with; what was notified.
function M.notified_by(command)
  local seen = M.record_notifications()
  vim.cmd(command)
  M.wait_for('a notification from ' .. command, function()
    return #seen > 0
  end)
  return seen
end

--- Assert equality with a message that shows both.
function M.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(('%s: expected %s, got %s'):format(what or 'value', vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

--- The hunk marks (locus.marks) in `buf`: {row, group} per added line, and per removed block
--- its row, whether it is shown above that row, and its virtual lines' text.
function M.marks(buf)
  local added, removed = {}, {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(buf, require('locus.marks').ns, 0, -1, { details = true })) do
    local row, details = mark[2], mark[4]
    if details.line_hl_group then
      added[#added + 1] = { row, details.line_hl_group }
    else
      local lines = vim.tbl_map(function(line)
        return line[1][1]
      end, details.virt_lines)
      removed[#removed + 1] = { row = row, above = details.virt_lines_above, lines = lines }
    end
  end
  return added, removed
end

--- Press keys as a user does (mappings apply) and let the loop run.
function M.press(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mx', false)
end

return M
