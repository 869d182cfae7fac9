#!/usr/bin/env bash
# Log throughput through the server: a step printing 1,000,000 short lines,
# deployed by a real `tako serve` (release build) after a signed push,
# against the same script with its output to a file. Goal: the deployment
# (started -> finished, log fully stored) <= 1.3x the plain run, and the
# server's RSS flat (not growing with the log). Prints median, min and max of
# RUNS runs, the server's RSS before/after each deployment and its peak.
# Details: bench/log_throughput_server.py. (bench/log-throughput.sh measures
# `tako run`, without the server.)
#
#   bench/log-throughput-server.sh [RUNS] [LINES]   (default 3 runs, 1000000)
#   TAKO_BIN=path/to/tako bench/log-throughput-server.sh  (skip the build)
#
# Only 127.0.0.1 is used. Everything lives in a temp directory, removed on
# exit (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
lines=${2:-1000000}
read -r -a serve_args <<< "${SERVE_ARGS:-}"
if [ -n "${TAKO_BIN:-}" ]; then
  tako=$TAKO_BIN
else
  cargo build --release --quiet -p tako
  tako=${CARGO_TARGET_DIR:-$PWD/target}/release/tako
fi
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "$(date -u '+%Y-%m-%d %H:%M UTC')"
python3 bench/log_throughput_server.py "$runs" "$lines" "$tako" "$work" "${serve_args[@]}"
