--- Review in a buffer, as CodeCompanion users know it: the run's hunks as a diff, one quickfix
--- entry per hunk, extmarks marking each hunk and its added/removed lines (they move with
--- edits to the buffer, so a key always acts on the hunk under the cursor), and keys
--- a accept / r reject / c comment (reject with a reason) / e edit-then-accept / d diff split /
--- ]h [h move.
--- Decisions name the hunk id and the review revision the user saw; a stale revision makes the
--- buffer fetch the review again and decide nothing. Closing it (`:q`) decides nothing.
--- While it is open, locus.marks marks the hunks in the person's buffers of the run's files.
local client = require('locus.client')
local marks = require('locus.marks')
local text = require('locus.text')
local views = require('locus.views')

local M = {}

local ns = vim.api.nvim_create_namespace('locus.review.hunks')
local ns_lines = vim.api.nvim_create_namespace('locus.review.lines')

--- @class locus.Review
--- @field run table the Run
--- @field view table the ReviewView last fetched
--- @field items table<integer, table> extmark id -> {kind='hunk'|'file', key, path}
--- @field qf integer|nil the quickfix list's id

local reviews = {} --- @type table<integer, locus.Review>

--- @param decision table|nil
--- @return string
local function tag(decision)
  if decision == nil or decision == vim.NIL then
    return '[undecided]'
  end
  if decision.action == 'reject' and decision.comment and decision.comment ~= vim.NIL then
    return '[rejected: ' .. text.oneline(decision.comment) .. ']'
  end
  return ({ accept = '[accepted]', reject = '[rejected]', edit = '[edited]' })[decision.action] or '[?]'
end

--- The buffer's lines, the hunk spans and the +/- lines of a view.
local function layout(review)
  local view, run = review.view, review.run
  local lines = {
    ('# Locus review of run %s: %s'):format(run.shortId, text.oneline(run.title)),
    ('# revision %s, %d undecided. a accept, r reject, c comment, e edit, d diff, ]h [h move, q close (decides nothing)'):format(
      text.oneline(view.revision),
      view.undecided
    ),
  }
  for _, line in ipairs(text.lines(view.summary ~= vim.NIL and view.summary or nil)) do
    lines[#lines + 1] = '# ' .. line
  end
  local spans, signs = {}, {}
  for _, file in ipairs(view.files) do
    lines[#lines + 1] = ''
    local head = ('=== %s (%s)'):format(text.oneline(file.path), text.oneline(file.status))
    if file.structural then
      head = head .. ' ' .. tag(file.decision)
      spans[#spans + 1] = { first = #lines, last = #lines, kind = 'file', key = file.path, path = file.path, label = head }
    end
    lines[#lines + 1] = head
    for _, hunk in ipairs(file.hunks) do
      local first = #lines
      lines[#lines + 1] = text.codeline(hunk.header) .. '  ' .. tag(hunk.decision)
      for _, line in ipairs(hunk.lines) do
        lines[#lines + 1] = text.codeline(line)
        local sign = line:sub(1, 1)
        if sign == '+' or sign == '-' then
          signs[#signs + 1] = { row = #lines - 1, group = sign == '+' and 'DiffAdd' or 'DiffDelete' }
        end
      end
      spans[#spans + 1] = {
        first = first,
        last = #lines - 1,
        kind = 'hunk',
        key = hunk.id,
        path = file.path,
        label = text.oneline(file.path) .. ' ' .. text.codeline(hunk.header) .. ' ' .. tag(hunk.decision),
      }
    end
  end
  return lines, spans, signs
end

--- The quickfix list: one entry per hunk (and per structural file), pointing into the buffer.
local function set_quickfix(buf, review, spans)
  local items = {}
  for _, span in ipairs(spans) do
    items[#items + 1] = { bufnr = buf, lnum = span.first + 1, col = 1, text = span.label, valid = 1 }
  end
  local what = { title = 'Locus review ' .. review.run.shortId, items = items }
  if review.qf and vim.fn.getqflist({ id = review.qf }).id == review.qf then
    what.id = review.qf
    vim.fn.setqflist({}, 'r', what)
  else
    vim.fn.setqflist({}, ' ', what)
    review.qf = vim.fn.getqflist({ id = 0 }).id
  end
end

--- Draw the review into its buffer (content, extmarks, quickfix).
--- @param buf integer
function M.render(buf)
  local review = reviews[buf]
  local lines, spans, signs = layout(review)
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modified = false
  vim.api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  vim.api.nvim_buf_clear_namespace(buf, ns_lines, 0, -1)
  review.items = {}
  for _, span in ipairs(spans) do
    local id = vim.api.nvim_buf_set_extmark(buf, ns, span.first, 0, {
      end_row = span.last,
      end_col = #lines[span.last + 1],
      right_gravity = false,
      end_right_gravity = true,
    })
    review.items[id] = span
  end
  for _, sign in ipairs(signs) do
    vim.api.nvim_buf_set_extmark(buf, ns_lines, sign.row, 0, { line_hl_group = sign.group })
  end
  set_quickfix(buf, review, spans)
  marks.refresh(buf)
end

--- The hunk (or structural file) under the cursor, wherever edits have moved it.
--- @param buf integer|nil
--- @return table|nil span {kind, key, path, first}
function M.at_cursor(buf)
  buf = buf or vim.api.nvim_get_current_buf()
  local review = reviews[buf]
  if not review then
    return nil
  end
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })) do
    local id, first, details = mark[1], mark[2], mark[4]
    if first <= row and row <= details.end_row and review.items[id] then
      return vim.tbl_extend('force', review.items[id], { first = first })
    end
  end
  return nil
end

--- Rows where the hunks start now (after any edits), in order.
local function starts(buf)
  local rows = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, {})) do
    rows[#rows + 1] = mark[2]
  end
  table.sort(rows)
  return rows
end

--- Move to the next (1) or previous (-1) hunk.
--- @param direction integer
function M.move(direction)
  local buf = vim.api.nvim_get_current_buf()
  if not reviews[buf] then
    return
  end
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  local rows = starts(buf)
  local target
  if direction > 0 then
    for _, r in ipairs(rows) do
      if r > row then
        target = r
        break
      end
    end
  else
    for i = #rows, 1, -1 do
      if rows[i] < row then
        target = rows[i]
        break
      end
    end
  end
  if target then
    vim.api.nvim_win_set_cursor(0, { target + 1, 0 })
  end
end

--- Draw a view the daemon sent into the buffer (if it is still there); false if gone.
--- @param buf integer
--- @param view table
--- @return boolean
local function show(buf, view)
  if not vim.api.nvim_buf_is_valid(buf) or not reviews[buf] then
    return false
  end
  reviews[buf].view = view
  M.render(buf)
  return true
end

--- Fetch the review again (a new revision) and draw it; then `after()`.
--- @param buf integer
--- @param after fun()|nil
function M.refresh(buf, after)
  client.request('locus/review/get', { runId = reviews[buf].run.runId }, function(err, view)
    if err then
      client.report(err, 'review')
    elseif show(buf, view) and after then
      after()
    end
  end)
end

--- A failed decide/commit: a stale revision fetches the review again (nothing is sent
--- again: the user decides on what they now see); any other error is reported.
--- @param err table
--- @param buf integer|nil
--- @param what string
local function failed(err, buf, what)
  if err.data and err.data.kind == 'review_stale' and buf and reviews[buf] then
    M.refresh(buf, function()
      vim.notify(
        ('Locus: the review changed since it was shown; it was fetched again and nothing was %s: look and %s again'):format(
          what == 'commit' and 'committed' or 'decided',
          what
        ),
        vim.log.levels.WARN
      )
    end)
  else
    client.report(err, what)
  end
end

--- Put the cursor on the first undecided hunk after row `row` (else leave it).
local function next_undecided(buf, row)
  local review = reviews[buf]
  local best
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, {})) do
    local span = review.items[mark[1]]
    if span and mark[2] > row and span.label:find('[undecided]', 1, true) and (not best or mark[2] < best) then
      best = mark[2]
    end
  end
  if best and vim.api.nvim_get_current_buf() == buf then
    vim.api.nvim_win_set_cursor(0, { best + 1, 0 })
  end
end

--- The review buffer, its review and the hunk under the cursor; nil span (the user told
--- where to put the cursor) when there is none.
--- @return integer buf, locus.Review|nil review, table|nil span
local function here()
  local buf = vim.api.nvim_get_current_buf()
  local span = M.at_cursor(buf)
  if not span then
    vim.notify('Locus: put the cursor on a hunk of a review buffer (:Locus review)', vim.log.levels.WARN)
  end
  return buf, reviews[buf], span
end

--- Decide the hunk under the cursor, at the revision shown.
--- @param action string accept | reject
--- @param comment string|nil
function M.decide(action, comment)
  local buf, review, span = here()
  if not span then
    return
  end
  local decision = { action = action, comment = comment }
  local params = { runId = review.run.runId, revision = review.view.revision, decisions = { [span.key] = decision } }
  client.request('locus/review/decide', params, function(err, view)
    if err then
      failed(err, buf, 'decide')
    elseif show(buf, view) then
      next_undecided(buf, span.first)
    end
  end)
end

--- Reject with a comment that goes back to the agent (asked with vim.ui.input; cancelling it
--- decides nothing).
function M.comment()
  if not select(3, here()) then
    return
  end
  vim.ui.input({ prompt = 'Locus: why reject this hunk? (goes back to the agent) ' }, function(input)
    if input == nil or input == '' then
      return
    end
    M.decide('reject', input)
  end)
end

--- The hunk `id` of a view.
local function find_hunk(view, id)
  for _, file in ipairs(view.files) do
    for _, hunk in ipairs(file.hunks) do
      if hunk.id == id then
        return hunk
      end
    end
  end
end

--- A hunk's proposed side as the daemon's `edit` takes it: its unchanged and added lines,
--- without their signs (and without a CRLF file's \r, which the daemon puts back).
--- @param hunk table HunkView
--- @return string[]
function M.proposed_lines(hunk)
  local out = {}
  for _, line in ipairs(hunk.lines) do
    local sign = line:sub(1, 1)
    if sign == ' ' or sign == '+' then
      out[#out + 1] = line:sub(2)
    end
  end
  local crlf = #out > 0 and vim.iter(out):all(function(line)
    return line:sub(-1) == '\r'
  end)
  if crlf then
    out = vim.tbl_map(function(line)
      return line:sub(1, -2)
    end, out)
  end
  return out
end

--- Send the edit buffer's lines as the hunk's `edit` decision, at the revision it was opened
--- at. Accepted: the buffer goes and the review shows the decision. Refused (the review moved
--- on, …): the daemon's error is shown and the buffer stays, modified, to copy from.
local function write_edit(edit_buf, buf, review, span, revision)
  local lines = vim.api.nvim_buf_get_lines(edit_buf, 0, -1, true)
  vim.bo[edit_buf].modified = false -- so that :wq closes the window; set again if refused
  local params = { runId = review.run.runId, revision = revision, decisions = { [span.key] = { action = 'edit', lines = lines } } }
  client.request('locus/review/decide', params, function(err, view)
    if err then
      if vim.api.nvim_buf_is_valid(edit_buf) then
        vim.bo[edit_buf].modified = true
        if vim.fn.bufwinid(edit_buf) == -1 then
          vim.cmd('belowright split')
          vim.api.nvim_win_set_buf(0, edit_buf)
        end
      end
      if not err.notified then
        vim.notify(
          ('Locus: the daemon refused the edit: %s. Your lines stay in this buffer; press e on the hunk again to edit what it proposes now'):format(
            text.oneline(err.message)
          ),
          vim.log.levels.ERROR
        )
      end
      if err.data and err.data.kind == 'review_stale' and reviews[buf] then
        M.refresh(buf)
      end
      return
    end
    if vim.api.nvim_buf_is_valid(edit_buf) then
      vim.api.nvim_buf_delete(edit_buf, { force = true })
    end
    if show(buf, view) then
      vim.notify('Locus: accepted the hunk as edited', vim.log.levels.INFO)
    end
  end)
end

--- Edit-then-accept: the hunk's proposed lines in a buffer below; `:w` accepts the hunk with
--- them (the daemon applies them in the hunk's place only); `:q!` decides nothing.
function M.edit()
  local buf, review, span = here()
  if not span then
    return
  end
  local hunk = span.kind == 'hunk' and find_hunk(review.view, span.key)
  if not hunk then
    vim.notify('Locus: only a hunk can be edited, not a whole file (a rename, mode change or binary file): accept or reject it', vim.log.levels.WARN)
    return
  end
  local revision = review.view.revision
  local edit_buf = vim.api.nvim_create_buf(false, true)
  vim.bo[edit_buf].buftype = 'acwrite'
  vim.bo[edit_buf].bufhidden = 'hide'
  vim.bo[edit_buf].swapfile = false
  vim.bo[edit_buf].modeline = false
  pcall(vim.api.nvim_buf_set_name, edit_buf, ('locus://edit/%s/%s/%s'):format(review.run.shortId, span.key:sub(1, 8), text.oneline(span.path)))
  vim.api.nvim_buf_set_lines(edit_buf, 0, -1, true, M.proposed_lines(hunk))
  vim.bo[edit_buf].modified = false
  local found, filetype = pcall(vim.filetype.match, { filename = text.oneline(span.path) })
  if found and filetype then
    vim.bo[edit_buf].filetype = filetype
  end
  vim.api.nvim_create_autocmd('BufWriteCmd', {
    buffer = edit_buf,
    callback = function()
      write_edit(edit_buf, buf, review, span, revision)
    end,
  })
  vim.cmd('belowright split')
  vim.api.nvim_win_set_buf(0, edit_buf)
  vim.wo[0][0].winbar = ('Locus: the proposed lines of %s. :w accepts them as edited, :q! decides nothing'):format(text.statusline(span.path))
end

--- Base and proposed sides of the file under the cursor, `diffthis` in a new tab.
function M.diff()
  local buf, review, span = here()
  if not span then
    return
  end
  client.call('locus/review/content', { runId = review.run.runId, path = span.path }, 'diff', function(content)
    local function side(label, value)
      local side_buf = vim.api.nvim_create_buf(false, true)
      vim.api.nvim_buf_set_lines(side_buf, 0, -1, false, text.lines(value ~= vim.NIL and value or ''))
      vim.bo[side_buf].modifiable = false
      vim.bo[side_buf].bufhidden = 'wipe'
      pcall(vim.api.nvim_buf_set_name, side_buf, ('locus://%s/%s/%s'):format(review.run.shortId, label, text.oneline(span.path)))
      return side_buf
    end
    local base, proposed = side('base', content.base), side('proposed', content.proposed)
    vim.cmd.tabnew()
    local scratch = vim.api.nvim_get_current_buf()
    vim.api.nvim_win_set_buf(0, base)
    if vim.api.nvim_buf_is_valid(scratch) and scratch ~= base then
      vim.api.nvim_buf_delete(scratch, { force = true })
    end
    vim.cmd.diffthis()
    vim.cmd('rightbelow vsplit')
    vim.api.nvim_win_set_buf(0, proposed)
    vim.cmd.diffthis()
  end)
end

local function with_review(handle, callback)
  local buf = vim.api.nvim_get_current_buf()
  if reviews[buf] and (handle == nil or handle == '') then
    callback(buf, reviews[buf])
    return
  end
  views.with_run(handle, 'locus/review/get', 'review', function(run, view)
    callback(nil, { run = run, view = view })
  end)
end

--- Commit what is accepted, with a message asked through vim.ui.input (cancel: no commit;
--- empty: the message the daemon built from what was accepted).
--- @param handle string|nil
function M.commit(handle)
  with_review(handle, function(buf, review)
    vim.ui.input({ prompt = 'Locus: commit message (empty: the one Locus built from what you accepted) ' }, function(input)
      if input == nil then
        return
      end
      local params = { runId = review.run.runId, revision = review.view.revision }
      if input ~= '' then
        params.message = input
      end
      client.request('locus/review/commit', params, function(err, result)
        if err then
          failed(err, buf, 'commit')
          return
        end
        vim.notify(
          ('Locus: committed %s%s'):format(result.commit:sub(1, 12), result.branch and result.branch ~= vim.NIL and (' on ' .. text.oneline(result.branch)) or ''),
          vim.log.levels.INFO
        )
      end)
    end)
  end)
end

--- Send the rejected hunks and their comments back to the agent for another round.
--- @param handle string|nil
function M.send_back(handle)
  with_review(handle, function(_, review)
    local params = { runId = review.run.runId, revision = review.view.revision }
    client.call('locus/review/send_back', params, 'send back', function(run)
      vim.notify(('Locus: sent back; the agent works on it in run %s'):format(run.shortId), vim.log.levels.INFO)
    end)
  end)
end

local function keys(buf)
  local function map(lhs, plug, desc)
    vim.keymap.set('n', lhs, plug, { buffer = buf, remap = true, desc = desc })
  end
  map('a', '<Plug>(locus-accept)', 'Locus: accept the hunk')
  map('r', '<Plug>(locus-reject)', 'Locus: reject the hunk')
  map('c', '<Plug>(locus-comment)', 'Locus: reject the hunk with a comment')
  map('e', '<Plug>(locus-edit)', 'Locus: edit the hunk, then accept it')
  map('d', '<Plug>(locus-diff)', 'Locus: diff the file in a tab')
  map(']h', '<Plug>(locus-next-hunk)', 'Locus: next hunk')
  map('[h', '<Plug>(locus-prev-hunk)', 'Locus: previous hunk')
  vim.keymap.set('n', 'q', '<Cmd>bwipeout<CR>', { buffer = buf, desc = 'Locus: close (decides nothing)' })
end

--- Open the review of a run (a handle; none: the one awaiting review) in a new tab.
--- @param handle string|nil
function M.open(handle)
  views.with_run(handle, 'locus/review/get', 'review', function(run, view)
    local buf = vim.api.nvim_create_buf(true, true)
    pcall(vim.api.nvim_buf_set_name, buf, 'locus://review/' .. run.shortId)
    vim.bo[buf].filetype = 'diff'
    vim.bo[buf].bufhidden = 'wipe'
    vim.bo[buf].swapfile = false
    reviews[buf] = { run = run, view = view, items = {} }
    vim.api.nvim_create_autocmd('BufWipeout', {
      buffer = buf,
      once = true,
      callback = function()
        local gone = reviews[buf]
        reviews[buf] = nil
        marks.detach(buf)
        if gone and gone.view.undecided > 0 then
          vim.notify(('Locus: review of %s closed; nothing was decided by closing it (%d undecided)'):format(gone.run.shortId, gone.view.undecided), vim.log.levels.INFO)
        end
      end,
    })
    vim.cmd.tabnew()
    local scratch = vim.api.nvim_get_current_buf()
    vim.api.nvim_win_set_buf(0, buf)
    if scratch ~= buf and vim.api.nvim_buf_is_valid(scratch) then
      vim.api.nvim_buf_delete(scratch, { force = true })
    end
    if require('locus.config').options.marks_in_files then
      marks.attach(buf, reviews[buf])
    end
    M.render(buf)
    if require('locus.config').options.review_keys then
      keys(buf)
    end
    M.move(1)
  end)
end

--- The review state of a buffer (for tests and statuslines): run, view.
--- @param buf integer|nil
function M.get(buf)
  return reviews[buf or vim.api.nvim_get_current_buf()]
end

return M
