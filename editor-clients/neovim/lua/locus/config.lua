--- The plugin's options: defaults that work without setup(), and setup{} merging (idempotent).
local M = {}

--- @class locus.Options
--- @field socket string|nil the daemon's socket (default: as locusd finds it)
--- @field cmd string[]|nil a command speaking the protocol on stdio (e.g. {'locusd', '--stdio'}); used instead of the socket
--- @field connect_timeout_ms integer how long connect + handshake may take before it is an error
--- @field review_keys boolean buffer-local keys in review buffers (a r c d ]h [h q)
--- @field marks_in_files boolean while a review is open, mark its hunks in your buffers of the run's worktree files
local defaults = {
  socket = nil,
  cmd = nil,
  connect_timeout_ms = 2500,
  review_keys = true,
  marks_in_files = true,
}

--- @type locus.Options
M.options = vim.deepcopy(defaults)

--- Set options; calling it again with the same table changes nothing (idempotent).
--- @param opts table|nil
function M.setup(opts)
  vim.validate('opts', opts, 'table', true)
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  for key in pairs(merged) do
    if defaults[key] == nil and key ~= 'socket' and key ~= 'cmd' then
      error(('locus.setup: unknown option %q (known: socket, cmd, connect_timeout_ms, review_keys, marks_in_files)'):format(key), 0)
    end
  end
  if merged.cmd ~= nil and type(merged.cmd) ~= 'table' then
    error("locus.setup: option 'cmd' must be a list of strings, e.g. {'locusd', '--stdio'}", 0)
  end
  local ms = merged.connect_timeout_ms
  if type(ms) ~= 'number' or ms <= 0 or ms ~= math.floor(ms) then
    error(('locus.setup: option \'connect_timeout_ms\' must be a whole number of milliseconds above 0 (default 2500), not %s'):format(vim.inspect(ms)), 0)
  end
  if type(merged.marks_in_files) ~= 'boolean' then
    error(("locus.setup: option 'marks_in_files' must be true or false (default true), not %s"):format(vim.inspect(merged.marks_in_files)), 0)
  end
  if merged.socket ~= nil and type(merged.socket) ~= 'string' then
    error("locus.setup: option 'socket' must be a path (string)", 0)
  end
  M.options = merged
end

return M
