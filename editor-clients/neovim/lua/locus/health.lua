--- :checkhealth locus: Neovim's version, the socket (and whether it can be trusted), the
--- daemon and its protocol version. The one place that waits (up to the connect timeout):
--- :checkhealth is synchronous by design.
local client = require('locus.client')
local config = require('locus.config')

local M = {}

function M.check()
  vim.health.start('locus')
  if vim.fn.has('nvim-0.10') == 1 then
    vim.health.ok('Neovim ' .. tostring(vim.version()))
  else
    vim.health.error('Neovim 0.10 or newer is needed')
  end
  if config.options.cmd then
    vim.health.info('daemon command: ' .. table.concat(config.options.cmd, ' '))
  else
    local path = client.socket_path()
    local problem = client.socket_problem(path)
    if problem then
      vim.health.error('socket ' .. path .. ': ' .. problem, { 'start the daemon: locusd serve' })
      return
    end
    vim.health.ok('socket ' .. path .. ' (directory 0700, yours)')
  end
  local done, failure = false, nil
  client.connect(function(err)
    done, failure = true, err
  end)
  vim.wait(config.options.connect_timeout_ms + 500, function()
    return done
  end, 20)
  if not done or failure then
    vim.health.error('daemon: ' .. (failure and failure.message or 'no answer'))
    return
  end
  local info = client.info()
  local locus = info.locus or {}
  vim.health.ok(('daemon %s, protocol %s (this plugin speaks %s)'):format(
    tostring(locus.daemonVersion),
    tostring(locus.protocolVersion),
    client.PROTOCOL_VERSION
  ))
end

return M
