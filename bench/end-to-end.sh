#!/usr/bin/env bash
# End to end: signed pushes into a real `tako serve` (release build), one
# project mapping the branches env0..env9 to ten environments, each
# deployment one `true` step, the repository a real bare git repository
# reached through file://. Measures completed deployments per second over a
# burst of PUSHES pushes and push-to-first-step (the push's 202 to the step's
# `started_at` as the API reports it) p50/p99, in the burst (queueing
# included) and for PACED pushes sent at RATE per second (the pipeline's own
# latency). One warm-up push first (the mirror's first clone). Every run
# starts a fresh server in a fresh directory. Details: bench/end_to_end.py.
#
#   bench/end-to-end.sh [RUNS] [PUSHES]            (default 3 runs of 1000)
#   ENVIRONMENTS=10 PACED=100 RATE=5 bench/end-to-end.sh
#   SERVE_ARGS="--max-concurrent-deployments 8" bench/end-to-end.sh
#   TAKO_BIN=path/to/tako bench/end-to-end.sh     (skip `cargo build --release`)
#   KEEP=1 BENCH_TAKO_LOG=warn,tako_server=debug bench/end-to-end.sh   (server log level)
#
# Only 127.0.0.1 is used. Everything lives in a temp directory, removed on
# exit (KEEP=1 keeps it, e.g. to read the server logs).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
pushes=${2:-1000}
environments=${ENVIRONMENTS:-10}
paced=${PACED:-100}
rate=${RATE:-5}
read -r -a serve_args <<< "${SERVE_ARGS:-}"

if [ -n "${TAKO_BIN:-}" ]; then
  tako=$TAKO_BIN
else
  cargo build --release --quiet -p tako
  tako=${CARGO_TARGET_DIR:-$PWD/target}/release/tako
fi
bench=$PWD/bench
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

results=$work/results.tsv
: > "$results"
echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "$runs runs: $pushes pushes (burst) + $paced paced at $rate/s, $environments environments," \
  "server args: ${serve_args[*]:-(defaults)}" >&2
for run in $(seq "$runs"); do
  python3 "$bench/end_to_end.py" run "$tako" "$work/run$run" "$pushes" "$environments" \
    "$paced" "$rate" "${serve_args[@]}" | tee -a "$results" >&2
  [ -n "${KEEP:-}" ] || rm -rf "$work/run$run" # ~0.5 MB of working directory per deployment
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $pushes pushes over $environments" \
  "environments, $paced paced at $rate/s"
echo
python3 "$bench/end_to_end.py" summary "$results"
