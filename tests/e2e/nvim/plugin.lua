-- The Neovim plugin (editors/nvim) in real Neovim, as its README tells a user to set it up:
-- require('tack').setup{}, a C file with clangd's error, :TackFix, :TackApply, :TackUndo,
-- the live transcript, and :checkhealth tack.
--
-- Environment: E2E_PLUGIN (editors/nvim), E2E_TACK (the binary), E2E_WORKSPACE (tack.toml and
-- main.c), E2E_RESULT (JSON result), E2E_TIMEOUT_MS.
-- Result: { text_before, text_applied, text_undone, transcript, health, status, errors }.

local result = { errors = {} }
local function fail(message)
  table.insert(result.errors, message)
end
local function text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') .. '\n'
end

local function run()
  local timeout_ms = tonumber(vim.env.E2E_TIMEOUT_MS or '') or 30000
  vim.opt.runtimepath:prepend(assert(vim.env.E2E_PLUGIN))
  local tack = require('tack')
  tack.setup({ cmd = { assert(vim.env.E2E_TACK), 'lsp' } })

  local workspace = assert(vim.env.E2E_WORKSPACE)
  vim.cmd.cd(vim.fn.fnameescape(workspace))
  vim.cmd('filetype on')
  vim.cmd.edit('main.c')
  local buf = vim.api.nvim_get_current_buf()
  result.text_before = text(buf)
  if not vim.wait(timeout_ms, function() return #vim.lsp.get_clients({ name = 'tack', bufnr = buf }) > 0 end, 20) then
    return fail('tack did not attach to main.c (filetype ' .. vim.bo[buf].filetype .. ')')
  end
  local function errors()
    return vim.diagnostic.get(buf, { severity = vim.diagnostic.severity.ERROR })
  end
  if not vim.wait(timeout_ms, function() return #errors() > 0 end, 20) then
    return fail('no error diagnostic')
  end
  vim.api.nvim_win_set_cursor(0, { errors()[1].lnum + 1, 0 })
  vim.cmd('TackFix')

  -- The proposal waits on line 2; :TackApply picks it there once it is offered.
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  local function offered(prefix)
    local params = vim.lsp.util.make_range_params(0, 'utf-16')
    params.context = { diagnostics = {} }
    local responses = vim.lsp.buf_request_sync(buf, 'textDocument/codeAction', params, timeout_ms) or {}
    for _, response in pairs(responses) do
      for _, action in ipairs(response.result or {}) do
        if vim.startswith(action.title, prefix) then
          return true
        end
      end
    end
    return false
  end
  if not vim.wait(timeout_ms, function() return offered('Apply tack change') end, 100) then
    return fail('no proposal was offered')
  end
  vim.cmd('TackApply')
  if not vim.wait(timeout_ms, function() return text(buf) ~= result.text_before end, 20) then
    return fail(':TackApply did not change the buffer')
  end
  result.text_applied = text(buf)
  vim.wait(timeout_ms, function() return offered('Undo tack change') end, 100)
  vim.cmd('TackUndo')
  if not vim.wait(timeout_ms, function() return text(buf) == result.text_before end, 20) then
    result.text_undone = text(buf)
    return fail(':TackUndo did not restore the buffer')
  end
  result.text_undone = text(buf)
  result.status = tack.status()

  vim.cmd('TackTranscript')
  local transcript_buf = vim.fn.bufnr('tack://transcript')
  -- The undo is recorded once Neovim has answered the applyEdit.
  vim.wait(timeout_ms, function()
    return transcript_buf > 0 and text(transcript_buf):find('_undo:', 1, true) ~= nil
  end, 20)
  result.transcript = transcript_buf > 0 and text(transcript_buf) or ''

  vim.cmd('checkhealth tack')
  result.health = text(vim.api.nvim_get_current_buf())
end

local ok, err = pcall(run)
if not ok then
  fail('script error: ' .. tostring(err))
end
local handle = io.open(assert(vim.env.E2E_RESULT), 'w')
if handle then
  handle:write(vim.json.encode(result), '\n')
  handle:close()
end
vim.cmd(#result.errors == 0 and 'qall!' or 'cquit! 1')
