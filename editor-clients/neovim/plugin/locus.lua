-- :Locus {sub} and the <Plug> mappings; the modules load on first use.
if vim.g.loaded_locus then
  return
end
vim.g.loaded_locus = true

if vim.fn.has('nvim-0.10') ~= 1 then
  vim.notify('Locus needs Neovim 0.10 or newer', vim.log.levels.ERROR)
  return
end

vim.api.nvim_create_user_command('Locus', function(opts)
  require('locus').run(opts.fargs)
end, {
  nargs = '+',
  desc = 'Locus: tasks, runs, logs, review, accept, reject, comment, edit, commit, send-back, cancel',
  complete = function(arglead, cmdline)
    return require('locus').complete(arglead, cmdline)
  end,
})

local plugs = {
  ['<Plug>(locus-tasks)'] = { 'tasks' },
  ['<Plug>(locus-runs)'] = { 'runs' },
  ['<Plug>(locus-logs)'] = { 'logs' },
  ['<Plug>(locus-review)'] = { 'review' },
  ['<Plug>(locus-accept)'] = { 'accept' },
  ['<Plug>(locus-reject)'] = { 'reject' },
  ['<Plug>(locus-comment)'] = { 'comment' },
  ['<Plug>(locus-edit)'] = { 'edit' },
  ['<Plug>(locus-commit)'] = { 'commit' },
  ['<Plug>(locus-send-back)'] = { 'send-back' },
  ['<Plug>(locus-cancel)'] = { 'cancel' },
}
for lhs, args in pairs(plugs) do
  vim.keymap.set('n', lhs, function()
    require('locus').run(args)
  end, { desc = 'Locus: ' .. args[1] })
end
vim.keymap.set('n', '<Plug>(locus-diff)', function()
  require('locus.review').diff()
end, { desc = 'Locus: diff the file in a tab' })
vim.keymap.set('n', '<Plug>(locus-next-hunk)', function()
  require('locus.review').move(1)
end, { desc = 'Locus: next hunk' })
vim.keymap.set('n', '<Plug>(locus-prev-hunk)', function()
  require('locus.review').move(-1)
end, { desc = 'Locus: previous hunk' })
