-- Connecting when there is no daemon, one that never answers, or a socket directory other
-- users can enter: one notification and an error within the connect timeout (3 s), and the
-- editor stays responsive (nothing in the plugin waits).
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
  h.wait_for('the connect error', function()
    return err ~= nil
  end, config.options.connect_timeout_ms + 1000)
  vim.wait(300) -- a second notification would come now
  return err, elapsed, notes
end

it('no daemon: one notification and an error within 3 s', function()
  local err, elapsed, notes = attempt(os.getenv('LOCUS_TEST_MISSING'))
  assert(elapsed <= 3000, 'the error took ' .. elapsed .. ' ms')
  h.eq(1, #notes, 'notifications')
  assert(notes[1].level == vim.log.levels.ERROR)
  assert(notes[1].message:find('does not exist', 1, true), notes[1].message)
  assert(err.notified, 'the caller is told the user was already notified')
  -- Through the command a user types: still one notification.
  notes = h.record_notifications()
  vim.cmd('Locus runs')
  h.wait_for('the notification', function()
    return #notes > 0
  end, 3000)
  vim.wait(300)
  h.eq(1, #notes, 'notifications of :Locus runs')
end)

it('a socket nobody listens on (a killed daemon): one notification, an error within 3 s', function()
  local err, elapsed, notes = attempt(os.getenv('LOCUS_TEST_DEAD'))
  assert(elapsed <= 3000, 'the error took ' .. elapsed .. ' ms')
  h.eq(1, #notes, 'notifications')
  assert(err.message:find('cannot connect', 1, true), err.message)
end)

it('a daemon that never answers the handshake: an error at the 3 s timeout, one notification', function()
  local err, elapsed, notes = attempt(os.getenv('LOCUS_TEST_MUTE'))
  assert(elapsed <= 3000, 'the error took ' .. elapsed .. ' ms')
  h.eq(1, #notes, 'notifications')
  h.eq('connect_timeout', err.data.kind, 'kind')
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
