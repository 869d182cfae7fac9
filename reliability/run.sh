#!/usr/bin/env bash
# The whole reliability suite, full size (see docs/reliability.md):
#   1. the bad-input corpus and the process-hygiene test (cargo test),
#   2. crash durability and redelivery: 1000 pushes x 5 SIGKILLs,
#   3. the API contract: schemathesis against the running server,
#   4. every fuzz target for FUZZ_SECONDS (default 600) each.
# Each part runs even when an earlier one failed; the exit status is 1 when
# any failed.
#
# Usage: reliability/run.sh   (FUZZ_SECONDS, CRASH_PUSHES, CRASH_ROUNDS override)
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
  local name="$1"
  shift
  echo
  echo "######## $name: $*"
  local started
  started=$(date +%s)
  if "$@"; then
    echo "######## $name: passed in $(( $(date +%s) - started ))s"
  else
    echo "######## $name: FAILED after $(( $(date +%s) - started ))s"
    failed+=("$name")
  fi
}

step corpus cargo test --locked -p tako --test bad_input_corpus -- --nocapture
step hygiene cargo test --locked -p tako-exec --test hygiene -- --nocapture
step crash reliability/crash.sh "${CRASH_PUSHES:-1000}" "${CRASH_ROUNDS:-5}"
step schemathesis reliability/schemathesis.sh
step fuzz reliability/fuzz.sh "${FUZZ_SECONDS:-600}"

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "reliability suite FAILED: ${failed[*]}"
  exit 1
fi
echo "reliability suite passed ($(date -u +%Y-%m-%dT%H:%MZ))"
