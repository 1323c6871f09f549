-- The hunk marks of locus.marks without a daemon: where a hunk's lines are in the proposed
-- file (from its header and lines, on examples), which files get none, the marks drawn into a
-- buffer (the removed text shown as data) and moved by edits, and worktree paths resolved.
local h = require('helpers')
local marks = require('locus.marks')

local function places(header, lines)
  return marks.places({ header = header, lines = lines })
end

it('a hunk in the middle: context and + advance, - is removed at the current place', function()
  local got = places('@@ -3,7 +3,7 @@ def mean(xs):', { ' a', ' b', ' c', '-old', '+new', ' d', ' e', ' f' })
  h.eq({ added = { 5 }, removed = { { row = 5, lines = { 'old' } } } }, got, 'places')
  -- Removed and added in turns: one block per run of removed lines.
  got = places('@@ -1,2 +1,2 @@', { '-a', '+b', '-c', '+d' })
  h.eq({ added = { 0, 1 }, removed = { { row = 0, lines = { 'a' } }, { row = 1, lines = { 'c' } } } }, got, 'turns')
end)

it('counts left out (+c is one line), a hunk at line 1, no newline at the end', function()
  h.eq({ added = { 0 }, removed = { { row = 0, lines = { 'x' } } } }, places('@@ -1 +1 @@', { '-x', '+y' }), '-1 +1')
  h.eq({ added = { 10 }, removed = {} }, places('@@ -10,0 +11 @@', { '+z' }), '+11 after -10,0')
  h.eq({ added = { 0 }, removed = {} }, places('@@ -1,3 +1,4 @@', { '+first', ' a', ' b', ' c' }), 'at line 1')
  local note = '\\ No newline at end of file'
  h.eq({ added = { 0 }, removed = { { row = 0, lines = { 'a' } } } }, places('@@ -1 +1 @@', { '-a', note, '+a' }), 'the note is nothing')
end)

it('a file all added; lines all removed: +c,0 is the place after line c', function()
  h.eq({ added = { 0, 1, 2 }, removed = {} }, places('@@ -0,0 +1,3 @@', { '+a', '+b', '+c' }), 'all added')
  h.eq({ added = {}, removed = { { row = 0, lines = { 'a', 'b' } } } }, places('@@ -1,2 +0,0 @@', { '-a', '-b' }), 'all removed')
  h.eq({ added = {}, removed = { { row = 4, lines = { 'x', 'y' } } } }, places('@@ -5,2 +4,0 @@', { '-x', '-y' }), 'after line 4')
  h.eq(nil, places('Binary files differ', {}), 'not a hunk header')
end)

it('no marks for a deleted file, a file decided whole, a plain diff (too big)', function()
  local hunk = { header = '@@ -1 +1 @@', lines = { '-a', '+b' } }
  local function file(fields)
    return vim.tbl_extend('force', { path = 'f', status = 'modified', binary = false, structural = false, hunks = { hunk } }, fields)
  end
  h.eq(false, marks.unmarked(file({})), 'a modified file')
  h.eq(true, marks.unmarked(file({ status = 'deleted', hunks = { { header = '@@ -1,2 +0,0 @@', lines = { '-a', '-b' } } } })), 'deleted')
  h.eq(true, marks.unmarked(file({ status = 'binary', binary = true, structural = true, hunks = {} })), 'binary')
  h.eq(true, marks.unmarked(file({ status = 'renamed', structural = true })), 'renamed')
  local many = {}
  for i = 1, marks.PLAIN_DIFF_HUNKS + 1 do
    many[i] = hunk
  end
  h.eq(true, marks.unmarked(file({ hunks = many })), 'too many hunks')
  local long = {}
  for i = 1, marks.PLAIN_DIFF_LINES + 1 do
    long[i] = '+x'
  end
  h.eq(true, marks.unmarked(file({ hunks = { { header = '@@ -0,0 +1,5001 @@', lines = long } } })), 'too many lines')
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'b' })
  marks.mark(buf, file({ status = 'renamed', structural = true }))
  h.eq({}, vim.api.nvim_buf_get_extmarks(buf, marks.ns, 0, -1, {}), 'marks of a renamed file')
end)

it('drawn into a buffer: added lines highlighted, removed text as data above its place; edits move them', function()
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'one', 'two', 'THREE', 'four', 'five', 'SIX' })
  local file = {
    path = 'f.txt',
    status = 'modified',
    binary = false,
    structural = false,
    hunks = {
      { id = 'h1', header = '@@ -1,4 +1,4 @@', lines = { ' one', ' two', '-three\27[2J %{execute("!touch pwned")}\r', '+THREE', ' four' } },
      { id = 'h2', header = '@@ -5,3 +5,2 @@', lines = { ' five', '+SIX', '-six\r', '-seven\r' }, decision = { action = 'reject' } },
    },
  }
  marks.mark(buf, file)
  local added, removed = h.marks(buf)
  h.eq({ { 2, 'LocusAdded' }, { 5, 'LocusRejected' } }, added, 'added rows')
  local escaped = 'three\\x1b[2J %{execute("!touch pwned")}'
  h.eq({
    { row = 2, above = true, lines = { escaped } },
    -- Removed after the last line: below it; padded to one width.
    { row = 5, above = false, lines = { 'six  ', 'seven' } },
  }, removed, 'removed blocks')
  -- On the screen: the text, its escape written out, nothing run.
  vim.cmd.redraw()
  local screen = {}
  for row = 1, 4 do
    local line = ''
    for col = 1, #escaped do
      line = line .. vim.fn.screenstring(row, col)
    end
    screen[row] = line
  end
  h.eq({ 'one', 'two', escaped, 'THREE' }, vim.tbl_map(vim.trim, screen), 'the screen')
  assert(vim.fn.filereadable('pwned') == 0, 'removed text was run')
  -- Lines put above the hunk move its marks; text typed inside an added line keeps it there.
  vim.api.nvim_buf_set_lines(buf, 0, 0, false, { 'note 1', 'note 2', 'note 3' })
  vim.api.nvim_buf_set_text(buf, 5, 2, 5, 2, { 'typed ' })
  added, removed = h.marks(buf)
  h.eq({ { 5, 'LocusAdded' }, { 8, 'LocusRejected' } }, added, 'added rows after the edits')
  h.eq({ 5, 8 }, { removed[1].row, removed[2].row }, 'removed places after the edits')
  h.eq('THtyped REE', vim.api.nvim_buf_get_lines(buf, 5, 6, true)[1], 'the typed line')
end)

it('worktree paths: symlinks and .. resolved; a neighbour with the same prefix is outside', function()
  local tmp = vim.uv.fs_realpath(vim.fn.tempname():match('^(.*)/[^/]*$'))
  local base = tmp .. '/marks-' .. vim.uv.getpid()
  local root = base .. '/wt'
  vim.fn.mkdir(root .. '/src', 'p')
  vim.fn.mkdir(base .. '/wt2', 'p')
  vim.fn.writefile({ 'x' }, root .. '/src/a.py')
  vim.fn.writefile({ 'x' }, base .. '/wt2/a.py')
  vim.fn.writefile({ 'x' }, base .. '/outside.py')
  assert(vim.uv.fs_symlink(root .. '/src/a.py', base .. '/link.py'))
  assert(vim.uv.fs_symlink(base .. '/outside.py', root .. '/out.py'))
  h.eq('src/a.py', marks.relative(root, root .. '/src/a.py'), 'inside')
  h.eq('src/a.py', marks.relative(root, root .. '/src/../src/a.py'), 'with ..')
  h.eq('src/a.py', marks.relative(root, base .. '/link.py'), 'a link into the worktree')
  h.eq(nil, marks.relative(root, root .. '/out.py'), 'a link out of the worktree')
  h.eq(nil, marks.relative(root, base .. '/wt2/a.py'), 'a neighbour sharing the prefix')
  h.eq(nil, marks.relative(root, root .. '/missing.py'), 'no such file')
  h.eq(nil, marks.relative(root, ''), 'a buffer without a name')
  vim.fn.delete(base, 'rf')
end)

it('setup{ marks_in_files } takes true or false and names the option otherwise', function()
  local config = require('locus.config')
  h.eq(true, config.options.marks_in_files, 'default')
  local ok, err = pcall(config.setup, { marks_in_files = 'no' })
  assert(not ok and err:find("option 'marks_in_files' must be true or false", 1, true), err)
  config.setup({ marks_in_files = false })
  h.eq(false, config.options.marks_in_files, 'off')
  config.setup({})
end)

it('the highlight groups are default links: a colour scheme change keeps them, the person\'s own win', function()
  vim.cmd.colorscheme('blue')
  for group, link in pairs({ LocusAdded = 'DiffAdd', LocusRemoved = 'DiffDelete', LocusAccepted = 'DiffChange', LocusRejected = 'DiffDelete' }) do
    h.eq(link, vim.api.nvim_get_hl(0, { name = group }).link, group)
  end
  vim.api.nvim_set_hl(0, 'LocusAdded', { link = 'Search' })
  package.loaded['locus.marks'] = nil
  require('locus.marks')
  h.eq('Search', vim.api.nvim_get_hl(0, { name = 'LocusAdded' }).link, 'a group the person set')
end)
