#!/usr/bin/env bash
# Starts and stops the local model server set up by scripts/setup-model.sh (docs/local-model.md):
# llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct, on loopback only.
#
#   scripts/model-server.sh start [--port N] [--ctx N] [--timeout S] [--log FILE]
#       Starts the server in the background (its own session, so a Ctrl-C meant for the caller does not
#       reach it) on 127.0.0.1:N (default: a free port), waits until GET /v1/models answers, then prints
#       one line on stdout: `port=N pid=P`. Exits 1, with the log's tail, if it dies or is not ready in
#       S seconds (default 120).
#   scripts/model-server.sh stop PID
#       Stops that server (SIGTERM, SIGKILL after 10 s) and returns once it is gone; refuses a PID that is
#       not a llama_cpp.server.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/model-venv
python="$venv/bin/python3"
model="$venv/model.gguf"
# The model's name in requests and in /v1/models, whatever the file is called.
alias_name=smollm2-135m-instruct

fail() { echo "model-server: error: $*" >&2; exit 1; }
usage() { sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

is_server() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- '-m llama_cpp.server'; }

start() {
  local port="" ctx=2048 timeout=120 log=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port=${2:?--port needs a number}; shift 2 ;;
      --ctx) ctx=${2:?--ctx needs a number}; shift 2 ;;
      --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
      --log) log=${2:?--log needs a file}; shift 2 ;;
      *) usage ;;
    esac
  done
  [ -x "$python" ] && [ -f "$model" ] || fail "no model server in $venv: run scripts/setup-model.sh"
  if [ -z "$port" ]; then
    # A free port now; the server binds it a moment later (if another process takes it in between,
    # the server exits and this says so).
    port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  [ -n "$log" ] || log=".build/model-server-$port.log"
  # --n_threads 2: this machine's two cores, for prompt and generation alike. --n_ctx: a plan's prompt and
  # answer fit in 2048 tokens; a smaller context is a smaller KV cache and a faster start.
  # OMP_WAIT_POLICY=PASSIVE: ggml's OpenMP threads sleep instead of spinning between steps; on a busy
  # 2-core machine spinning threads starve each other (requests of 3 s took 20-50 s; docs/local-model.md).
  # The server starts clean, whoever calls this script: a session of its own (setsid), no blocked
  # signal, none of the caller's descriptors past 0-2. Foundation's Process, on Linux, spawns from a
  # thread that blocks SIGTERM, and the mask is inherited: `stop` then needed SIGKILL after 10 s. It
  # also learns of this script's exit when a socket the script inherited closes: a server holding it
  # kept the caller waiting for `start` as long as the server lived.
  local launcher='import os, signal, sys
try:
    os.setsid()
except PermissionError:
    pass  # already a process group leader (a caller with job control): a session is a nicety
signal.pthread_sigmask(signal.SIG_SETMASK, set())
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
os.execv(sys.executable, [sys.executable, "-m", "llama_cpp.server", *sys.argv[1:]])'
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY-PASSIVE} \
    "$python" -c "$launcher" --model "$model" --model_alias "$alias_name" \
      --host 127.0.0.1 --port "$port" --n_ctx "$ctx" --n_threads 2 --n_threads_batch 2 \
      </dev/null >"$log" 2>&1 &
  local pid=$!
  # Ready when /v1/models answers 200; failed when the process is gone or the time is up.
  if ! "$python" - "$port" "$pid" "$timeout" <<'EOF'
import os, sys, time, urllib.request
port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print("model-server: error: the server exited before it was ready", file=sys.stderr)
        sys.exit(1)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
print(f"model-server: error: not ready after {timeout:g} s", file=sys.stderr)
sys.exit(1)
EOF
  then
    kill "$pid" 2>/dev/null || true
    tail -n 20 "$log" >&2
    fail "the model server did not start (log: $log)"
  fi
  echo "port=$port pid=$pid"
}

stop() {
  local pid=${1:-}
  [[ "$pid" =~ ^[0-9]+$ ]] || usage
  gone "$pid" && { echo "model-server: $pid is not running"; return 0; }
  is_server "$pid" || fail "process $pid is not a llama_cpp.server; not stopping it"
  kill -TERM "$pid"
  for _ in $(seq 100); do
    gone "$pid" && return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    gone "$pid" && return 0
    sleep 0.1
  done
  fail "process $pid is still there 5 s after SIGKILL"
}

# Gone: no such process, or dead and waiting for its parent (init, since `start` exited) to reap it.
gone() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 0
  [ -z "$state" ] || [ "$state" = Z ]
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) usage ;;
esac
