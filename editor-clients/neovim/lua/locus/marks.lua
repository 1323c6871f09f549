--- Hunk marks in the person's own buffers of a run's worktree files, while its review is open:
--- each added line highlighted, each run of removed lines shown as virtual lines above its
--- place. Extmarks, so Neovim moves them with the person's edits (no range tracking here). When
--- the review is fetched again they are drawn again from the daemon's hunks, except in a buffer
--- with unsaved changes, whose marks have moved with those changes (the VS Code rule).
local text = require('locus.text')

local M = {}

M.ns = vim.api.nvim_create_namespace('locus.review.files')

--- Beyond these a file is a plain diff, as in the VS Code extension: no marks.
M.PLAIN_DIFF_LINES = 5000
M.PLAIN_DIFF_HUNKS = 200

-- The groups, as default links: a colour scheme or the person may set their own, and
-- `:highlight clear` (a colour scheme change) keeps them.
vim.api.nvim_set_hl(0, 'LocusAdded', { link = 'DiffAdd', default = true })
vim.api.nvim_set_hl(0, 'LocusRemoved', { link = 'DiffDelete', default = true })
vim.api.nvim_set_hl(0, 'LocusAccepted', { link = 'DiffChange', default = true })
vim.api.nvim_set_hl(0, 'LocusRejected', { link = 'DiffDelete', default = true })

--- @class locus.Places
--- @field added integer[] the rows (0-based) of the added lines in the proposed file
--- @field removed {row: integer, lines: string[]}[] each run of removed lines (without the
---   sign) and the row they were taken out before

--- Where a hunk's lines are in the proposed file, from its header's new side (`+c,d`: line c
--- is the hunk's first; `+c,0`: nothing is left, the place is after line c; `+c`: one line)
--- and its lines (' ' and '+' advance, '-' is removed at the current place, '\' is a note).
--- @param hunk {header: string, lines: string[]}
--- @return locus.Places|nil nil: the header is not a hunk's
function M.places(hunk)
  local start, count = hunk.header:match('^@@ %-%d+,?%d* %+(%d+),?(%d*) @@')
  if not start then
    return nil
  end
  local row = math.max(0, tonumber(start) - (count == '0' and 0 or 1))
  local out, block = { added = {}, removed = {} }, nil
  for _, line in ipairs(hunk.lines) do
    local sign = line:sub(1, 1)
    if sign == '-' then
      if not block then
        block = { row = row, lines = {} }
        out.removed[#out.removed + 1] = block
      end
      block.lines[#block.lines + 1] = line:sub(2)
    elseif sign == '+' or sign == ' ' then
      if sign == '+' then
        out.added[#out.added + 1] = row
      end
      row = row + 1
      block = nil
    end
  end
  return out
end

--- A file that gets no marks: deleted (no proposed side), decided whole (binary, renamed,
--- mode changed) or a plain diff (too big).
--- @param file table FileView
--- @return boolean
function M.unmarked(file)
  local lines = 0
  for _, hunk in ipairs(file.hunks) do
    lines = lines + #hunk.lines
  end
  return file.status == 'deleted' or file.binary or file.structural or #file.hunks > M.PLAIN_DIFF_HUNKS or lines > M.PLAIN_DIFF_LINES
end

--- The group of a hunk's added lines: undecided, accepted (or edited) or rejected.
local function added_group(hunk)
  local decision = hunk.decision
  if decision == nil or decision == vim.NIL then
    return 'LocusAdded'
  end
  return decision.action == 'reject' and 'LocusRejected' or 'LocusAccepted'
end

--- Removed lines as virtual lines: the text is data (control characters written out, a CRLF
--- file's \r dropped), padded to one width so the block reads as one.
--- @param lines string[]
--- @return table virt_lines
local function virtual(lines)
  local shown, width = {}, 1
  for i, line in ipairs(lines) do
    shown[i] = text.codeline((line:gsub('\r$', '')))
    width = math.max(width, vim.fn.strdisplaywidth(shown[i]))
  end
  return vim.tbl_map(function(line)
    return { { line .. (' '):rep(width - vim.fn.strdisplaywidth(line)), 'LocusRemoved' } }
  end, shown)
end

--- Draw `file`'s hunks into `buf` (its marks so far cleared).
--- @param buf integer
--- @param file table FileView
function M.mark(buf, file)
  vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  if M.unmarked(file) then
    return
  end
  local last = vim.api.nvim_buf_line_count(buf) - 1
  for _, hunk in ipairs(file.hunks) do
    local places = M.places(hunk)
    for _, row in ipairs(places and places.added or {}) do
      if row <= last then
        vim.api.nvim_buf_set_extmark(buf, M.ns, row, 0, { line_hl_group = added_group(hunk) })
      end
    end
    for _, block in ipairs(places and places.removed or {}) do
      -- Removed at the end of the file: below the last line, there being none after.
      local above = block.row <= last
      vim.api.nvim_buf_set_extmark(buf, M.ns, above and block.row or last, 0, {
        virt_lines = virtual(block.lines),
        virt_lines_above = above,
      })
    end
  end
end

--- Virtual lines above a buffer's first line show only when a window is scrolled to them
--- (`topfill`): a window showing the top of the buffer is, so removed first lines are seen.
--- @param buf integer
local function reveal(buf)
  local above = 0
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(buf, M.ns, { 0, 0 }, { 0, -1 }, { details = true })) do
    above = above + (mark[4].virt_lines_above and #mark[4].virt_lines or 0)
  end
  for _, win in ipairs(above > 0 and vim.fn.win_findbuf(buf) or {}) do
    vim.api.nvim_win_call(win, function()
      local view = vim.fn.winsaveview()
      if view.topline == 1 and view.topfill < above then
        view.topfill = above
        vim.fn.winrestview(view)
      end
    end)
  end
end

--- @class locus.Marked
--- @field review table {run, view}, shared with locus.review (its view is the last fetched)
--- @field root string the run's worktree, symlinks resolved
--- @field group integer the autocmds marking buffers loaded later

local attached = {} --- @type table<integer, locus.Marked> review buffer -> its marks
local drawn = {} --- @type table<integer, integer> file buffer -> the review buffer that marked it

--- `name`'s path inside `root` ("/"-separated, as the review names files; symlinks and `..`
--- resolved, so a link into the worktree counts and one out of it does not); nil outside it
--- or when there is no such file.
--- @param root string a resolved directory
--- @param name string
--- @return string|nil
function M.relative(root, name)
  local path = name ~= '' and vim.uv.fs_realpath(name) or nil
  if not path or path:sub(1, #root + 1) ~= root .. '/' then
    return nil
  end
  return path:sub(#root + 2)
end

--- The review's FileView a loaded file buffer shows, if any.
--- @param marked locus.Marked
--- @param buf integer
--- @return table|nil
local function file_of(marked, buf)
  if not vim.api.nvim_buf_is_loaded(buf) or vim.bo[buf].buftype ~= '' then
    return nil
  end
  local path = M.relative(marked.root, vim.api.nvim_buf_get_name(buf))
  for _, file in ipairs(path and marked.review.view.files or {}) do
    if file.path == path then
      return file
    end
  end
  return nil
end

--- Mark `buf` for the review of `owner` if it shows one of its files; `fresh`: only if it has
--- no marks of a review yet (a buffer shown in a window again keeps the marks it moved).
local function claim(owner, buf, fresh)
  local marked = attached[owner]
  local file = marked and file_of(marked, buf)
  if not file then
    return
  end
  if not (fresh and drawn[buf]) then
    M.mark(buf, file)
    drawn[buf] = owner
  end
  reveal(buf)
end

--- Draw the review's marks again (after a fetch): in every loaded buffer of its files, except
--- one with unsaved changes that has them already; a buffer whose file left the review loses
--- them.
--- @param owner integer the review buffer
function M.refresh(owner)
  local marked = attached[owner]
  if not marked then
    return
  end
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    local file = file_of(marked, buf)
    if file and not (drawn[buf] and vim.bo[buf].modified) then
      M.mark(buf, file)
      drawn[buf] = owner
      reveal(buf)
    elseif not file and drawn[buf] == owner then
      vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
      drawn[buf] = nil
    end
  end
end

--- Start marking the files of the review shown in buffer `owner` (loaded now, and loaded
--- later); nothing when the run has no worktree.
--- @param owner integer the review buffer
--- @param review table {run, view}
function M.attach(owner, review)
  local worktree = review.run.worktree
  local root = type(worktree) == 'string' and vim.uv.fs_realpath(worktree) or nil
  if not root then
    return
  end
  local group = vim.api.nvim_create_augroup('locus.review.marks.' .. owner, { clear = true })
  attached[owner] = { review = review, root = root, group = group }
  vim.api.nvim_create_autocmd('BufReadPost', {
    group = group,
    callback = function(args)
      claim(owner, args.buf, false)
    end,
  })
  vim.api.nvim_create_autocmd('BufWinEnter', {
    group = group,
    callback = function(args)
      claim(owner, args.buf, true)
    end,
  })
end

--- The review buffer `owner` is gone: its autocmds and marks go; another review still open
--- (of the same run) marks what it shows again.
--- @param owner integer
function M.detach(owner)
  local marked = attached[owner]
  if not marked then
    return
  end
  attached[owner] = nil
  vim.api.nvim_del_augroup_by_id(marked.group)
  for buf, by in pairs(drawn) do
    if by == owner then
      drawn[buf] = nil
      if vim.api.nvim_buf_is_valid(buf) then
        vim.api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
      end
    end
  end
  for other in pairs(attached) do
    M.refresh(other)
  end
end

--- Which review buffer marked `buf` (for tests and statuslines); nil: none.
--- @param buf integer
--- @return integer|nil
function M.owner(buf)
  return drawn[buf]
end

return M
