#!/usr/bin/env bash
# Log throughput: a step printing 1,000,000 short lines through `tako run`
# (output captured to a file) vs the same script with its output to a file.
# Goal: tako ≤ 1.3× the plain run. Prints median, min and max of RUNS runs.
#
#   bench/log-throughput.sh [RUNS]     (default 5)
#   TAKO_BIN=path/to/tako bench/log-throughput.sh   (skip the build)
#
# bench/log-throughput-server.sh does the same through `tako serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
if [ -n "${TAKO_BIN:-}" ]; then
  tako=$TAKO_BIN
else
  cargo build --release --quiet -p tako
  tako=${CARGO_TARGET_DIR:-$PWD/target}/release/tako
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

script='i=0; while [ $i -lt 1000000 ]; do echo "line $i of the log"; i=$((i+1)); done'
mkdir -p "$work/repo"
printf '%s\n' "$script" > "$work/repo/print.sh"
cat > "$work/repo/takofile" <<'YAML'
Project: LogBench
Steps:
  - Name: Print
    Script: print.sh
YAML

measure() { # command... -> seconds
  local start end
  start=$(date +%s.%N)
  "$@" > "$work/out.log" 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}

plain=(); through=()
for _ in $(seq "$runs"); do
  plain+=("$(measure bash "$work/repo/print.sh")")
  through+=("$(measure "$tako" run --env Bench "$work/repo")")
done
lines=$(grep -c 'of the log' "$work/out.log")
python3 - "$lines" "${plain[*]}" "${through[*]}" <<'PY'
import statistics, sys
lines = int(sys.argv[1])
plain = [float(x) for x in sys.argv[2].split()]
tako = [float(x) for x in sys.argv[3].split()]
def row(name, xs):
    return f"| {name} | {statistics.median(xs):.3f} s | {min(xs):.3f} s | {max(xs):.3f} s |"
print(f"lines seen in tako's output: {lines}")
print("| run | median | min | max |")
print("|---|---|---|---|")
print(row("script > file", plain))
print(row("tako run > file", tako))
print(f"ratio of medians: {statistics.median(tako) / statistics.median(plain):.2f}x (goal <= 1.30x)")
PY
