--- Runs, tasks and a run's log as buffers; run handles resolved by the daemon
--- (locus/runs/resolve), so the plugin has no idea of its own of which run is meant.
local client = require('locus.client')
local text = require('locus.text')
local ui = require('locus.ui')

local M = {}

M.known = {} --- @type string[] short ids of the runs last listed (for completion)

local log_buffers = {} --- @type table<string, integer> runId -> buffer

--- The run a handle names (nil: the one awaiting review), then `callback(run)`.
--- @param handle string|nil
--- @param callback fun(run: table)
function M.resolve(handle, callback)
  local params = vim.empty_dict()
  if handle and handle ~= '' then
    params = { handle = handle }
  end
  client.call('locus/runs/resolve', params, 'which run', callback)
end

--- Resolve the handle, then send `method` for that run; `callback(run, result)` on success.
--- @param handle string|nil
--- @param method string
--- @param what string
--- @param callback fun(run: table, result: any)
function M.with_run(handle, method, what, callback)
  M.resolve(handle, function(run)
    client.call(method, { runId = run.runId }, what, function(result)
      callback(run, result)
    end)
  end)
end

--- One line for a run.
--- @param run table
--- @return string
function M.run_line(run)
  local task = run.taskId and ('#' .. run.taskId) or 'local'
  return ('%s  %-16s %-7s %s'):format(run.shortId, run.state, task, text.oneline(run.title))
end

function M.runs()
  client.call('locus/runs/list', nil, 'runs', function(result)
    M.known = {}
    local lines = { 'Locus runs (short id, state, task, title)' }
    for _, run in ipairs(result.runs) do
      M.known[#M.known + 1] = run.shortId
      lines[#lines + 1] = M.run_line(run)
    end
    ui.show('locus://runs', lines)
  end)
end

function M.tasks()
  client.request('locus/projects/resolve', { repos = { vim.fn.getcwd() } }, function(_, found)
    local params = vim.empty_dict()
    local project = found and found.projects and found.projects[1]
    if project then
      params = { projectId = project.id }
    end
    client.call('locus/tasks/list', params, 'tasks', function(result)
      local title = project and ('Locus tasks of ' .. text.oneline(project.slug)) or 'Locus tasks'
      local lines = { title .. ' (id, status, priority, title)' }
      for _, task in ipairs(result.tasks) do
        lines[#lines + 1] = ('#%d  %-12s P%-4d %s'):format(task.id, text.oneline(task.status), task.priority or 0, text.oneline(task.title))
      end
      ui.show('locus://tasks', lines)
    end)
  end)
end

--- One log line per event; multi-line texts are cut into lines, all as data.
--- @param event table
--- @return string[]
local function event_lines(event)
  local out = {}
  for i, line in ipairs(text.lines(event.text)) do
    out[#out + 1] = (i == 1 and ('%4d %-9s '):format(event.seq, event.kind) or string.rep(' ', 15)) .. line
  end
  if #out == 0 then
    out[1] = ('%4d %-9s'):format(event.seq, event.kind)
  end
  return out
end

--- A run's log: the events so far, then the live ones (the buffer subscribes to the run;
--- a subscriber is also asked the run's approvals).
--- @param handle string|nil
function M.logs(handle)
  M.with_run(handle, 'locus/runs/subscribe', 'logs', function(run, result)
    local lines = { ('Locus log of run %s: %s'):format(run.shortId, text.oneline(run.title)) }
      for _, event in ipairs(result.events) do
        vim.list_extend(lines, event_lines(event))
      end
    log_buffers[run.runId] = ui.show('locus://logs/' .. run.shortId, lines)
  end)
end

--- `locus/runs/event`: append to that run's log buffer.
--- @param event table
function M.on_event(event)
  local buf = log_buffers[event.runId]
  if buf then
    ui.append(buf, event_lines(event))
  end
end

--- @param handle string|nil
function M.cancel(handle)
  M.with_run(handle, 'locus/runs/cancel', 'cancel', function(_, after)
    vim.notify(('Locus: run %s is %s'):format(after.shortId, after.state), vim.log.levels.INFO)
  end)
end

return M
