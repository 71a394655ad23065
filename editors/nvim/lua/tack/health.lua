-- :checkhealth tack — Neovim version, the tack binary and its version, whether tack is
-- attached here, and what `tack doctor` says about this folder: configuration files and
-- warnings, the language servers found per language, and the model providers.

local M = {}

local function run(cmd, cwd)
  local ok, result = pcall(function()
    return vim.system(cmd, { text = true, cwd = cwd }):wait(20000)
  end)
  if not ok then
    return nil, tostring(result)
  end
  if result.code ~= 0 then
    return nil, (result.stderr ~= '' and result.stderr or result.stdout)
  end
  return result.stdout
end

function M.check()
  vim.health.start('tack')
  if vim.fn.has('nvim-0.10') == 1 then
    vim.health.ok('Neovim ' .. tostring(vim.version()) .. ' (0.10 or newer)')
  else
    vim.health.error('Neovim 0.10 or newer is needed')
    return
  end

  local config = require('tack').config()
  local binary = config.cmd[1]
  local path = vim.fn.exepath(binary)
  if path == '' then
    vim.health.error(('`%s` is not executable or not on PATH'):format(binary), {
      'Build and install it: cargo install --path server (from a tack checkout)',
      "Or point setup{ cmd = { '/path/to/tack', 'lsp' } } at it",
    })
    return
  end
  local version = run({ path, '--version' })
  vim.health.ok(('%s: %s'):format(path, vim.trim(version or 'version unknown')))

  local attached = vim.lsp.get_clients({ name = 'tack' })
  if #attached > 0 then
    vim.health.ok('running (root ' .. tostring(attached[1].config.root_dir) .. ')')
  else
    vim.health.info('not running: open a file of a project for it to start')
  end

  local folder = (#attached > 0 and attached[1].config.root_dir) or vim.fn.getcwd()
  local doctor, problem = run({ path, 'doctor' }, folder)
  if not doctor then
    vim.health.error('`tack doctor` failed: ' .. tostring(problem))
    return
  end
  vim.health.start('tack doctor (' .. folder .. ')')
  for _, line in ipairs(vim.split(doctor, '\n', { trimempty = true })) do
    if line:find('not found', 1, true) or line:find('warning', 1, true) then
      vim.health.warn(line)
    else
      vim.health.info(line)
    end
  end
end

return M
