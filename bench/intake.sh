#!/usr/bin/env bash
# Webhook intake: signed GitHub pushes into `tako serve` vs adnanh/webhook
# (Debian package `webhook`) with an HMAC trigger rule, in its default mode
# (answers before its command runs) and its wait-for-command mode
# (include-command-output-in-response). The same ~7.5 KB signed push
# (bench/intake_payload.py), the same load generator (wrk + bench/intake.lua),
# each request with its own delivery id.
#
#   bench/intake.sh [RUNS] [REQUESTS]        (default 3 runs of 20000 requests)
#   CONCURRENCY="16 64" SERVERS="tako webhook webhook-wait" bench/intake.sh
#   TAKO_BIN=path/to/tako bench/intake.sh     (skip `cargo build --release`)
#
# Server on CPU 0 (taskset -c 0; webhook's commands inherit it), wrk on CPU 1
# (taskset -c 1, -t2). Every run starts a fresh server in a fresh directory.
# Tako: every 202 must name a stored `deliveries` row; webhook: every
# acknowledged request must have run its command (one line appended per run).
# Only 127.0.0.1 is used. Everything lives in a temp directory, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
requests=${2:-20000}
concurrency=${CONCURRENCY:-16 64}
servers=${SERVERS:-tako webhook webhook-wait}
threads=2
secret=bench-intake-secret-$$

stop_ticks=100 # 50-ms ticks the server gets to stop
# shellcheck source=bench/lib.sh
source bench/lib.sh
needs wrk webhook
command -v taskset >/dev/null || as_root apt-get install -y -qq util-linux
build_tako

body=$work/push.json
signature=$(python3 "$bench/intake_payload.py" "$body" "$secret")
results=$work/results.tsv
: > "$results"

cat > "$work/record.sh" <<'SH'
#!/bin/sh
# one line per run of the hook's command: the delivery id
echo "$1" >> "$RUNS_LOG"
echo "ran $1"
SH
chmod +x "$work/record.sh"

echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "payload: $(stat -c %s "$body") bytes, $runs runs x $requests requests, c in {$concurrency}" >&2

one_run() { # server concurrency run
  local server=$1 c=$2 run=$3
  local dir=$work/$server-c$c-r$run port out started rss_idle load line
  mkdir -p "$dir/wrk"
  port=$(free_port)
  case $server in
    tako)
      started=$(TAKO_WEBHOOK_SECRET=$secret TAKO_LOG=warn python3 "$bench/intake_probe.py" start \
        "$dir/server.log" "http://127.0.0.1:$port/healthz" \
        taskset -c 0 "$tako" serve --listen "127.0.0.1:$port" --data-dir "$dir/data")
      ;;
    webhook | webhook-wait)
      local wait=false
      [ "$server" = webhook-wait ] && wait=true
      cat > "$dir/hooks.json" <<JSON
[{
  "id": "github",
  "execute-command": "$work/record.sh",
  "command-working-directory": "$dir",
  "pass-arguments-to-command": [{"source": "header", "name": "X-GitHub-Delivery"}],
  "include-command-output-in-response": $wait,
  "trigger-rule-mismatch-http-response-code": 401,
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$secret",
    "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}
}]
JSON
      started=$(RUNS_LOG=$dir/runs.log python3 "$bench/intake_probe.py" start \
        "$dir/server.log" "http://127.0.0.1:$port/" \
        taskset -c 0 webhook -hooks "$dir/hooks.json" -ip 127.0.0.1 -port "$port")
      ;;
  esac
  read -r server_pid startup_ms <<< "$started"
  sleep 1
  read -r rss_idle _ < <(python3 "$bench/intake_probe.py" rss "$server_pid")
  load=$(cut -d' ' -f1 /proc/loadavg)

  out=$(INTAKE_BODY=$body INTAKE_SIGNATURE=$signature INTAKE_REQUESTS=$requests \
    INTAKE_THREADS=$threads INTAKE_PREFIX="r${run}c$c" INTAKE_OUT=$dir/wrk \
    taskset -c 1 wrk -t"$threads" -c"$c" -d120s --timeout 10s --latency \
    -s "$bench/intake.lua" "http://127.0.0.1:$port/hooks/github")
  echo "$out" > "$dir/wrk.txt"
  read -r _ rss_peak < <(python3 "$bench/intake_probe.py" rss "$server_pid")

  line=$(grep '^RESULT' <<< "$out")
  local responses duration p50 p99 max statuses errors acked rps
  responses=$(sed -E 's/.*responses=([0-9]+).*/\1/' <<< "$line")
  duration=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<< "$line")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<< "$line")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<< "$line")
  max=$(sed -E 's/.*max_us=([0-9]+).*/\1/' <<< "$line")
  statuses=$(sed -E 's/.*statuses=([^ ]*).*/\1/' <<< "$line")
  errors=$(sed -E 's/.*errors=([^ ]*).*/\1/' <<< "$line")
  local ok_status=200
  [ "$server" = tako ] && ok_status=202
  acked=$(tr ',' '\n' <<< "$statuses" | awk -F: -v s="$ok_status" '$1==s {print $2}')
  acked=${acked:-0}
  # requests/s counts accepted requests only
  rps=$(python3 -c "print(f'{$acked / ($duration / 1e6):.0f}')")

  local carried processed lost settle
  if [ "$server" = tako ]; then
    read -r carried processed lost settle < <(python3 "$bench/intake_probe.py" tako \
      "$dir/data/tako.db" "$dir/wrk/acked")
  else
    local unique missing
    read -r carried unique missing settle < <(python3 "$bench/intake_probe.py" webhook \
      "$dir/runs.log" "$dir/wrk/acked")
    processed=$unique
    if [ "$missing" -ge 0 ]; then lost=$missing; else lost=$((acked - unique)); fi
  fi
  stop_server

  printf '%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%s\t%s\t%s\t%s\n' \
    "$server" "$c" "$run" "$rps" "$(bc -l <<< "$p50/1000")" "$(bc -l <<< "$p99/1000")" \
    "$(bc -l <<< "$max/1000")" "$responses" "$acked" "$carried" "$processed" "$lost" \
    "$startup_ms" "$(bc -l <<< "$rss_idle/1024")" "$(bc -l <<< "$rss_peak/1024")" \
    "$settle" "$load" "$statuses" "$errors" >> "$results"
  echo "$server c$c run $run: $rps req/s, p50 $((p50/1000)) ms, p99 $((p99/1000)) ms," \
    "acked $acked, carried out $carried, lost $lost, load $load" >&2
}

for run in $(seq "$runs"); do
  for c in $concurrency; do
    for server in $servers; do
      one_run "$server" "$c" "$run"
    done
  done
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, payload $(stat -c %s "$body") bytes," \
  "$requests requests per run, wrk -t$threads on CPU 1, server on CPU 0"
echo
python3 "$bench/intake_probe.py" summary "$results"
