--- Scratch buffers that show the daemon's data (runs, tasks, logs) as text, never as commands.
local M = {}

--- The buffer named `name` (created once, reused), filled with `lines`, shown in a split.
--- @param name string a fixed name (never agent text)
--- @param lines string[]
--- @return integer buf
function M.show(name, lines)
  local buf = vim.fn.bufnr(name)
  if buf == -1 then
    buf = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].bufhidden = 'hide'
    vim.bo[buf].swapfile = false
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  if vim.fn.bufwinid(buf) == -1 then
    vim.cmd.split()
    vim.api.nvim_win_set_buf(0, buf)
  end
  return buf
end

--- Append lines to a buffer made by show().
--- @param buf integer
--- @param lines string[]
function M.append(buf, lines)
  if not vim.api.nvim_buf_is_valid(buf) then
    return
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, -1, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
end

return M
