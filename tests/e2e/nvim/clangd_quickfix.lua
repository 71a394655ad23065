-- Real Neovim against a real C language server: open a C file with an error, wait for the
-- server's diagnostics, ask for code actions on the error, apply the quick fix's edit, and
-- record everything in a JSON result file.
--
--   nvim --headless --clean -u NONE -c "luafile tests/e2e/nvim/clangd_quickfix.lua"
--
-- Environment:
--   E2E_SERVER_CMD  JSON array, the server command: ["clangd"] or ["/path/to/tack","lsp"]
--   E2E_WORKSPACE   workspace folder (the server's root)
--   E2E_FILE        the C file to open; relative paths are inside the workspace (default main.c)
--   E2E_RESULT      where to write the JSON result
--   E2E_TIMEOUT_MS  longest wait for the server at each step (default 30000)
--
-- Result: { server_cmd, file, offset_encoding, text_before, diagnostics = [{message, severity,
-- source, range}], actions = [{title, kind, has_edit, has_command, is_preferred}], applied
-- (title or null), text_after, diagnostics_after, server_exit = {code, signal} or null,
-- lsp_log (Neovim's LSP log, where the server's stderr lands), errors }.
-- Neovim exits 0 when the quick fix was applied and nothing went wrong, 1 otherwise.

local result = {
  diagnostics = {},
  actions = {},
  diagnostics_after = {},
  errors = {},
}

local function fail(message)
  table.insert(result.errors, message)
end

local function buffer_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') .. '\n'
end

local function lsp_diagnostics(buf)
  local seen = {}
  for _, diagnostic in ipairs(vim.diagnostic.get(buf)) do
    local original = diagnostic.user_data and diagnostic.user_data.lsp
    if original then
      table.insert(seen, original)
    end
  end
  return seen
end

local function summarize(diagnostics)
  local summary = {}
  for _, d in ipairs(diagnostics) do
    table.insert(summary, {
      message = d.message,
      severity = d.severity,
      source = d.source or vim.NIL,
      range = d.range,
    })
  end
  return summary
end

local function run()
  result.lsp_log = vim.lsp.log.get_filename()
  local timeout_ms = tonumber(vim.env.E2E_TIMEOUT_MS or '') or 30000
  local workspace = vim.env.E2E_WORKSPACE
  assert(workspace, 'E2E_WORKSPACE is not set')
  workspace = vim.fs.normalize(vim.fn.fnamemodify(workspace, ':p'))
  local server_cmd = vim.env.E2E_SERVER_CMD
  assert(server_cmd, 'E2E_SERVER_CMD is not set')
  local cmd = vim.json.decode(server_cmd)
  assert(type(cmd) == 'table' and #cmd > 0, 'E2E_SERVER_CMD must be a non-empty JSON array')
  result.server_cmd = cmd

  local file = vim.env.E2E_FILE or 'main.c'
  if not vim.startswith(file, '/') then
    file = vim.fs.joinpath(workspace, file)
  end
  result.file = file

  vim.cmd.edit(vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].filetype = 'c'
  result.text_before = buffer_text(buf)

  local client_id = vim.lsp.start({
    name = 'e2e',
    cmd = cmd,
    root_dir = workspace,
    on_exit = function(code, signal)
      result.server_exit = { code = code, signal = signal }
    end,
  }, { bufnr = buf })
  if not client_id then
    fail('vim.lsp.start returned no client')
    return
  end

  local got_diagnostics = vim.wait(timeout_ms, function()
    return #lsp_diagnostics(buf) > 0 or result.server_exit ~= nil
  end, 20)
  local client = vim.lsp.get_client_by_id(client_id)
  if result.server_exit or not client then
    local exit = result.server_exit or { code = -1, signal = -1 }
    fail(('the server exited (code %d, signal %d) before publishing diagnostics'):format(exit.code, exit.signal))
    return
  end
  result.offset_encoding = client.offset_encoding
  if not got_diagnostics then
    fail(('no diagnostics within %d ms'):format(timeout_ms))
    return
  end
  local diagnostics = lsp_diagnostics(buf)
  result.diagnostics = summarize(diagnostics)

  -- Ask for code actions on the first error (or the first diagnostic if none is an error).
  local target = diagnostics[1]
  for _, d in ipairs(diagnostics) do
    if d.severity == vim.lsp.protocol.DiagnosticSeverity.Error then
      target = d
      break
    end
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = target.range,
    context = { diagnostics = { target }, triggerKind = 1 },
  }
  local responses, request_error =
    vim.lsp.buf_request_sync(buf, 'textDocument/codeAction', params, timeout_ms)
  if not responses then
    fail('textDocument/codeAction failed: ' .. tostring(request_error))
    return
  end
  -- Apply the server's preferred quick fix; without one, the first quick fix that has an edit.
  local quick_fix
  for _, response in pairs(responses) do
    if response.error then
      fail('textDocument/codeAction error: ' .. vim.inspect(response.error))
    end
    for _, action in ipairs(response.result or {}) do
      table.insert(result.actions, {
        title = action.title,
        kind = action.kind or vim.NIL,
        has_edit = action.edit ~= nil,
        has_command = action.command ~= nil,
        is_preferred = action.isPreferred or false,
      })
      local is_quick_fix = action.kind == nil or vim.startswith(action.kind, 'quickfix')
      if is_quick_fix and action.edit then
        if not quick_fix or (action.isPreferred and not quick_fix.isPreferred) then
          quick_fix = action
        end
      end
    end
  end
  if not quick_fix then
    fail('no quick fix with an edit was offered')
    return
  end

  vim.lsp.util.apply_workspace_edit(quick_fix.edit, client.offset_encoding)
  result.applied = quick_fix.title
  result.text_after = buffer_text(buf)

  -- The edit reaches the server as didChange; the error it fixed should go away.
  vim.wait(timeout_ms, function()
    for _, d in ipairs(lsp_diagnostics(buf)) do
      if d.message == target.message then
        return false
      end
    end
    return true
  end, 20)
  result.diagnostics_after = summarize(lsp_diagnostics(buf))

  client:stop()
  vim.wait(timeout_ms, function()
    return result.server_exit ~= nil
  end, 20)
end

local ok, err = pcall(run)
if not ok then
  fail('script error: ' .. tostring(err))
end

local path = vim.env.E2E_RESULT
if path then
  local json = vim.json.encode(result)
  local handle = io.open(path, 'w')
  if handle then
    handle:write(json, '\n')
    handle:close()
  end
else
  io.stderr:write('E2E_RESULT is not set; result: ' .. vim.json.encode(result) .. '\n')
end

if #result.errors == 0 and result.applied then
  vim.cmd('qall!')
else
  vim.cmd('cquit! 1')
end
