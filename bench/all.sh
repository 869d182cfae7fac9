#!/usr/bin/env bash
# Runs every benchmark of docs/benchmarks.md with modest defaults, one after
# the other, and prints each one's Markdown summary under a heading (the
# progress of each goes to standard error). Builds the release binary and
# the history seeding tool once; the scripts are then given TAKO_BIN and
# SEED_BIN.
#
#   bench/all.sh [RUNS]                      (default 3 runs of each)
#   BENCHES="end-to-end history" bench/all.sh 1   (only some; the names:
#       intake end-to-end log log-server history agents criterion)
#   bench/all.sh 3 > results.md
#
# Takes about 60 minutes with 3 runs on the 2-core machine (intake ~6 min,
# end to end ~6 min, criterion ~5 min; agents ~12 min a run, Buildbot's
# 1,000 builds most of it). Needs wrk and webhook (installed with apt-get
# when missing, as bench/intake.sh does) and python3; `agents` needs the
# Buildbot recipe (../shared/peers/buildbot, or BB_RECIPE) and makes its
# venv outside the repository when BB_VENV has none.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
benches=${BENCHES:-intake end-to-end log log-server history agents criterion}
target=${CARGO_TARGET_DIR:-$PWD/target}

if [ -z "${TAKO_BIN:-}" ]; then
  cargo build --release --quiet -p tako
  export TAKO_BIN=$target/release/tako
fi
if [ -z "${SEED_BIN:-}" ]; then
  cargo build --release --quiet -p tako-store --example seed_history
  export SEED_BIN=$target/release/examples/seed_history
fi

section() { printf '\n## %s\n\nload before: %s\n\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

for bench in $benches; do
  case $bench in
    intake)
      section "Webhook intake (bench/intake.sh $runs 20000)"
      bench/intake.sh "$runs" 20000
      ;;
    end-to-end)
      section "End to end (bench/end-to-end.sh $runs 1000)"
      bench/end-to-end.sh "$runs" 1000
      ;;
    log)
      section "Log throughput, tako run (bench/log-throughput.sh $runs)"
      bench/log-throughput.sh "$runs"
      ;;
    log-server)
      section "Log throughput through the server (bench/log-throughput-server.sh $runs)"
      bench/log-throughput-server.sh "$runs"
      ;;
    history)
      section "History scale (bench/history-scale.sh $runs 100000)"
      bench/history-scale.sh "$runs" 100000
      ;;
    agents)
      section "Agents, side by side with Buildbot (bench/agents.sh $runs 1000)"
      bench/agents.sh "$runs" 1000
      ;;
    criterion)
      section "Micro-benchmarks (criterion)"
      for target_bench in tako-github:intake tako-takofile:parse tako-octostache:substitute \
        tako-core:mask tako-store:intake; do
        package=${target_bench%%:*} name=${target_bench#*:}
        echo "### $package --bench $name"
        echo
        echo '```'
        # each benchmark's name, then its time and throughput (not the
        # change against the previous run that criterion adds)
        cargo bench --quiet -p "$package" --bench "$name" 2>/dev/null |
          awk '/^[A-Za-z_0-9.]+\// {print; n = /time:/ ? 1 : 0; next}
               /time:|thrpt:/ {if (n < 2) print; n++}' || true
        echo '```'
        echo
      done
      ;;
    *)
      echo "unknown benchmark $bench (known: intake end-to-end log log-server history agents criterion)" >&2
      exit 2
      ;;
  esac
done
