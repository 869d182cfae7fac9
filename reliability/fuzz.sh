#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 600) and
# reports crashes. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`);
# on a stable toolchain the nightly flags are enabled with RUSTC_BOOTSTRAP=1.
# Seeds come from fuzz/seeds/<target>; the growing corpus stays in
# fuzz/corpus/<target> (ignored by git), crashes in fuzz/artifacts/<target>.
#
# Usage: reliability/fuzz.sh [SECONDS] [TARGET...]
# Exit status: 0 when no target crashed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(takofile octostache psd1 webhook_payload forge_payload)
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

echo "== building fuzz targets"
cargo fuzz build -O -a >/dev/null

crashed=()
summary=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  before=$(find "artifacts/$target" -type f | wc -l)
  log="artifacts/$target.log"
  echo "== fuzzing $target for ${seconds}s"
  started=$(date +%s)
  status=0
  # -rss_limit_mb bounds memory blow-ups (alias bombs); -timeout flags any
  # single input that takes more than 10 s (a hang) as a crash.
  cargo fuzz run -O -a "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - started ))
  after=$(find "artifacts/$target" -type f | wc -l)
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)
  corpus=$(find "corpus/$target" -type f | wc -l)
  line="$target: ${elapsed}s, ${runs:-?} executions, corpus $corpus files, new crash artifacts $((after - before)), exit $status"
  echo "$line"
  summary+=("$line")
  if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
    crashed+=("$target")
    tail -40 "$log" >&2
  fi
done

echo "== fuzz summary ($(date -u +%Y-%m-%dT%H:%MZ))"
printf '%s\n' "${summary[@]}"
if [ ${#crashed[@]} -gt 0 ]; then
  echo "CRASHES in: ${crashed[*]} (see fuzz/artifacts/)" >&2
  exit 1
fi
echo "0 crashes"
