--- The daemon's `locus/approval` requests, asked through vim.ui.select (whatever UI the user
--- has for it). The request handler runs in vim.lsp.rpc's coroutine: it yields until the user
--- picks, so nothing blocks. Dismissing the prompt sends nothing (the run keeps waiting for an
--- answer from another client, or a cancel); an approval another client answered first is not
--- answered again from here.
local text = require('locus.text')

local M = {}

M.CHOICES = {
  { label = 'Allow once', decision = 'allow_once' },
  { label = 'Allow always', decision = 'allow_always' },
  { label = 'Reject', decision = 'reject' },
}

local resolved = {} --- @type table<string, string> approvalId -> decision made elsewhere

--- The prompt: the command and the daemon's reason, shown as data on one line.
--- @param params table ApprovalRequest
--- @return string
function M.prompt(params)
  return ('Locus: the agent wants to run `%s` (%s). Allow?'):format(
    text.oneline(params.command),
    text.oneline(params.reason)
  )
end

--- Answer one `locus/approval` request (called inside vim.lsp.rpc's request coroutine).
--- @param params table ApprovalRequest
--- @return table|nil result, table|nil err
function M.ask(params)
  local co = coroutine.running()
  local labels = vim.tbl_map(function(choice)
    return choice.label
  end, M.CHOICES)
  vim.ui.select(labels, { prompt = M.prompt(params), kind = 'locus.approval' }, function(_, index)
    if index == nil then
      vim.notify(
        'Locus: approval left unanswered: the run waits (another client can answer; `:Locus cancel` stops it)',
        vim.log.levels.WARN
      )
      return -- dismissed: nothing is sent
    end
    vim.schedule(function()
      coroutine.resume(co, index)
    end)
  end)
  local index = coroutine.yield()
  local elsewhere = resolved[params.approvalId]
  resolved[params.approvalId] = nil
  if elsewhere then
    return nil, vim.lsp.rpc.rpc_response_error(vim.lsp.protocol.ErrorCodes.RequestCancelled, 'answered by another client')
  end
  return { decision = M.CHOICES[index].decision }, nil
end

--- `locus/approval/resolved`: another client answered (or the run was cancelled).
--- @param params table
function M.on_resolved(params)
  resolved[params.approvalId] = params.decision
  vim.notify(
    ('Locus: approval %s was answered elsewhere (%s)'):format(text.oneline(params.approvalId), text.oneline(params.decision)),
    vim.log.levels.INFO
  )
end

return M
