#!/usr/bin/env bash
# History scale: read latency of the API (and later the web UI) with
# DEPLOYMENTS finished deployments in the store. A data directory is
# initialised by one start and stop of `tako serve` (master key, admin
# token), filled by crates/store/examples/seed_history.rs through the Store
# trait (10 projects, each release deployed to DevTest, Staging and
# Production, three steps and six log lines per deployment, one in 25
# failed; and history-idle, a project without deployments: nothing matches
# its filter, nor state=queued), then served again; each URL below is
# requested with wrk (bench/history.lua: p50/p95/p99) for DURATION seconds
# per run, at each concurrency. Server on CPU 0, wrk on CPU 1 (taskset), as bench/intake.sh.
#
#   bench/history-scale.sh [RUNS] [DEPLOYMENTS]   (default 3 runs, 100000)
#   DURATION=5 CONCURRENCY="1 4" PROJECTS=10 bench/history-scale.sh
#   TAKO_BIN=path/to/tako SEED_BIN=path/to/seed_history bench/history-scale.sh
#   HISTORY_DATA=/some/dir bench/history-scale.sh   (seed once into that
#       directory and reuse it on later runs; it must not be used otherwise)
#
# TAKO_BIN and SEED_BIN must come from the same tree (the same migrations).
# Seeding runs under eatmydata when it is installed (fsync is a no-op for the
# seeding only: ~6,000 deployments/s instead of ~100/s); the server never
# does. Only 127.0.0.1 is used. The temp directory is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# The URLs to measure, relative to the server. wrk sends the API token as a
# bearer token and a web UI session cookie (signed in with the same token),
# so API routes and UI pages (target: <= 20 ms server-side per page) mix.
URLS=(
  "/ui/"
  "/ui/projects/history-03"
  "/ui/releases/16000"
  "/ui/deployments/50000"
  "/ui/deliveries"
  "/api/v1/deployments?limit=50"
  "/api/v1/deployments?limit=50&project=history-03"
  "/api/v1/deployments?limit=50&project=history-03&environment=Production"
  "/api/v1/deployments?limit=50&state=failed"
  "/api/v1/deployments?limit=50&project=history-03&state=failed"
  "/api/v1/deployments?limit=50&project=history-idle"
  "/api/v1/deployments?limit=50&state=queued"
  "/api/v1/projects/history-03/releases?limit=50"
  "/metrics"
)

runs=${1:-3}
deployments=${2:-100000}
projects=${PROJECTS:-10}
duration=${DURATION:-5}
concurrency=${CONCURRENCY:-1 4}

# shellcheck source=bench/lib.sh
source bench/lib.sh
needs wrk
build_tako
build_seed

start_server() { # data_dir log -> sets server_pid, port
  port=$(free_port)
  local started
  started=$(TAKO_LOG=warn python3 "$bench/intake_probe.py" start "$2" \
    "http://127.0.0.1:$port/healthz" \
    "${pin0[@]}" "$tako" serve --listen "127.0.0.1:$port" --data-dir "$1")
  read -r server_pid _ <<< "$started"
}

data=${HISTORY_DATA:-$work/history}
if [ -f "$data/bench-token" ] && [ -f "$data/tako.db" ]; then
  echo "reusing $data (seeded earlier: $(cat "$data/bench-seeded"))" >&2
else
  # First start: the master key, the node id and the admin token (printed once).
  start_server "$data" "$work/init.log"
  stop_server
  token=$(grep -o 'tako_[0-9a-f]\{40\}' "$work/init.log" | head -1)
  [ -n "$token" ] || { echo "no admin token in $work/init.log" >&2; exit 1; }
  (umask 077; echo "$token" > "$data/bench-token")
  wrap=()
  if command -v eatmydata >/dev/null; then wrap=(eatmydata); else
    echo "eatmydata not installed: seeding with fsync on every commit (slow)" >&2
  fi
  echo "seeding $deployments deployments over $projects projects" >&2
  "${wrap[@]}" "$seed" "$data/tako.db" "$deployments" "$projects" >&2
  echo "$deployments deployments, $projects projects" > "$data/bench-seeded"
fi
token=$(cat "$data/bench-token")

start_server "$data" "$work/server.log"
echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
rows=$work/rows.tsv
: > "$rows"
# A web UI session: the cookie the sign-in form sets for the same token.
cookie=$(curl -s -D - -o /dev/null --data-urlencode "token=$token" --data "next=%2Fui%2F" \
  "http://127.0.0.1:$port/ui/sign-in" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p')
[ -n "$cookie" ] || { echo "signing in to the web UI gave no cookie" >&2; exit 1; }
export HISTORY_COOKIE=$cookie
for url in "${URLS[@]}"; do # check each URL answers 200, and warm the caches
  status=$(curl -s -o "$work/answer" -w '%{http_code}' -H "Authorization: Bearer $token" \
    -H "Cookie: $cookie" \
    "http://127.0.0.1:$port$url")
  [ "$status" = 200 ] || { echo "$url answered $status: $(head -c 300 "$work/answer")" >&2; exit 1; }
  echo "$url: 200, $(stat -c %s "$work/answer") bytes" >&2
  HISTORY_TOKEN=$token "${pin1[@]}" wrk -t1 -c1 -d1s -s "$bench/history.lua" \
    "http://127.0.0.1:$port$url" > /dev/null
done
for run in $(seq "$runs"); do
  for c in $concurrency; do
    for url in "${URLS[@]}"; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      out=$(HISTORY_TOKEN=$token "${pin1[@]}" wrk -t1 -c"$c" -d"${duration}s" --timeout 10s --latency \
        -s "$bench/history.lua" "http://127.0.0.1:$port$url")
      line=$(grep '^RESULT' <<< "$out")
      printf '%s\t%s\t%s\t%s\t%s\n' "$url" "$c" "$run" "$load" "$line" >> "$rows"
      echo "run $run c$c $url: $line load $load" >&2
    done
  done
done
read -r rss hwm < <(python3 "$bench/intake_probe.py" rss "$server_pid")
stop_server

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(cat "$data/bench-seeded")," \
  "database $(du -m "$data/tako.db" | cut -f1) MiB, ${duration} s per measurement," \
  "server RSS at the end $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB)"
echo
python3 - "$rows" <<'PY'
import re, statistics, sys
rows = []
with open(sys.argv[1]) as f:
    for line in f:
        url, c, run, load, result = line.rstrip("\n").split("\t")
        fields = dict(re.findall(r"(\w+)=(\S+)", result))
        rows.append((url, int(c), int(run), float(load), fields))
def mmm(xs, fmt):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"
print("Median (min–max) over the runs; latencies in ms.\n")
print("| URL | c | runs | requests/s | p50 | p95 | p99 | non-2xx | load |")
print("|---|---|---|---|---|---|---|---|---|")
keys = []
for url, c, *_ in rows:
    if (url, c) not in keys:
        keys.append((url, c))
for url, c in sorted(keys, key=lambda k: (k[1], [r[0] for r in rows].index(k[0]))):
    group = [r for r in rows if r[0] == url and r[1] == c]
    rps = [int(g[4]["requests"]) / (int(g[4]["duration_us"]) / 1e6) for g in group]
    ms = lambda key: [int(g[4][key]) / 1000 for g in group]
    bad = sum(int(g[4]["non2xx"]) for g in group)
    loads = ", ".join(f"{g[3]:.2f}" for g in group)
    print(f"| `{url}` | {c} | {len(group)} | {mmm(rps, '{:,.0f}')} | {mmm(ms('p50_us'), '{:.2f}')} "
          f"| {mmm(ms('p95_us'), '{:.2f}')} | {mmm(ms('p99_us'), '{:.2f}')} | {bad} | {loads} |")
PY
