-- Connecting when there is no daemon, one that never answers, or a socket directory other
-- users can enter: one notification and an error, and the editor stays responsive (nothing in
-- the plugin waits). "Within 3 s" is the configured timeout (asserted) and its timer (a daemon
-- that never answers gets the timeout error, not a hang); the time measured is printed, not
-- asserted: no wall-clock thresholds in tests.
local h = require('helpers')
local client = require('locus.client')
local config = require('locus.config')

local function attempt(socket)
  require('locus').setup({ socket = socket })
  local notes = h.record_notifications()
  local started = vim.uv.hrtime()
  local err, elapsed
  client.request('locus/runs/list', nil, function(e)
    err, elapsed = e, (vim.uv.hrtime() - started) / 1e6
  end)
  -- The request returned at once: the editor is free while the connect is under way.
  assert(err == nil, 'the callback ran before the connect was even tried')
  h.wait_for('the connect error (not a hang)', function()
    return err ~= nil
  end)
  vim.wait(300) -- a second notification would come now
  io.stdout:write(('     %s: the error after %d ms (printed, not asserted)\n'):format(err.data.kind, elapsed))
  return err, elapsed, notes
end

it('the connect timeout is 2.5 s by default (under the 3 s promised), and setup checks it', function()
  h.eq(2500, config.options.connect_timeout_ms, 'default connect_timeout_ms')
  for _, bad in ipairs({ 0, -1, 1.5, '2500' }) do
    local ok, problem = pcall(require('locus').setup, { connect_timeout_ms = bad })
    assert(not ok, 'accepted connect_timeout_ms = ' .. vim.inspect(bad))
    assert(problem:find('connect_timeout_ms', 1, true) and problem:find('milliseconds', 1, true), problem)
  end
  h.eq(2500, config.options.connect_timeout_ms, 'a refused setup changes nothing')
end)

it('no daemon: one notification and an error at once', function()
  local err, _, notes = attempt(os.getenv('LOCUS_TEST_MISSING'))
  h.eq('connect_failed', err.data.kind, 'kind (at once, not at the timeout)')
  h.eq(1, #notes, 'notifications')
  assert(notes[1].level == vim.log.levels.ERROR)
  assert(notes[1].message:find('does not exist', 1, true), notes[1].message)
  assert(err.notified, 'the caller is told the user was already notified')
  -- Through the command a user types: still one notification.
  notes = h.record_notifications()
  vim.cmd('Locus runs')
  h.wait_for('the notification', function()
    return #notes > 0
  end)
  vim.wait(300)
  h.eq(1, #notes, 'notifications of :Locus runs')
end)

it('a socket nobody listens on (a killed daemon): one notification, an error at once', function()
  local err, _, notes = attempt(os.getenv('LOCUS_TEST_DEAD'))
  h.eq('connect_failed', err.data.kind, 'kind (at once, not at the timeout)')
  h.eq(1, #notes, 'notifications')
  assert(err.message:find('cannot connect', 1, true), err.message)
end)

it('a daemon that never answers the handshake: the timeout error (not a hang), one notification', function()
  local err, _, notes = attempt(os.getenv('LOCUS_TEST_MUTE'))
  h.eq(1, #notes, 'notifications')
  h.eq('connect_timeout', err.data.kind, 'kind')
  assert(err.message:find('within 2500 ms', 1, true), err.message)
end)

it('a socket directory other users can enter is refused, saying how to fix it', function()
  local err, _, notes = attempt(os.getenv('LOCUS_TEST_OPEN'))
  h.eq(1, #notes, 'notifications')
  assert(err.message:find('chmod 700', 1, true), err.message)
end)

it(':Locus with an unknown subcommand names the known ones', function()
  local notes = h.record_notifications()
  vim.cmd('Locus frobnicate')
  h.eq(1, #notes, 'notifications')
  assert(notes[1].message:find('tasks, runs', 1, false) or notes[1].message:find('accept, cancel', 1, true), notes[1].message)
end)
