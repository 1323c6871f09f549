-- Against the real daemon (tests/editors/test_neovim.py starts it and a run awaiting review
-- whose agent named its files to attack the editor): the handshake, the review flow (one
-- quickfix entry per hunk, marks that follow edits, accept / reject / comment by hunk id and
-- revision, a stale revision fetched again, :q deciding nothing, the diff tab, commit), an
-- approval answered through vim.ui.select, and :checkhealth.
local h = require('helpers')
local client = require('locus.client')
local review = require('locus.review')
local marks = require('locus.marks')

local RUN = assert(os.getenv('LOCUS_TEST_RUN'))
local REPO = assert(os.getenv('LOCUS_TEST_REPO'))
local HOSTILE = assert(os.getenv('LOCUS_TEST_HOSTILE'))
local ROUND_TWO = 'round two: leave approved.txt out'
local approval_run
local marked_buf -- the person's buffer of the worktree's stats.py
local COMMENT = 'not the median: keep the old behaviour %{execute("!touch pwned")}'

local function review_buffer()
  h.wait_for('the review buffer', function()
    return review.get() ~= nil
  end)
  return vim.api.nvim_get_current_buf()
end

--- Fetch the review again, as a decision or a refresh does, and wait for it.
local function fetch_again(buf)
  local fetched = false
  review.refresh(buf, function()
    fetched = true
  end)
  h.wait_for('the review fetched again', function()
    return fetched
  end)
end

local function decisions()
  local view = h.ok('locus/review/get', { runId = RUN })
  local out = {}
  for _, file in ipairs(view.files) do
    for _, hunk in ipairs(file.hunks) do
      out[#out + 1] = { path = file.path, decision = hunk.decision ~= vim.NIL and hunk.decision or nil }
    end
  end
  return out, view
end

--- The decision the buffer's view holds for `path`'s n-th hunk (nil: undecided).
local function shown_decision(buf, path, n)
  for _, file in ipairs(review.get(buf).view.files) do
    if file.path == path then
      local decision = file.hunks[n].decision
      return decision ~= vim.NIL and decision or nil
    end
  end
end

--- The qf entry that points at `path`'s n-th hunk.
local function entry_of(path, n)
  local seen = 0
  for i, item in ipairs(vim.fn.getqflist()) do
    if vim.startswith(item.text, require('locus.text').oneline(path) .. ' @@') then
      seen = seen + 1
      if seen == n then
        return i, item
      end
    end
  end
  error('no quickfix entry for ' .. path)
end

--- Press c on `path`'s n-th hunk, answer the comment prompt with `comment`, wait for the
--- decision; the prompt's text.
local function comment_on(buf, path, n, comment)
  vim.cmd('cc ' .. entry_of(path, n))
  local asked
  vim.ui.input = function(opts, on_confirm)
    asked = opts.prompt
    on_confirm(comment)
  end
  h.press('c')
  h.wait_for('the comment', function()
    return shown_decision(buf, path, n) ~= nil
  end)
  return asked
end

--- What the review says `path`'s marks must show, read off its hunks: each added line's text
--- and group (by the hunk's decision), each removed run's lines and the line it was removed
--- before (nil: at the end of the file).
local function expected_marks(view, path)
  local added, removed = {}, {}
  for _, file in ipairs(view.files) do
    for _, hunk in ipairs(file.path == path and file.hunks or {}) do
      local action = hunk.decision ~= vim.NIL and hunk.decision and hunk.decision.action
      local group = ({ accept = 'LocusAccepted', edit = 'LocusAccepted', reject = 'LocusRejected' })[action] or 'LocusAdded'
      local block
      for _, line in ipairs(hunk.lines) do
        local sign, body = line:sub(1, 1), line:sub(2)
        if sign == '-' then
          if not block then
            block = { lines = {} }
            removed[#removed + 1] = block
          end
          block.lines[#block.lines + 1] = body
        elseif sign == '+' or sign == ' ' then
          if sign == '+' then
            added[#added + 1] = { body, group }
          end
          if block then
            block.before = body
          end
          block = nil
        end
      end
    end
  end
  return added, removed
end

--- What `buf`'s marks show: the text of each marked line with its group, each removed
--- block's lines (padding taken off) and the line it is shown above; and the marks' rows.
local function shown_marks(buf)
  local added, removed = h.marks(buf)
  local rows = {}
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, true)
  local texts = vim.tbl_map(function(mark)
    rows[#rows + 1] = mark[1]
    return { lines[mark[1] + 1], mark[2] }
  end, added)
  local blocks = vim.tbl_map(function(block)
    rows[#rows + 1] = block.row
    return {
      lines = vim.tbl_map(function(line)
        return (line:gsub(' +$', ''))
      end, block.lines),
      before = block.above and lines[block.row + 1] or nil,
    }
  end, removed)
  return texts, blocks, rows
end

--- Open a file of the run's worktree in a new tab, its name escaped for the Ex command line.
local function open_in_worktree(path)
  local worktree = h.ok('locus/runs/show', { runId = RUN }).worktree
  vim.cmd('tabedit ' .. vim.fn.fnameescape(worktree .. '/' .. path))
  return vim.api.nvim_get_current_buf()
end

it('works without setup(); setup{} is idempotent; :Locus completes its subcommands', function()
  assert(vim.fn.exists(':Locus') == 2)
  local before = vim.deepcopy(require('locus.config').options)
  require('locus').setup({})
  require('locus').setup({})
  h.eq(before, require('locus.config').options, 'options after setup{} twice')
  local subs = vim.fn.getcompletion('Locus ', 'cmdline')
  h.eq({ 'accept', 'cancel', 'comment', 'commit', 'edit', 'logs', 'reject', 'review', 'runs', 'send-back', 'tasks' }, subs, 'completion')
  h.eq({ 'review' }, vim.fn.getcompletion('Locus rev', 'cmdline'), 'completion of a prefix')
  assert(vim.fn.maparg('<Plug>(locus-accept)', 'n') ~= '' or #vim.api.nvim_get_keymap('n') > 0)
end)

it('handshake: the daemon speaks protocol 1.0 to the client named neovim', function()
  local status = h.ok('locus/daemon/status')
  h.eq('1.0', client.info().locus.protocolVersion, 'protocol')
  h.eq('locusd', client.info().serverInfo.name, 'server')
  assert(status.clients >= 1)
end)

it('the review: one quickfix entry per hunk; the agent\'s names stay data', function()
  vim.cmd('Locus review ' .. RUN:sub(1, 12))
  local buf = review_buffer()
  local _, view = decisions()
  local hunks = 0
  for _, file in ipairs(view.files) do
    hunks = hunks + #file.hunks
  end
  local qf = vim.fn.getqflist()
  h.eq(hunks, #qf, 'quickfix entries')
  h.eq(4, #qf, 'quickfix entries (two new files, two hunks of stats.py)')
  for _, item in ipairs(qf) do
    h.eq(buf, item.bufnr, 'entry buffer')
    h.eq('@@', vim.api.nvim_buf_get_lines(buf, item.lnum - 1, item.lnum, true)[1]:sub(1, 2), 'entry points at a hunk')
  end
  -- The hostile names as text: a newline written out, % and %{} as they are, nothing run.
  local _, odd = entry_of('odd\nname.txt', 1)
  assert(odd.text:find('odd\\x0aname.txt', 1, true), odd.text)
  local _, evil = entry_of(HOSTILE, 1)
  assert(evil.text:find(HOSTILE, 1, true), evil.text)
  assert(vim.fn.filereadable('pwned') == 0, 'agent text was executed')
  h.eq('Locus review ' .. review.get(buf).run.shortId, vim.fn.getqflist({ title = 1 }).title, 'title')
  for _, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, true)) do
    assert(not line:find('\n') and not line:find('\27'), 'a control character reached the buffer')
  end
end)

it('marks in the worktree file: added lines and removed text where the hunks put them; they follow edits', function()
  local buf = vim.api.nvim_get_current_buf()
  marked_buf = open_in_worktree('stats.py')
  h.eq(buf, marks.owner(marked_buf), 'marked by the review')
  local want_added, want_removed = expected_marks(review.get(buf).view, 'stats.py')
  local added, removed, rows = shown_marks(marked_buf)
  assert(#want_added > 0 and #want_removed > 0, 'stats.py has added and removed lines')
  h.eq(want_added, added, 'the added lines marked')
  h.eq(want_removed, removed, 'the removed lines shown above their place')
  -- The first line's removed text is on the screen (the window scrolled to show it), the
  -- tab line and the first line around it.
  vim.cmd.redraw()
  local screen = {}
  for row = 1, 3 do
    screen[row] = vim.trim(vim.fn.join(vim.tbl_map(function(col)
      return vim.fn.screenstring(row, col)
    end, vim.fn.range(1, vim.o.columns)), ''))
  end
  h.eq({ want_removed[1].lines[1], want_removed[1].before }, { screen[2], screen[3] }, 'the top of the window')
  -- A line typed above the first hunk (its first line is the file's first) moves every mark;
  -- text typed inside an added line keeps its mark there.
  h.eq(0, rows[1], 'the first hunk starts the file')
  h.press('ggO# my note<Esc>')
  local _, _, moved = shown_marks(marked_buf)
  h.eq(vim.tbl_map(function(row)
    return row + 1
  end, rows), moved, 'rows after a line typed above')
  vim.api.nvim_win_set_cursor(0, { rows[#want_added] + 2, 3 }) -- the last added line, moved
  h.press('ityped<Esc>')
  local typed
  typed, _, moved = shown_marks(marked_buf)
  h.eq(vim.tbl_map(function(row)
    return row + 1
  end, rows), moved, 'rows after typing inside a line')
  assert(vim.tbl_contains(vim.tbl_map(function(mark)
    return mark[1]
  end, typed), vim.api.nvim_get_current_line()), 'the line typed in kept its mark')
  -- Fetched again: a buffer with unsaved changes keeps its moved marks; one without gets the
  -- daemon's (here: cleared by hand, drawn again).
  fetch_again(buf)
  _, _, moved = shown_marks(marked_buf)
  h.eq(vim.tbl_map(function(row)
    return row + 1
  end, rows), moved, 'a modified buffer keeps its moved marks')
  vim.cmd('edit!')
  h.eq(want_added, (shown_marks(marked_buf)), 'marked again when read again')
  vim.api.nvim_buf_clear_namespace(marked_buf, marks.ns, 0, -1)
  fetch_again(buf)
  added, removed, moved = shown_marks(marked_buf)
  h.eq({ want_added, want_removed, rows }, { added, removed, moved }, 'drawn again from the daemon\'s hunks')
  vim.cmd('tabclose')
  vim.fn.win_gotoid(vim.fn.bufwinid(buf))
end)

it('marks in files with hostile names (opened by :edit or bufload); none outside the worktree', function()
  local buf = vim.api.nvim_get_current_buf()
  local evil = open_in_worktree(HOSTILE)
  h.eq({ { 0, 'LocusAdded' }, { 1, 'LocusAdded' }, { 2, 'LocusAdded' } }, (h.marks(evil)), 'a new file: every line added')
  local worktree = h.ok('locus/runs/show', { runId = RUN }).worktree
  local odd = vim.fn.bufadd(worktree .. '/odd\nname.txt')
  vim.fn.bufload(odd)
  h.eq({ { 0, 'LocusAdded' } }, (h.marks(odd)), 'the file named with a newline')
  vim.cmd('tabedit ' .. vim.fn.fnameescape(REPO .. '/stats.py'))
  local outside = vim.api.nvim_get_current_buf()
  h.eq({ {}, {} }, { h.marks(outside) }, 'the checkout\'s own stats.py')
  h.eq(nil, marks.owner(outside), 'owner of the checkout\'s file')
  assert(vim.fn.filereadable('pwned') == 0, 'agent text was executed')
  for _, gone in ipairs({ evil, odd, outside }) do
    vim.api.nvim_buf_delete(gone, { force = true })
  end
  vim.fn.win_gotoid(vim.fn.bufwinid(buf))
  h.eq(buf, vim.api.nvim_get_current_buf(), 'back in the review')
end)

it(':q closes the review and decides nothing', function()
  local tabs = #vim.api.nvim_list_tabpages()
  vim.cmd('quit')
  h.eq(tabs - 1, #vim.api.nvim_list_tabpages(), 'tabs')
  h.wait_for('the review forgotten', function()
    return review.get() == nil
  end)
  for _, hunk in ipairs(decisions()) do
    assert(hunk.decision == nil, 'closing decided ' .. vim.inspect(hunk))
  end
end)

it('closing the review takes its marks and autocmds away; marks_in_files = false: none', function()
  h.eq({ {}, {} }, { h.marks(marked_buf) }, 'marks left after closing')
  h.eq(nil, marks.owner(marked_buf), 'owner after closing')
  local evil = open_in_worktree(HOSTILE)
  h.eq({ {}, {} }, { h.marks(evil) }, 'a file opened after closing')
  vim.cmd('tabclose')
  vim.api.nvim_buf_delete(evil, { force = true })
  require('locus').setup({ marks_in_files = false })
  vim.cmd('Locus review ' .. RUN)
  review_buffer()
  evil = open_in_worktree(HOSTILE)
  h.eq({ {}, {} }, { h.marks(evil) }, 'a file opened with marks_in_files = false')
  h.eq({ {}, {} }, { h.marks(marked_buf) }, 'a file loaded with marks_in_files = false')
  vim.cmd('tabclose')
  vim.api.nvim_buf_delete(evil, { force = true })
  vim.cmd('quit')
  require('locus').setup({})
end)

it('marks follow edits: a and ]h act on the hunk where it is now', function()
  vim.cmd('Locus review ' .. RUN)
  local buf = review_buffer()
  local index, before = entry_of('stats.py', 1)
  vim.bo[buf].modifiable = true
  -- More lines than the whole diff has: a hunk found by its old line numbers would be wrong.
  local notes = {}
  for i = 1, vim.api.nvim_buf_line_count(buf) + 5 do
    notes[i] = 'my note ' .. i
  end
  vim.api.nvim_buf_set_lines(buf, 0, 0, false, notes)
  local moved = vim.fn.getqflist()[index]
  h.eq(before.lnum + #notes, moved.lnum, 'the quickfix entry followed the edit')
  vim.cmd('cc ' .. index)
  h.eq('@@', vim.api.nvim_get_current_line():sub(1, 2), 'on the hunk header')
  local span = review.at_cursor(buf)
  h.eq('stats.py', span.path, 'hunk under the cursor')
  local id = span.key
  -- ]h from the line above lands on this hunk's new place.
  vim.api.nvim_win_set_cursor(0, { moved.lnum - 1, 0 })
  h.press(']h')
  h.eq(moved.lnum, vim.api.nvim_win_get_cursor(0)[1], ']h')
  h.press('a')
  h.wait_for('the accept', function()
    local view = review.get(buf).view
    for _, file in ipairs(view.files) do
      for _, hunk in ipairs(file.hunks) do
        if hunk.id == id and hunk.decision ~= vim.NIL and hunk.decision ~= nil then
          return true
        end
      end
    end
    return false
  end)
  local all = decisions()
  local accepted = vim.tbl_filter(function(d)
    return d.decision ~= nil
  end, all)
  h.eq(1, #accepted, 'decided hunks')
  h.eq({ path = 'stats.py', decision = { action = 'accept' } }, accepted[1], 'the accepted hunk')
end)

it('a decision draws the file\'s marks again: the accepted hunk\'s lines as accepted', function()
  local buf = vim.api.nvim_get_current_buf()
  h.eq(buf, marks.owner(marked_buf), 'the loaded buffer marked when the review opened')
  local want_added, want_removed = expected_marks(review.get(buf).view, 'stats.py')
  assert(vim.tbl_contains(vim.tbl_map(function(mark)
    return mark[2]
  end, want_added), 'LocusAccepted'), vim.inspect(want_added))
  local added, removed = shown_marks(marked_buf)
  h.eq({ want_added, want_removed }, { added, removed }, 'marks after the accept')
  vim.api.nvim_buf_delete(marked_buf, { force = true })
end)

it('a stale revision is fetched again and decides nothing', function()
  local buf = vim.api.nvim_get_current_buf()
  local shown = review.get(buf).view.revision
  -- The worktree changes under the open review (the revision follows it), and another
  -- client rejects the changed file at the new revision.
  local worktree = h.ok('locus/runs/show', { runId = RUN }).worktree
  local file = assert(io.open(worktree .. '/odd\nname.txt', 'a'))
  file:write('one more line\n')
  file:close()
  local _, current = decisions()
  assert(current.revision ~= shown, 'the revision did not follow the worktree')
  local odd_id
  for _, changed in ipairs(current.files) do
    if changed.path == 'odd\nname.txt' then
      odd_id = changed.hunks[1].id
    end
  end
  h.ok('locus/review/decide', { runId = RUN, revision = current.revision, decisions = { [odd_id] = { action = 'reject' } } })
  local notes = h.record_notifications()
  vim.cmd('cc ' .. entry_of(HOSTILE, 1))
  h.press('a')
  h.wait_for('the stale answer and the re-fetch', function()
    return review.get(buf).view.revision == current.revision
  end)
  h.wait_for('the notification', function()
    return #notes > 0
  end)
  assert(notes[1].message:find('fetched again', 1, true), notes[1].message)
  for _, d in ipairs(decisions()) do
    if d.path == HOSTILE then
      assert(d.decision == nil, 'a stale decision was applied')
    end
  end
  -- The buffer shows the new revision's text and the other client's decision.
  local text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), '\n')
  assert(text:find('+one more line', 1, true), text)
  assert(text:find('[rejected]', 1, true), text)
end)

it('r rejects, c rejects with a comment (vim.ui.input), d opens the diff in a tab', function()
  local buf = vim.api.nvim_get_current_buf()
  vim.cmd('cc ' .. entry_of(HOSTILE, 1))
  h.press('r')
  h.wait_for('the reject', function()
    return shown_decision(buf, HOSTILE, 1) ~= nil
  end)
  local asked = comment_on(buf, 'stats.py', 2, COMMENT)
  assert(asked:find('why reject', 1, true), asked)
  h.eq(0, review.get(buf).view.undecided, 'undecided')
  local by_path = {}
  for _, d in ipairs(decisions()) do
    by_path[#by_path + 1] = d.path .. ':' .. d.decision.action .. ':' .. (d.decision.comment or '')
  end
  table.sort(by_path)
  h.eq({
    HOSTILE .. ':reject:',
    'odd\nname.txt:reject:',
    'stats.py:accept:',
    'stats.py:reject:' .. COMMENT,
  }, by_path, 'decisions')
  -- d: base and proposed side by side, diffthis in a new tab.
  local tabs = #vim.api.nvim_list_tabpages()
  h.press('d')
  h.wait_for('the diff tab', function()
    return #vim.api.nvim_list_tabpages() == tabs + 1
  end)
  local wins = vim.api.nvim_tabpage_list_wins(0)
  h.eq(2, #wins, 'windows in the diff tab')
  for _, win in ipairs(wins) do
    assert(vim.wo[win].diff, 'diffthis')
  end
  local base = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(wins[1]), 0, -1, true)
  local proposed = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(wins[2]), 0, -1, true)
  h.eq('"""Small statistics helpers."""', base[1], 'base side')
  h.eq('"""Statistics helpers."""', proposed[1], 'proposed side')
  vim.cmd('tabclose')
  vim.api.nvim_set_current_buf(buf)
end)

it('e: the proposed lines in a buffer; a refused edit shows the daemon\'s error; :w accepts it edited', function()
  local buf = vim.api.nvim_get_current_buf()
  local odd = 'odd\nname.txt'
  local function open_edit()
    vim.cmd('cc ' .. entry_of(odd, 1))
    h.press('e')
    h.eq('acwrite', vim.bo.buftype, 'the edit buffer')
    return vim.api.nvim_get_current_buf()
  end
  -- The agent's file name in the winbar is text: its %{…} is not evaluated; :q! decides nothing.
  vim.cmd('cc ' .. entry_of(HOSTILE, 1))
  h.press('e')
  local shown = vim.api.nvim_eval_statusline(vim.wo.winbar, { winid = vim.api.nvim_get_current_win(), maxwidth = 1000 }).str
  assert(shown:find(HOSTILE, 1, true), shown)
  assert(vim.fn.filereadable('pwned') == 0, 'the winbar ran agent text')
  vim.cmd('quit!')
  h.eq(buf, vim.api.nvim_get_current_buf(), 'back in the review')
  local edit_buf = open_edit()
  h.eq({ 'a name with a newline', 'one more line' }, vim.api.nvim_buf_get_lines(edit_buf, 0, -1, true), 'the proposed lines')
  assert(vim.wo.winbar:find('odd\\x0aname.txt', 1, true), vim.wo.winbar)
  -- The worktree moves on while the person edits: the daemon refuses the edit (stale).
  local worktree = h.ok('locus/runs/show', { runId = RUN }).worktree
  local file = assert(io.open(worktree .. '/' .. odd, 'a'))
  file:write('a third line\n')
  file:close()
  vim.api.nvim_buf_set_lines(edit_buf, 1, 2, true, { 'edited too early' })
  local notes = h.record_notifications()
  vim.cmd('write')
  h.wait_for('the refusal', function()
    return #notes > 0
  end)
  h.eq(vim.log.levels.ERROR, notes[1].level, 'level')
  assert(notes[1].message:find('refused the edit: the review is stale', 1, true), notes[1].message)
  assert(vim.api.nvim_buf_is_valid(edit_buf) and vim.bo[edit_buf].modified, 'the refused lines were kept')
  h.wait_for('the review fetched again', function()
    return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), '\n'):find('+a third line', 1, true) ~= nil
  end)
  for _, d in ipairs(decisions()) do
    assert(not (d.decision and d.decision.action == 'edit'), 'a refused edit was stored')
  end
  vim.cmd('bwipeout!')
  -- Again on what it proposes now: :w accepts the hunk with the edited lines.
  vim.api.nvim_set_current_buf(buf)
  edit_buf = open_edit()
  h.eq({ 'a name with a newline', 'one more line', 'a third line' }, vim.api.nvim_buf_get_lines(edit_buf, 0, -1, true), 'the new proposal')
  vim.api.nvim_buf_set_lines(edit_buf, 1, 3, true, { 'edited in Neovim %{x}' })
  vim.cmd('write')
  h.wait_for('the edit accepted', function()
    return not vim.api.nvim_buf_is_valid(edit_buf)
  end)
  local edited
  for _, d in ipairs(decisions()) do
    if d.path == odd then
      edited = d.decision
    end
  end
  h.eq({ action = 'edit', lines = { 'a name with a newline', 'edited in Neovim %{x}' } }, edited, 'the stored decision')
  assert(table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), '\n'):find('[edited]', 1, true), 'the buffer shows it')
  vim.api.nvim_set_current_buf(buf)
end)

it('commit: only the accepted hunk, with the message given', function()
  vim.ui.input = function(_, on_confirm)
    on_confirm('Neovim review: docstring only')
  end
  local notes = h.notified_by('Locus commit')
  assert(notes[1].message:find('committed', 1, true), vim.inspect(notes))
  local run = h.ok('locus/runs/show', { runId = RUN })
  assert(run.commit and run.commit ~= vim.NIL, vim.inspect(run))
  io.stdout:write('commit ' .. run.commit .. '\n')
end)

it('an approval answered through vim.ui.select; the command runs once allowed', function()
  local asked = {}
  vim.ui.select = function(items, opts, on_choice)
    asked[#asked + 1] = { items = items, prompt = opts.prompt }
    on_choice(items[1], 1) -- the user picks Allow once
  end
  local run = h.ok('locus/runs/start', { repo = REPO, task = 'say it' })
  vim.cmd('Locus logs ' .. run.runId)
  h.wait_for('the approval and the run to end', function()
    local now = h.ok('locus/runs/show', { runId = run.runId })
    return now.state == 'awaiting_review' or now.state == 'failed'
  end)
  h.eq(1, #asked, 'questions')
  h.eq({ 'Allow once', 'Allow always', 'Reject' }, asked[1].items, 'choices')
  assert(asked[1].prompt:find(os.getenv('LOCUS_TEST_ASKED'), 1, true), asked[1].prompt)
  local logs = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\n')
  assert(logs:find('allow once: ' .. os.getenv('LOCUS_TEST_ASKED'), 1, true), logs)
  approval_run = run.runId
end)

it('send back: a rejected hunk and its comment go back to the agent for another round', function()
  vim.cmd('Locus review ' .. approval_run)
  h.wait_for('the second review', function()
    local shown = review.get()
    return shown ~= nil and shown.run.runId == approval_run
  end)
  local buf = vim.api.nvim_get_current_buf()
  comment_on(buf, 'approved.txt', 1, ROUND_TWO)
  local notes = h.notified_by('Locus send-back')
  assert(notes[1].message:find('sent back', 1, true), vim.inspect(notes))
  local latest
  h.wait_for('the next round to end', function()
    latest = h.ok('locus/runs/resolve', { handle = 'latest' })
    return latest.runId ~= approval_run and latest.endedAt ~= nil and latest.endedAt ~= vim.NIL
  end)
  h.eq('awaiting_review', latest.state, 'the next round: ' .. vim.inspect(latest))
  h.eq('revised', h.ok('locus/runs/show', { runId = approval_run }).state, 'the first round')
end)

it(':checkhealth locus reports the socket, the daemon and the protocol', function()
  vim.cmd('checkhealth locus')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\n')
  assert(report:find('protocol 1.0', 1, true), report)
  assert(report:find('directory 0700', 1, true), report)
  assert(not report:find('ERROR', 1, true), report)
end)

it('through `locusd --stdio` (vim.lsp.rpc.start) instead of the socket', function()
  client.disconnect()
  require('locus').setup({ cmd = { assert(os.getenv('LOCUS_TEST_LOCUSD')), '--stdio' } })
  local status = h.ok('locus/daemon/status')
  h.eq('1.0', client.info().locus.protocolVersion, 'protocol')
  assert(status.clients >= 1)
  h.eq('awaiting_review', h.ok('locus/runs/resolve', { handle = 'latest' }).state, 'the same daemon')
end)
