-- Real Neovim, tack in front of clangd, the scripted model behind tack: "Fix with tack" on a
-- clangd diagnostic, wait for the proposal, apply it through Neovim's own code action flow
-- (tack sends workspace/applyEdit, Neovim applies it to the buffer), then "Undo tack change".
--
--   nvim --headless --clean -u NONE -c "luafile tests/e2e/nvim/fix_with_tack.lua"
--
-- Environment:
--   E2E_SERVER_CMD  JSON array: ["/path/to/tack", "lsp"]
--   E2E_WORKSPACE   workspace folder (with tack.toml and main.c)
--   E2E_RESULT      where to write the JSON result
--   E2E_TIMEOUT_MS  longest wait at each step (default 30000)
--
-- Result: { text_before, diagnostic, first_actions = [titles], proposal_actions = [titles],
-- text_applied, text_undone, progress = [kinds], errors }. Exits 0 when nothing went wrong.

local result = { first_actions = {}, proposal_actions = {}, progress = {}, errors = {} }

local function fail(message)
  table.insert(result.errors, message)
end

local function buffer_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') .. '\n'
end

local function titles(buf, range, diagnostics, timeout_ms)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = range,
    context = { diagnostics = diagnostics, triggerKind = 1 },
  }
  local responses = vim.lsp.buf_request_sync(buf, 'textDocument/codeAction', params, timeout_ms) or {}
  local found = {}
  for _, response in pairs(responses) do
    for _, action in ipairs(response.result or {}) do
      table.insert(found, action.title)
    end
  end
  return found
end

local function starts_with_any(list, prefix)
  for _, title in ipairs(list) do
    if vim.startswith(title, prefix) then
      return title
    end
  end
end

-- Picks the code action whose title starts with `prefix` through Neovim's own flow: the
-- server's command is executed by the server, its edits come back as workspace/applyEdit.
local function choose(win, line, prefix)
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_win_set_cursor(win, { line + 1, 0 })
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return vim.startswith(action.title, prefix)
    end,
  })
end

local function run()
  local timeout_ms = tonumber(vim.env.E2E_TIMEOUT_MS or '') or 30000
  local workspace = vim.fs.normalize(vim.fn.fnamemodify(assert(vim.env.E2E_WORKSPACE), ':p'))
  local cmd = vim.json.decode(assert(vim.env.E2E_SERVER_CMD))
  vim.cmd.edit(vim.fn.fnameescape(vim.fs.joinpath(workspace, 'main.c')))
  local buf = vim.api.nvim_get_current_buf()
  local win = vim.api.nvim_get_current_win()
  vim.bo[buf].filetype = 'c'
  result.text_before = buffer_text(buf)

  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(event)
      local value = event.data.params.value
      table.insert(result.progress, value.kind)
    end,
  })
  local client_id = vim.lsp.start({ name = 'tack', cmd = cmd, root_dir = workspace }, { bufnr = buf })
  if not client_id then
    return fail('vim.lsp.start returned no client')
  end

  local function errors()
    return vim.diagnostic.get(buf, { severity = vim.diagnostic.severity.ERROR })
  end
  if not vim.wait(timeout_ms, function() return #errors() > 0 end, 20) then
    return fail('no error diagnostic from clangd')
  end
  local diagnostic = errors()[1].user_data.lsp
  result.diagnostic = diagnostic.message
  result.first_actions = titles(buf, diagnostic.range, { diagnostic }, timeout_ms)
  if not starts_with_any(result.first_actions, 'Fix with tack') then
    return fail('no "Fix with tack" action')
  end

  choose(win, diagnostic.range.start.line, 'Fix with tack')
  local here = { start = { line = 1, character = 0 }, ['end'] = { line = 1, character = 0 } }
  local proposal
  vim.wait(timeout_ms, function()
    result.proposal_actions = titles(buf, here, {}, timeout_ms)
    proposal = starts_with_any(result.proposal_actions, 'Apply tack change')
    return proposal ~= nil
  end, 100)
  if not proposal then
    return fail('no "Apply tack change" action appeared')
  end

  choose(win, 1, 'Apply tack change')
  if not vim.wait(timeout_ms, function() return buffer_text(buf) ~= result.text_before end, 20) then
    return fail('applying the proposal did not change the buffer')
  end
  result.text_applied = buffer_text(buf)

  local undo
  vim.wait(timeout_ms, function()
    undo = starts_with_any(titles(buf, here, {}, timeout_ms), 'Undo tack change')
    return undo ~= nil
  end, 100)
  if not undo then
    return fail('no "Undo tack change" action appeared')
  end
  choose(win, 1, 'Undo tack change')
  if not vim.wait(timeout_ms, function() return buffer_text(buf) == result.text_before end, 20) then
    result.text_undone = buffer_text(buf)
    return fail('undo did not restore the buffer')
  end
  result.text_undone = buffer_text(buf)
  vim.lsp.get_client_by_id(client_id):stop()
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
if #result.errors == 0 then
  vim.cmd('qall!')
else
  vim.cmd('cquit! 1')
end
