#!/usr/bin/env bash
# The agent benchmarks of issue 13, side by side with Buildbot in the same
# run: push → step running on an agent (paced, and where the time goes),
# PUSHES pushes to four agents (jobs/s, none lost) against Buildbot's
# builds/s with one worker, the agent's RSS idle and during a
# 1,000,000-line step, that step's log stored from an agent against the
# same step on the server, and an agent's SIGKILL → its job interrupted.
# Every part starts a fresh `tako serve` (release build) and real
# `tako agent run` processes. Details: bench/agents.py.
#
#   bench/agents.sh [RUNS] [PUSHES]                (default 1 run of 1000)
#   PACED=50 LINES=1000000 bench/agents.sh 3 1000
#   PARTS="latency buildbot" bench/agents.sh         (some parts only: latency
#       throughput log interrupt buildbot)
#   TAKO_BIN=path/to/tako bench/agents.sh          (skip `cargo build --release`)
#   BB_VENV=/tmp/bb-venv bench/agents.sh           (Buildbot's venv; made with the
#       peer recipe's setup.sh when missing, outside the repository)
#   BB_RECIPE=dir                                  (the recipe: setup.sh, master.cfg;
#       default ../shared/peers/buildbot beside the checkout)
#   KEEP=1 BENCH_TAKO_LOG=info bench/agents.sh     (keep the servers' and agents' logs)
#
# Takes about 12 minutes a run on the 2-core machine (Buildbot's 1,000
# builds ~6 min, the lease part ~1 min). Only 127.0.0.1 is used; every
# port is chosen free at random (port 0, or a free port for Buildbot).
# Everything lives in a temp directory, removed on exit (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
pushes=${2:-1000}
paced=${PACED:-50}
lines=${LINES:-1000000}
parts=${PARTS:-latency throughput log interrupt buildbot}
recipe=${BB_RECIPE:-$(cd .. && pwd)/shared/peers/buildbot}
venv=${BB_VENV:-${TMPDIR:-/tmp}/bb-venv}

if [ -n "${TAKO_BIN:-}" ]; then
  tako=$TAKO_BIN
else
  cargo build --release --quiet -p tako
  tako=${CARGO_TARGET_DIR:-$PWD/target}/release/tako
fi
case " $parts " in
  *" buildbot "*)
    [ -f "$recipe/master.cfg" ] || { echo "no Buildbot recipe in $recipe (set BB_RECIPE)" >&2; exit 2; }
    if [ ! -x "$venv/bin/buildbot" ] || [ ! -x "$venv/bin/buildbot-worker" ]; then
      BB_VENV=$venv bash "$recipe/setup.sh" >&2
    fi
    ;;
esac

work=$(mktemp -d)
cleanup() {
  # the driver stops what it started; this catches what an interrupted
  # driver left (process groups it created are its children's)
  if [ -n "${driver:-}" ]; then
    kill "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results=$work/results.jsonl
: > "$results"
echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "$runs run(s): parts $parts; $paced paced pushes, $pushes pushes, $lines-line step" >&2
for run in $(seq "$runs"); do
  python3 bench/agents.py run "$tako" "$venv" "$recipe" "$work/run$run" "$paced" "$pushes" \
    "$lines" "$parts" >> "$results" &
  driver=$!
  wait "$driver"
  driver=
  [ -n "${KEEP:-}" ] || rm -rf "$work/run$run"
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -sr)"
echo
python3 bench/agents.py summary "$results"
