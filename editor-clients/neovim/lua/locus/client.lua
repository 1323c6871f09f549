--- The one connection to locusd: find the socket (as locusd/server/paths.py does), refuse a
--- socket directory another user could have planted, connect with vim.lsp.rpc, do the
--- protocol handshake, and route the daemon's notifications and requests. Nothing here waits:
--- every call takes a callback. A connect that fails gives one notification and an error to
--- every caller within the configured timeout (3 s). A lost connection to the socket is
--- notified once and reconnected in the background with backoff (quietly: a daemon being
--- restarted is not an error per attempt).
local config = require('locus.config')

local M = {}

M.PROTOCOL_VERSION = '1.0'

--- Delays (ms) between background reconnects: doubling from the first, then the last again.
M.BACKOFF_MS = { 250, 500, 1000, 2000, 4000, 8000 }

local uv = vim.uv or vim.loop

--- @class locus.State
local state = {
  rpc = nil, --- @type vim.lsp.rpc.PublicClient|nil
  ready = false,
  connecting = false,
  generation = 0,
  waiters = {}, --- @type fun(err: table|nil)[]
  quiet = true, -- every waiter is the background reconnect: a failure is not notified
  info = nil, --- @type table|nil the daemon's capabilities.experimental.locus and serverInfo
  reconnect = { timer = nil, attempts = 0, delays = {} }, -- the background reconnect, if any
}

local listeners = {} --- @type table<string, fun(params: any)[]>
local request_handlers = {} --- @type table<string, fun(params: any): any, any>

--- Call `fn(params)` on every notification `method` from the daemon.
function M.on(method, fn)
  listeners[method] = listeners[method] or {}
  table.insert(listeners[method], fn)
end

--- Answer the daemon's request `method` with `fn(params)` -> result, err (fn may yield).
function M.handle(method, fn)
  request_handlers[method] = fn
end

--- The daemon's socket: setup{socket}, $LOCUS_SOCKET, $XDG_RUNTIME_DIR/locus/locusd.sock,
--- else $TMPDIR/locus-<uid>/locusd.sock (as locusd/server/paths.py).
--- @return string
function M.socket_path()
  local chosen = config.options.socket
  if chosen and chosen ~= '' then
    return chosen
  end
  if vim.env.LOCUS_SOCKET and vim.env.LOCUS_SOCKET ~= '' then
    return vim.env.LOCUS_SOCKET
  end
  if vim.env.XDG_RUNTIME_DIR and vim.env.XDG_RUNTIME_DIR ~= '' then
    return vim.env.XDG_RUNTIME_DIR .. '/locus/locusd.sock'
  end
  local tmp = vim.env.TMPDIR
  if not tmp or tmp == '' then
    tmp = '/tmp'
  end
  return ('%s/locus-%d/locusd.sock'):format((tmp:gsub('/+$', '')), uv.getuid())
end

--- Why the socket cannot be trusted (its directory or the file belongs to someone else, or
--- lets other users in), or nil. As the daemon's own check_socket_dir.
--- @param path string
--- @return string|nil
function M.socket_problem(path)
  local dir = vim.fs.dirname(path)
  local info = uv.fs_lstat(dir)
  if not info then
    return ('no daemon: %s does not exist (start it with `locusd serve`, or set LOCUS_SOCKET)'):format(dir)
  end
  if info.type ~= 'directory' then
    return ('refusing %s: it is not a directory (a symlink or a file); remove it'):format(dir)
  end
  local uid = uv.getuid()
  if info.uid ~= uid then
    return ('refusing %s: it is owned by uid %d, not by you (uid %d); someone else may be trying to intercept the daemon\'s socket'):format(
      dir,
      info.uid,
      uid
    )
  end
  if bit.band(info.mode, tonumber('077', 8)) ~= 0 then
    return ("refusing %s: its mode is %04o, which lets other users in; run 'chmod 700 %s'"):format(
      dir,
      bit.band(info.mode, tonumber('7777', 8)),
      dir
    )
  end
  local sock = uv.fs_lstat(path)
  if not sock then
    return ('no daemon: %s does not exist (start it with `locusd serve`, or use `locusd --stdio` as cmd)'):format(path)
  end
  if sock.uid ~= uid then
    return ('refusing %s: the socket is owned by uid %d, not by you'):format(path, sock.uid)
  end
  return nil
end

--- @param message string
--- @param kind string
--- @return table
local function local_error(message, kind)
  return { message = message, data = { kind = kind, retryable = false }, notified = false }
end

--- Settle every waiting caller: nil (connected) or the error; a connect error is notified once.
local function settle(err)
  local waiters = state.waiters
  state.waiters = {}
  state.connecting = false
  if err and not state.quiet then
    err.notified = true
    vim.notify('Locus: ' .. err.message, vim.log.levels.ERROR)
  end
  state.quiet = true
  for _, waiter in ipairs(waiters) do
    waiter(err)
  end
end

local function reset()
  state.generation = state.generation + 1
  local rpc = state.rpc
  state.rpc, state.ready, state.info = nil, false, nil
  if rpc and not rpc.is_closing() then
    rpc.terminate()
  end
end

local function dispatchers(generation)
  return {
    notification = function(method, params)
      for _, fn in ipairs(listeners[method] or {}) do
        local ok, problem = pcall(fn, params)
        if not ok then
          vim.notify(('Locus: %s: %s'):format(method, problem), vim.log.levels.ERROR)
        end
      end
    end,
    server_request = function(method, params)
      local fn = request_handlers[method]
      if not fn then
        return nil, vim.lsp.rpc.rpc_response_error(vim.lsp.protocol.ErrorCodes.MethodNotFound)
      end
      return fn(params)
    end,
    on_exit = function()
      vim.schedule(function()
        if generation ~= state.generation then
          return
        end
        local was_ready = state.ready
        state.rpc, state.ready, state.info = nil, false, nil
        if state.connecting then
          settle(local_error('the daemon closed the connection during the handshake', 'connect_failed'))
        elseif was_ready and config.options.cmd then
          vim.notify('Locus: the daemon closed the connection; the next command reconnects', vim.log.levels.WARN)
        elseif was_ready then
          vim.notify('Locus: lost the connection to the daemon; reconnecting in the background', vim.log.levels.WARN)
          M.reconnect_later()
        end
      end)
    end,
  }
end

--- Stop and close a timer once, whoever gets there first.
local function stop_timer(timer)
  if not timer:is_closing() then
    timer:stop()
    timer:close()
  end
end

local function handshake(rpc, generation, timer)
  local params = {
    processId = vim.fn.getpid(),
    clientInfo = { name = 'neovim', version = tostring(vim.version()) },
    capabilities = {},
    initializationOptions = {
      locus = {
        protocolVersion = M.PROTOCOL_VERSION,
        client = { name = 'neovim', version = tostring(vim.version()) },
      },
    },
  }
  rpc.request('initialize', params, function(err, result)
    vim.schedule(function()
      stop_timer(timer)
      if generation ~= state.generation then
        return
      end
      if err then
        reset()
        settle(local_error(('the daemon refused the handshake: %s'):format(err.message or 'error'), 'handshake_failed'))
        return
      end
      local locus = vim.tbl_get(result or {}, 'capabilities', 'experimental', 'locus') or {}
      state.info = { serverInfo = result and result.serverInfo or {}, locus = locus }
      state.ready = true
      rpc.notify('initialized', {})
      settle(nil)
    end)
  end)
end

--- Stop the background reconnect, if one is pending.
local function stop_reconnect()
  local timer = state.reconnect.timer
  state.reconnect = { timer = nil, attempts = 0, delays = {} }
  if timer then
    timer:stop()
    timer:close()
  end
end

--- Try to connect again after the next backoff delay; again after a failure (quietly), until
--- connected, disconnect() or a command connects first.
function M.reconnect_later()
  local again = state.reconnect
  local delay = M.BACKOFF_MS[math.min(again.attempts + 1, #M.BACKOFF_MS)]
  again.delays[#again.delays + 1] = delay
  again.timer = again.timer or assert(uv.new_timer())
  again.timer:start(delay, 0, vim.schedule_wrap(function()
    if state.reconnect ~= again then
      return
    end
    if state.ready then
      stop_reconnect()
      return
    end
    again.attempts = again.attempts + 1
    M.connect(function(err)
      if state.reconnect ~= again then
        return
      end
      if err then
        M.reconnect_later()
      else
        stop_reconnect()
      end
    end, { quiet = true })
  end))
end

--- The background reconnect (for :checkhealth and tests): attempts made and the delays
--- waited so far; nil when none is under way.
--- @return table|nil
function M.reconnecting()
  if not state.reconnect.timer then
    return nil
  end
  return { attempts = state.reconnect.attempts, delays = vim.deepcopy(state.reconnect.delays) }
end

--- Connect if needed, then `callback(err)`; concurrent callers share one attempt. A failure
--- is notified once, unless every caller asked for `quiet` (the background reconnect).
--- @param callback fun(err: table|nil)
--- @param opts {quiet: boolean}|nil
function M.connect(callback, opts)
  if state.ready and state.rpc and not state.rpc.is_closing() then
    callback(nil)
    return
  end
  if not (opts and opts.quiet) then
    state.quiet = false
  end
  table.insert(state.waiters, callback)
  if state.connecting then
    return
  end
  state.connecting = true
  reset()
  local generation = state.generation
  local timeout = config.options.connect_timeout_ms
  local timer = assert(uv.new_timer())
  timer:start(timeout, 0, vim.schedule_wrap(function()
    stop_timer(timer)
    if generation ~= state.generation or not state.connecting then
      return
    end
    reset()
    settle(local_error(('no answer from the daemon within %d ms (is locusd running? `locus daemon status`)'):format(timeout), 'connect_timeout'))
  end))
  local function fail(message)
    stop_timer(timer)
    reset()
    settle(local_error(message, 'connect_failed'))
  end
  local cmd = config.options.cmd
  if cmd then
    local ok, rpc = pcall(vim.lsp.rpc.start, cmd, dispatchers(generation))
    if not ok then
      fail(('cannot start %s: %s'):format(table.concat(cmd, ' '), rpc))
      return
    end
    state.rpc = rpc
    handshake(rpc, generation, timer)
    return
  end
  local path = M.socket_path()
  local problem = M.socket_problem(path)
  if problem then
    vim.schedule(function()
      fail(problem)
    end)
    return
  end
  -- vim.lsp.rpc.connect only logs a refused connect: probe first, so that a dead socket is
  -- one clear error instead of a handshake that never ends.
  local probe = assert(uv.new_pipe(false))
  probe:connect(path, function(err)
    probe:close()
    vim.schedule(function()
      if generation ~= state.generation then
        return
      end
      if err then
        fail(('cannot connect to %s: %s (start the daemon with `locusd serve`)'):format(path, err))
        return
      end
      state.rpc = vim.lsp.rpc.connect(path)(dispatchers(generation))
      handshake(state.rpc, generation, timer)
    end)
  end)
end

--- Send `method` once connected; `callback(err, result)` runs on the main loop. `err` is nil
--- or {message, data={kind}, notified} (notified: the user was already told).
--- @param method string
--- @param params table|nil
--- @param callback fun(err: table|nil, result: any)
function M.request(method, params, callback)
  M.connect(function(connect_err)
    if connect_err then
      callback(connect_err, nil)
      return
    end
    local sent = state.rpc.request(method, params or vim.empty_dict(), function(err, result)
      vim.schedule(function()
        callback(err and { message = err.message, data = err.data or {}, notified = false } or nil, result)
      end)
    end)
    if not sent then
      callback(local_error('the connection to the daemon is closed; try again', 'disconnected'), nil)
    end
  end)
end

--- Send `method`; on success `on_result(result)`, else the error is reported as `what`.
--- @param method string
--- @param params table|nil
--- @param what string what the user asked for, to name it in the error
--- @param on_result fun(result: any)
function M.call(method, params, what, on_result)
  M.request(method, params, function(err, result)
    if err then
      M.report(err, what)
    else
      on_result(result)
    end
  end)
end

--- The daemon's versions after the handshake (nil before).
function M.info()
  return state.info
end

--- Whether a connection is up.
function M.connected()
  return state.ready
end

--- Close the connection (shutdown + exit), if any; no reconnect follows.
function M.disconnect()
  stop_reconnect()
  local rpc = state.rpc
  if rpc and state.ready then
    rpc.request('shutdown', nil, function()
      rpc.notify('exit', nil)
    end)
  end
  state.generation = state.generation + 1
  state.ready = false
  state.rpc = nil
end

--- Tell the user about a failed request, unless the connect error was already notified.
--- @param err table
--- @param what string
function M.report(err, what)
  if not err.notified then
    vim.notify(('Locus: %s: %s'):format(what, err.message or 'error'), vim.log.levels.ERROR)
  end
end

return M
