-- tack for Neovim: starts `tack lsp` for every file buffer, and adds commands, a transcript
-- window and a status line item on top of what every LSP client gets from tack (its code
-- actions "Fix with tack", "Apply tack change", "Undo tack change", … and $/progress).
--
-- Requires Neovim 0.10 or newer (vim.lsp.start, vim.system); on 0.11+ it registers with
-- vim.lsp.config / vim.lsp.enable.

local M = {}

local defaults = {
  -- The command that starts tack's language server.
  cmd = { 'tack', 'lsp' },
  -- Files that mark a project root (the first found going up from the file).
  root_markers = { 'tack.toml', '.git' },
  -- Filetypes tack attaches to; nil means every buffer backed by a file.
  filetypes = nil,
  -- Passed to tack as initializationOptions (the same keys as tack.toml).
  settings = nil,
  -- Open the transcript window when a run starts.
  open_transcript = false,
}

local state = {
  config = nil,
  status = nil,
  transcript_buf = nil,
}

local function client()
  return vim.lsp.get_clients({ name = 'tack' })[1]
end

local function version_ok()
  return vim.fn.has('nvim-0.10') == 1
end

--- The transcript buffer, created on first use.
local function transcript_buffer()
  local buf = state.transcript_buf
  if buf and vim.api.nvim_buf_is_valid(buf) then
    return buf
  end
  buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].filetype = 'markdown'
  vim.api.nvim_buf_set_name(buf, 'tack://transcript')
  state.transcript_buf = buf
  return buf
end

--- Appends text to the transcript buffer, continuing its last line.
local function append(text)
  local buf = transcript_buffer()
  local last = vim.api.nvim_buf_line_count(buf)
  local tail = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
  local lines = vim.split(tail .. text, '\n', { plain = true })
  vim.api.nvim_buf_set_lines(buf, last - 1, last, false, lines)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(buf), 0 })
  end
end

--- One agent event as transcript text.
local function render(event)
  local kind = event.type
  if kind == 'turn_started' then
    return '\n## ' .. event.text .. '\n\n'
  elseif kind == 'text_delta' then
    return event.text
  elseif kind == 'tool_call_begun' then
    return '\n- ' .. event.name .. ' ' .. event.arguments .. '\n'
  elseif kind == 'tool_call_ended' then
    return '  ' .. (event.is_error and '✗ ' or '→ ') .. (vim.split(event.summary, '\n')[1] or '') .. '\n'
  elseif kind == 'edit_drafted' or kind == 'edit_applied' then
    return '\n```diff\n' .. event.diff .. '\n```\n'
  elseif kind == 'diagnostics_changed' then
    return ('  diagnostics: %d introduced, %d fixed\n'):format(#event.introduced, #event.fixed)
  elseif kind == 'proposal_shown' then
    return '\n**Proposal:** ' .. event.summary .. ' (' .. table.concat(event.files, ', ') .. ')\n'
  elseif kind == 'proposal_decided' then
    return '\n_' .. event.decision .. ' ' .. table.concat(event.files, ', ') .. '_\n'
  elseif kind == 'changes_restored' then
    return '\n_' .. event.kind .. ': ' .. table.concat(event.files, ', ') .. '_\n'
  elseif kind == 'turn_done' then
    return '\n_' .. event['end'] .. '_\n'
  elseif kind == 'error' then
    return '\n**error:** ' .. event.message .. '\n'
  end
end

local handlers = {
  ['tack/transcript'] = function(_, params)
    local text = render(params.event)
    if text then
      append(text)
    end
    if params.event.type == 'turn_started' and state.config.open_transcript then
      M.transcript(true)
    end
  end,
  ['tack/status'] = function(_, params)
    state.status = params
    vim.cmd('redrawstatus')
  end,
}

local function lsp_config(config)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.experimental = { tack = { transcript = true, status = true } }
  return {
    name = 'tack',
    cmd = config.cmd,
    root_markers = config.root_markers,
    filetypes = config.filetypes,
    init_options = config.settings,
    capabilities = capabilities,
    handlers = handlers,
  }
end

--- Runs a tack command on the server; `on_result(result)` gets its answer.
local function execute(command, argument, on_result)
  local c = client()
  if not c then
    vim.notify('tack: not running in this buffer (see :checkhealth tack)', vim.log.levels.ERROR)
    return
  end
  local params = { command = command, arguments = { argument or vim.empty_dict() } }
  local function handler(err, result)
    if err then
      vim.notify('tack: ' .. err.message, vim.log.levels.WARN)
    elseif on_result then
      on_result(result)
    end
  end
  if vim.fn.has('nvim-0.11') == 1 then
    c:request('workspace/executeCommand', params, handler)
  else
    c.request('workspace/executeCommand', params, handler)
  end
end
M.execute = execute

--- Picks the code action whose title starts with `prefix` at the cursor, through Neovim's
--- own code action flow (tack runs the command; its edits arrive as workspace/applyEdit).
local function code_action(prefix)
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return vim.startswith(action.title, prefix)
    end,
  })
end

local function selection_range(opts)
  if opts.range == 0 then
    return nil
  end
  local last = vim.fn.getline(opts.line2)
  return {
    start = { line = opts.line1 - 1, character = 0 },
    ['end'] = { line = opts.line2 - 1, character = #last },
  }
end

local commands = {
  TackAsk = {
    function(opts)
      local function ask(prompt)
        if not prompt or prompt == '' then
          return
        end
        local range = selection_range(opts)
        local argument = { prompt = prompt }
        if range then
          argument.uri = vim.uri_from_bufnr(0)
          argument.range = range
        end
        execute('tack.ask', argument)
      end
      if opts.args ~= '' then
        ask(opts.args)
      else
        vim.ui.input({ prompt = 'Ask tack: ' }, ask)
      end
    end,
    { nargs = '*', range = true, desc = 'Ask tack (about the selection, if any)' },
  },
  TackFix = {
    function()
      local line = vim.api.nvim_win_get_cursor(0)[1] - 1
      if #vim.diagnostic.get(0, { lnum = line }) > 0 then
        code_action('Fix with tack')
      else
        execute('tack.fixFile', { uri = vim.uri_from_bufnr(0) })
      end
    end,
    { desc = 'Fix the diagnostic under the cursor (or every error in the file) with tack' },
  },
  TackApply = {
    function()
      code_action('Apply tack change')
    end,
    { desc = "Apply tack's proposal at the cursor" },
  },
  TackReject = {
    function()
      code_action('Reject tack change')
    end,
    { desc = "Reject tack's proposal at the cursor" },
  },
  TackUndo = {
    function()
      execute('tack.undo')
    end,
    { desc = "Undo tack's latest change" },
  },
  TackRedo = {
    function()
      execute('tack.redo')
    end,
    { desc = "Redo tack's latest undone change" },
  },
  TackCancel = {
    function()
      execute('tack.cancel')
    end,
    { desc = 'Cancel the running tack request' },
  },
  TackLog = {
    function()
      execute('tack.showTranscript', nil, function(result)
        vim.cmd.split(vim.fn.fnameescape(vim.uri_to_fname(result.uri)))
      end)
    end,
    { desc = "Open this session's transcript file" },
  },
  TackTranscript = {
    function()
      M.transcript()
    end,
    { desc = 'Toggle the live transcript window' },
  },
  TackModel = {
    function(opts)
      if opts.args == '' then
        execute('tack.status', nil, function(status)
          vim.notify('tack: model ' .. tostring(status.model or 'default'))
        end)
      else
        execute('tack.setModel', { model = opts.args })
      end
    end,
    { nargs = '?', desc = 'Show or set the model (provider/model); a new session starts' },
  },
}

--- Opens (or with `keep_open`, only opens) the transcript window; closes it if open.
function M.transcript(keep_open)
  local buf = transcript_buffer()
  local wins = vim.fn.win_findbuf(buf)
  if #wins > 0 then
    if not keep_open then
      vim.api.nvim_win_close(wins[1], false)
    end
    return
  end
  local current = vim.api.nvim_get_current_win()
  vim.cmd('botright vsplit')
  vim.api.nvim_win_set_buf(0, buf)
  vim.api.nvim_set_current_win(current)
end

--- A short status line item: the model and the session's tokens and cost.
function M.status()
  local status = state.status
  if not status then
    return ''
  end
  local cost = status.costUsd and (' $%.4f'):format(status.costUsd) or ''
  local running = status.running ~= vim.NIL and status.running and ' …' or ''
  return ('tack %s %dt%s%s'):format(status.model ~= vim.NIL and status.model or '', status.tokens or 0, cost, running)
end

function M.setup(opts)
  if not version_ok() then
    vim.notify('tack needs Neovim 0.10 or newer', vim.log.levels.ERROR)
    return
  end
  state.config = vim.tbl_deep_extend('force', defaults, opts or {})
  for name, command in pairs(commands) do
    vim.api.nvim_create_user_command(name, command[1], command[2])
  end
  local config = lsp_config(state.config)
  if vim.lsp.config and vim.lsp.enable then
    vim.lsp.config('tack', config)
    vim.lsp.enable('tack')
    return
  end
  -- Neovim 0.10: start (or reuse) the client for each file buffer.
  vim.api.nvim_create_autocmd('FileType', {
    group = vim.api.nvim_create_augroup('tack', { clear = true }),
    callback = function(args)
      if vim.bo[args.buf].buftype ~= '' or vim.api.nvim_buf_get_name(args.buf) == '' then
        return
      end
      local filetypes = state.config.filetypes
      if filetypes and not vim.tbl_contains(filetypes, vim.bo[args.buf].filetype) then
        return
      end
      local start = vim.deepcopy(config)
      start.root_dir = vim.fs.root(args.buf, state.config.root_markers) or vim.fn.getcwd()
      vim.lsp.start(start, { bufnr = args.buf })
    end,
  })
end

--- The configuration setup() was given, with defaults (for :checkhealth).
function M.config()
  return state.config or defaults
end

return M
