--- Locus for Neovim: a thin client of the locusd daemon (docs/editors.md). Works without
--- setup(); setup{} only changes options and can be called again.
local config = require('locus.config')
local client = require('locus.client')

local M = {}

local wired = false

--- Route the daemon's requests and notifications (once).
local function wire()
  if wired then
    return
  end
  wired = true
  local approval = require('locus.approval')
  local views = require('locus.views')
  client.handle('locus/approval', approval.ask)
  client.on('locus/approval/resolved', approval.on_resolved)
  client.on('locus/runs/event', views.on_event)
end

--- @param opts table|nil see locus.config
function M.setup(opts)
  config.setup(opts)
  wire()
end

--- A subcommand: `module.name(fixed)` if `fixed` is given, else `module.name(arg)`; the
--- module loads on first use.
local function to(module, name, fixed)
  return function(arg)
    require(module)[name](fixed or arg)
  end
end

--- The subcommands of :Locus: name -> function(arg).
M.commands = {
  tasks = to('locus.views', 'tasks'),
  runs = to('locus.views', 'runs'),
  logs = to('locus.views', 'logs'),
  cancel = to('locus.views', 'cancel'),
  review = to('locus.review', 'open'),
  accept = to('locus.review', 'decide', 'accept'),
  reject = to('locus.review', 'decide', 'reject'),
  comment = to('locus.review', 'comment'),
  edit = to('locus.review', 'edit'),
  commit = to('locus.review', 'commit'),
  ['send-back'] = to('locus.review', 'send_back'),
}

--- Subcommands that take a run handle (completed with the short ids last listed).
local TAKES_RUN = { logs = true, review = true, commit = true, ['send-back'] = true, cancel = true }

--- Run `:Locus {sub} [arg]`; an unknown subcommand is an error naming the known ones.
--- @param args string[]
function M.run(args)
  wire()
  local sub = args[1]
  local fn = sub and M.commands[sub]
  if not fn then
    local names = vim.tbl_keys(M.commands)
    table.sort(names)
    vim.notify(
      ('Locus: %s; use one of: %s'):format(
        sub and ('unknown subcommand ' .. require('locus.text').oneline(sub)) or 'which subcommand?',
        table.concat(names, ', ')
      ),
      vim.log.levels.ERROR
    )
    return
  end
  fn(args[2])
end

--- Completion for :Locus.
--- @param arglead string
--- @param cmdline string
--- @return string[]
function M.complete(arglead, cmdline)
  local words = vim.split(cmdline, '%s+', { trimempty = true })
  local completing_sub = #words == 1 or (#words == 2 and arglead ~= '')
  local candidates
  if completing_sub then
    candidates = vim.tbl_keys(M.commands)
    table.sort(candidates)
  elseif TAKES_RUN[words[2]] then
    candidates = vim.list_extend({ 'latest' }, require('locus.views').known)
  else
    candidates = {}
  end
  return vim.tbl_filter(function(c)
    return vim.startswith(c, arglead)
  end, candidates)
end

wire()

return M
