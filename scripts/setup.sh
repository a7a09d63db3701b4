#!/usr/bin/env bash
# Installs the Debian packages robotd needs, only those missing. Idempotent; needs root (or sudo).
set -euo pipefail
packages=(libmosquitto-dev libserialport-dev libevdev-dev libsqlite3-dev mosquitto mosquitto-clients rt-tests pkg-config python3 python3-venv tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
# Debian starts no broker on its own here; tests start their own on a free loopback port.
command -v swift >/dev/null || {
  echo "setup: swift is not on PATH: Swift 6.1 or later must be on PATH. Debian does not package it:" >&2
  echo "setup: install the swift.org toolchain for Debian 12 and put its usr/bin on PATH, then run this again." >&2
  exit 1
}
# The Python peers' virtual environment (.build/venv: pyserial for `robotd bench e2e`, paho-mqtt and
# jsonschema for the telemetry tests' independent client).
"$(dirname "$0")/setup-venv.sh"
