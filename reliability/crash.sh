#!/usr/bin/env bash
# Crash durability and redelivery: builds the release binary, then
# reliability/crash.py sends PUSHES signed pushes per round (default 1000)
# from 8 concurrent senders, SIGKILLs the server at a random moment, restarts,
# ROUNDS times (default 5), and checks the `deliveries` table: acknowledged
# deliveries lost = 0, duplicated = 0; then every delivery is sent twice in
# shuffled order: 0 duplicates. CRASH_SEED=N makes the kill moments repeat.
#
# Usage: reliability/crash.sh [PUSHES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
pushes="${1:-1000}"
rounds="${2:-5}"
target="${CARGO_TARGET_DIR:-target}"
echo "== cargo build --release -p tako"
cargo build --release --locked -q -p tako
exec python3 reliability/crash.py "$target/release/tako" "$pushes" "$rounds"
