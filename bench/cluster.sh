#!/usr/bin/env bash
# Several nodes on PostgreSQL against one node on SQLite, side by side in one
# run (issue 15 "Measured, not claimed", cluster spec §6): the intake at c64
# on both stores, idle and with deployments running behind the burst;
# deployments/s drained by one node and by three on one PostgreSQL; kill -9
# of a node to its queue moving on another. Details: bench/cluster.py.
#
#   bench/cluster.sh                           (release build, everything)
#   REQUESTS=20000 DEPLOYS=20000 DEPLOYS_E2E=1000 LEASE=10s SWEEP=2s bench/cluster.sh
#   PARTS="intake loaded" STORES=postgres bench/cluster.sh
#   TAKO_BIN=path/to/tako bench/cluster.sh     (skip `cargo build --release`)
#
# PostgreSQL from the system's binaries (Debian's postgresql package), wrk
# (Debian's wrk): installed when missing. Only 127.0.0.1 is used; everything
# lives in a temp directory, removed on exit (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null; then
  as_root apt-get update -qq && as_root apt-get install -y -qq wrk
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  as_root apt-get update -qq && as_root apt-get install -y -qq postgresql
fi
if [ -n "${TAKO_BIN:-}" ]; then
  tako=$TAKO_BIN
else
  cargo build --release --quiet -p tako
  tako=$PWD/target/release/tako
fi
work=$(mktemp -d)
chmod 755 "$work"
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "keeping $work" >&2; fi
python3 bench/cluster.py "$tako" "$work"
