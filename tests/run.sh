#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: installs the real tools the end-to-end tests
# drive (tests/e2e/setup.sh, quick when they are present), then runs every test with
# cargo-nextest, and checks formatting and clippy. Extra arguments go to the test runner
# (for example a filter: tests/run.sh e2e::nvim).
# Every step runs even when an earlier one fails; the exit status says whether all passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/e2e/setup.sh
# shellcheck source=/dev/null
. "${E2E_TOOLS_DIR:-$HOME/.cache/tack-tools}/env.sh"

failed=()
step() {  # step NAME COMMAND...: runs COMMAND, remembering NAME if it fails
    local name="$1"; shift
    printf '\n==> %s\n' "$*" >&2
    if ! "$@"; then failed+=("$name"); fi
}

if cargo nextest --version >/dev/null 2>&1; then
    step tests cargo nextest run --workspace --no-fail-fast "$@"
else
    printf '%s\n' \
        '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' \
        '!!! cargo-nextest is MISSING: falling back to "cargo test", which has no     !!!' \
        '!!! per-test timeout (.config/nextest.toml is ignored): a hung test hangs.   !!!' \
        '!!! Install it: cargo install --locked cargo-nextest                         !!!' \
        '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
    step tests cargo test --workspace --no-fail-fast "$@"
fi
step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets -- -D warnings

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\ntests/run.sh: FAILED: %s\n' "${failed[*]}" >&2
    exit 1
fi
printf '\ntests/run.sh: all passed\n' >&2
