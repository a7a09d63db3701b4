#!/usr/bin/env bash
# The telemetry thread's CPU at a given mqtt.telemetry.interval_ms (docs/mqtt.md, "How often"):
# `robotd sim --world iot-rig` with a copy of examples/iot-rig-sim.yaml publishing telemetry every
# INTERVAL_MS, the thread `robotd-telemetr` (its name, cut at 15 characters) found in
# /proc/<pid>/task/*/comm, its time on a CPU read from /proc/<pid>/task/<tid>/schedstat (ns) after
# WARMUP s and again SECONDS s later. Prints one line: interval, CPU % of one core, and the whole process's.
#   usage: scripts/telemetry-cpu.sh INTERVAL_MS [SECONDS] [WARMUP]   (after swift build -c release)
set -euo pipefail
cd "$(dirname "$0")/.."
interval=${1:?usage: scripts/telemetry-cpu.sh INTERVAL_MS [SECONDS] [WARMUP]}
seconds=${2:-30}
warmup=${3:-5}
robotd=${ROBOTD:-.build/release/robotd}
dir=$(mktemp -d /tmp/robotd-telemetry-cpu.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
sed "s/^  keepalive_s: 5$/  keepalive_s: 5\n  telemetry: {interval_ms: $interval}/" examples/iot-rig-sim.yaml > "$dir/rig.yaml"
grep -q "interval_ms: $interval" "$dir/rig.yaml"
"$robotd" check --config "$dir/rig.yaml" > /dev/null
"$robotd" sim --world iot-rig --config "$dir/rig.yaml" --seconds $((seconds + warmup + 5)) > "$dir/out" 2> "$dir/err" &
pid=$!
# ns on a CPU: of one task, and of the whole process (its tasks summed).
cpu() { awk '{ print $1 }' "/proc/$pid/task/$1/schedstat"; }
proc_cpu() { cat /proc/$pid/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
sleep "$warmup"
tid=""
for t in /proc/$pid/task/*; do
    if [ "$(cat "$t/comm")" = "robotd-telemetr" ]; then tid=${t##*/}; fi
done
[ -n "$tid" ] || { echo "no robotd-telemetr thread in $pid" >&2; cat "$dir/err" >&2; exit 1; }
a=$(cpu "$tid"); p=$(proc_cpu); t0=$(date +%s.%N)
sleep "$seconds"
b=$(cpu "$tid"); q=$(proc_cpu); t1=$(date +%s.%N)
awk -v i="$interval" -v a="$a" -v b="$b" -v p="$p" -v q="$q" -v t0="$t0" -v t1="$t1" 'BEGIN {
    wall = t1 - t0
    printf "interval_ms %s: telemetry thread %.2f %% of a core, whole process %.1f %% (%.1f s)\n", i, (b - a) / 1e7 / wall, (q - p) / 1e7 / wall, wall
}'
