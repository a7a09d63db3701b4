#!/usr/bin/env bash
# Creates .build/venv with the Python peers' packages (scripts/peers/requirements.txt), from PyPI.
# Idempotent: reinstalls only when the requirements changed. Called by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/venv
requirements=scripts/peers/requirements.txt
# Debian's interpreter (python3-venv belongs to it), not whichever python3 comes first on PATH.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
stamp="$venv/.requirements"
if [ -x "$venv/bin/python3" ] && [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
echo "setup: creating $venv ($(basename "$requirements"))"
mkdir -p .build
"$python" -m venv "$venv"
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
