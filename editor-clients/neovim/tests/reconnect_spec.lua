-- The daemon restarts under a connected Neovim (tests/editors/test_neovim.py starts it; this
-- spec stops it with locus/daemon/shutdown and starts another `locusd serve`): one
-- notification, quiet reconnect attempts with growing delays while it is down, connected to the
-- new daemon once it is up, and commands work again without the user doing anything.
local h = require('helpers')
local client = require('locus.client')

local LOCUSD = assert(os.getenv('LOCUS_TEST_LOCUSD'))
local first_pid
local notes
local exited = false

it('connected to the first daemon', function()
  first_pid = h.ok('locus/daemon/status').pid
  assert(client.connected())
  h.eq(nil, client.reconnecting(), 'no reconnect while connected')
end)

it('the daemon stops: one notification, then quiet attempts with backoff', function()
  notes = h.record_notifications()
  client.request('locus/daemon/shutdown', nil, function() end)
  h.wait_for('the lost connection', function()
    return #notes > 0
  end)
  h.eq(vim.log.levels.WARN, notes[1].level, 'level')
  assert(notes[1].message:find('reconnecting in the background', 1, true), notes[1].message)
  h.wait_for('three failed attempts', function()
    local again = client.reconnecting()
    return again ~= nil and again.attempts >= 3
  end)
  local delays = client.reconnecting().delays
  h.eq({ 250, 500, 1000 }, { delays[1], delays[2], delays[3] }, 'the delays double')
  h.eq(1, #notes, 'notifications while the daemon is down')
end)

it('a new daemon: reconnected in the background, still one notification', function()
  vim.system({ LOCUSD, 'serve' }, { stdout = false, stderr = false }, function()
    exited = true
  end)
  h.wait_for('the reconnect', function()
    return client.connected()
  end)
  h.eq(nil, client.reconnecting(), 'the reconnect stopped')
  local status = h.ok('locus/daemon/status')
  assert(status.pid ~= first_pid, 'the same daemon: ' .. status.pid)
  h.eq(1, #notes, 'notifications: ' .. vim.inspect(notes))
  h.eq('1.0', client.info().locus.protocolVersion, 'the handshake again')
end)

it('disconnect() is not followed by a reconnect; the new daemon stops', function()
  client.request('locus/daemon/shutdown', nil, function() end)
  h.wait_for('the second daemon to exit', function()
    return exited
  end)
  client.disconnect()
  vim.wait(600)
  h.eq(nil, client.reconnecting(), 'after disconnect()')
end)
