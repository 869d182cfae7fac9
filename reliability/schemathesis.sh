#!/usr/bin/env bash
# API contract: schemathesis (PyPI) against the OpenAPI document of a running
# `tako serve`, with its first admin token: every operation is called with
# generated (valid and invalid) input and the run fails on any 5xx
# (not_a_server_error) or any response that violates its schema
# (response_schema_conformance). DELETE /api/v1/tokens/{id} runs last, alone.
# The webhook routes (/hooks/github, gitea, gitlab, bitbucket) are in the
# document too: without the server's secret every generated delivery must be a
# 4xx with an error body.
#
# Usage: reliability/schemathesis.sh [MAX_EXAMPLES]   (default 100 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
max_examples="${1:-100}"
target="${CARGO_TARGET_DIR:-target}"
venv="target/schemathesis-venv"

if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "== schemathesis venv ($venv)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check schemathesis
fi
"$venv/bin/schemathesis" --version

echo "== cargo build --release -p tako"
cargo build --release --locked -q -p tako

work="$(mktemp -d -t tako-schemathesis-XXXXXX)"
out="$work/serve.out"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

TAKO_LOG=warn TAKO_WEBHOOK_SECRET=schemathesis \
  "$target/release/tako" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$out" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q '^Tako listening on http://' "$out" 2>/dev/null && break
  sleep 0.1
done
address="$(sed -n 's|^Tako listening on http://\([^ ]*\).*|\1|p' "$out")"
token="$(grep -Eo '^ *tako_[A-Za-z0-9_]+' "$out" | head -1 | tr -d ' ')"
if [ -z "$address" ] || [ -z "$token" ]; then
  echo "the server did not start or print a token:" >&2
  cat "$out" "$work/serve.err" >&2
  exit 1
fi
started=$(date +%s)
status=0
# Revoking a token is tested last, on its own: revoking the run's own token
# would turn every later request into a 401.
revoke='DELETE /api/v1/tokens/{id}'
for pass in "--exclude-name" "--include-name"; do
  echo "== schemathesis ($pass '$revoke') against http://$address/api/v1/openapi.json, max $max_examples examples per operation"
  "$venv/bin/schemathesis" run "http://$address/api/v1/openapi.json" \
    -H "Authorization: Bearer $token" \
    "$pass" "$revoke" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$max_examples" \
    --generation-database none \
    --report junit --report-dir "$work/report" || status=$?
done
echo "== schemathesis exit $status after $(( $(date +%s) - started ))s"
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "the server died during the run" >&2
  status=1
fi
if grep -Eq 'panicked|internal server error|API request failed' "$work/serve.err"; then
  echo "the server logged errors:" >&2
  grep -E 'panicked|internal server error|API request failed' "$work/serve.err" | head -20 >&2
  status=1
fi
exit "$status"
