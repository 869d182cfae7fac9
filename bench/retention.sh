#!/usr/bin/env bash
# Retention under load: the webhook intake's p99 while a retention pass
# trims a large history, against the p99 without it (target: within 20 %),
# what the pass removed, and that the database file shrank.
#
# A data directory is initialised by one start and stop of `tako serve` and
# seeded with DEPLOYMENTS finished deployments and their logs through the
# Store trait (crates/store/examples/seed_history.rs: 10 projects, each
# release deployed to DevTest, Staging and Production, three steps and six
# log lines per deployment). Each run works on a fresh copy of it, served
# with `retention_releases = KEEP` (the newest KEEP releases per project and
# environment: nearly all of the history goes, with its deployments, steps
# and logs) and no background pass (`retention_interval = off`):
#
#   0. warm-up: the same load, untimed (the first pushes into a fresh copy
#      grow its WAL file, which slowed whichever timed load came first);
#   1. baseline: wrk pushes REQUESTS signed webhooks (bench/intake.lua, the
#      generator of bench/intake.sh) with no retention running;
#   2. with retention: `POST /api/v1/admin/retention` starts one pass, and
#      the same load runs while it works; the pass must still be running
#      when wrk ends (otherwise the run says so);
#   3. once, on its own fresh copy with no pushes (each run's pushes add
#      ~7.5 KB of delivery each to its file): a pass, the server
#      stopped (the WAL checkpointed), the database file measured before
#      and after.
#
# Each load also reports the store calls over 20 ms the server logged while
# it ran (count and longest; the store's tako_store::slow debug log).
#
#   bench/retention.sh [RUNS] [DEPLOYMENTS]    (default 3 runs, 100000)
#   REQUESTS=30000 CONCURRENCY=16 KEEP=10 bench/retention.sh
#   TAKO_BIN=path/to/tako SEED_BIN=path/to/seed_history bench/retention.sh
#
# TAKO_BIN and SEED_BIN must come from the same tree (the same migrations).
# Seeding runs under eatmydata when installed (installed if missing); the
# server never does. Server on CPU 0, wrk on CPU 1 (taskset). Only
# 127.0.0.1 is used. The temp directory is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
deployments=${2:-100000}
requests=${REQUESTS:-30000}
c=${CONCURRENCY:-16}
keep=${KEEP:-10}
threads=2
secret=bench-retention-secret-$$

stop_ticks=600 # 50-ms ticks the server gets to stop
# shellcheck source=bench/lib.sh
source bench/lib.sh
needs wrk eatmydata curl
build_tako
build_seed

start_server() { # data_dir log -> sets server_pid, port
  port=$(free_port)
  local started
  started=$(TAKO_LOG=warn,tako_server::retention=info,tako_store::slow=debug TAKO_WEBHOOK_SECRET=$secret TAKO_RETENTION_RELEASES=$keep \
    TAKO_RETENTION_INTERVAL=off python3 "$bench/intake_probe.py" start "$2" \
    "http://127.0.0.1:$port/healthz" \
    "${pin0[@]}" "$tako" serve --listen "127.0.0.1:$port" --data-dir "$1")
  read -r server_pid _ <<< "$started"
}

# The seeded history, once.
seeded=$work/seeded
start_server "$seeded" "$work/init.log"
stop_server
token=$(grep -o 'tako_[0-9a-f]\{40\}' "$work/init.log" | head -1)
[ -n "$token" ] || { echo "no admin token in $work/init.log" >&2; exit 1; }
echo "seeding $deployments deployments" >&2
seed_started=$(date +%s)
eatmydata "$seed" "$seeded/tako.db" "$deployments" 10 >&2
echo "seeded in $(( $(date +%s) - seed_started )) s" >&2

body=$work/push.json
signature=$(python3 "$bench/intake_payload.py" "$body" "$secret")
rows=$work/rows.tsv
: > "$rows"
echo "machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# The store calls over 20 ms the server logged after line $2 of log $1:
# "count max_ms" (tako_store::slow, debug).
slow_calls() {
  tail -n +"$(( $2 + 1 ))" "$1" | sed 's/\x1b\[[0-9;]*m//g' | grep -a 'a slow store call' |
    grep -o 'took_ms=[0-9]*' | cut -d= -f2 | sort -n | awk '{n++; m=$1} END {print n+0, m+0}'
}
lines() { wc -l < "$1"; }

load_run() { # label run -> prints "p50_us p99_us max_us acked duration_us"
  local out line
  mkdir -p "$work/wrk-$1-$2"
  out=$(INTAKE_BODY=$body INTAKE_SIGNATURE=$signature INTAKE_REQUESTS=$requests \
    INTAKE_THREADS=$threads INTAKE_PREFIX="$1r$2" INTAKE_OUT=$work/wrk-$1-$2 \
    "${pin1[@]}" wrk -t"$threads" -c"$c" -d300s --timeout 10s --latency \
    -s "$bench/intake.lua" "http://127.0.0.1:$port/hooks/github")
  line=$(grep '^RESULT' <<< "$out")
  python3 - "$line" <<'PY'
import re, sys
f = dict(re.findall(r"(\w+)=(\S+)", sys.argv[1]))
acked = sum(int(n) for s, n in (p.split(":") for p in f["statuses"].split(",") if p) if s == "202")
print(f["p50_us"], f["p99_us"], f["max_us"], acked, f["duration_us"])
PY
}

done_line() { sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -a 'retention pass done' | tail -1; }

# The file's size before and after one pass with nothing else going on.
data=$work/quiet
cp -a "$seeded" "$data"
size_before=$(stat -c %s "$data/tako.db")
start_server "$data" "$work/server-quiet.log"
curl -s -o /dev/null -X POST -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/api/v1/admin/retention"
for _ in $(seq 7200); do [ -n "$(done_line "$work/server-quiet.log")" ] && break; sleep 0.5; done
report=$(done_line "$work/server-quiet.log")
[ -n "$report" ] || { echo "the pass never ended; see $work/server-quiet.log" >&2; exit 1; }
stop_server
size_after=$(stat -c %s "$data/tako.db")
printf 'quiet\t-\t-\t%s\t%s\t%s\n' "$size_before" "$size_after" "$report" >> "$rows"
echo "quiet pass: $report; file $size_before -> $size_after bytes" >&2
rm -rf "$data"

for run in $(seq "$runs"); do
  data=$work/run-$run
  cp -a "$seeded" "$data"
  start_server "$data" "$work/server-$run.log"
  sleep 2
  # An untimed load first: the first pushes into a fresh copy grow its WAL
  # file (new blocks), which made the first timed load the slower one
  # whichever it was; after it both timed loads find the same file.
  load_run warmup "$run" > /dev/null
  sleep 2

  load=$(cut -d' ' -f1 /proc/loadavg)
  mark=$(lines "$work/server-$run.log")
  read -r p50 p99 max acked dur < <(load_run base "$run")
  echo "run $run baseline: store calls over 20 ms (count, max ms): $(slow_calls "$work/server-$run.log" "$mark")" >&2
  printf 'baseline\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$p50" "$p99" "$max" "$acked" "$dur" "$load" >> "$rows"
  echo "run $run baseline: p50 $((p50/1000)) ms, p99 $((p99/1000)) ms, $acked acked, load $load" >&2

  load=$(cut -d' ' -f1 /proc/loadavg)
  # The pass outlasts the request (202) and goes on in the background; its
  # end is the "retention pass done" line of the server's log, with counts.
  mark=$(lines "$work/server-$run.log")
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/admin/retention" &
  sleep 0.5
  read -r p50 p99 max acked dur < <(load_run retention "$run")
  echo "run $run with retention: store calls over 20 ms (count, max ms): $(slow_calls "$work/server-$run.log" "$mark")" >&2
  log=$work/server-$run.log
  overlapped=yes
  [ -z "$(done_line "$log")" ] || overlapped=no
  for _ in $(seq 7200); do [ -n "$(done_line "$log")" ] && break; sleep 0.5; done
  wait || true
  report=$(done_line "$log")
  [ -n "$report" ] || { echo "the pass never ended; see $work/server-$run.log" >&2; exit 1; }
  printf 'retention\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$p50" "$p99" "$max" "$acked" "$dur" "$load" >> "$rows"
  echo "run $run with retention: p50 $((p50/1000)) ms, p99 $((p99/1000)) ms, $acked acked," \
    "pass still running when the load ended: $overlapped, load $load" >&2
  echo "run $run: $report" >&2
  stop_server
  printf 'pass\t%s\t%s\t-\t-\t%s\n' "$run" "$overlapped" "$report" >> "$rows"
  rm -rf "$data"
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $deployments seeded deployments (10 projects)," \
  "retention_releases=$keep, $requests signed pushes per measurement at c=$c (wrk -t$threads on CPU 1," \
  "server on CPU 0)"
echo
python3 - "$rows" <<'PY'
import re, statistics, sys
base, ret, passes, quiet = [], [], [], []
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "quiet":
        quiet.append(f)
    elif f[0] == "pass":
        passes.append(f)
    else:
        (base if f[0] == "baseline" else ret).append(f)
def ms(x): return int(x) / 1000
def counts(p): return dict(re.findall(r"(\w+)=(\S+)", p[5]))
print("| run | p99 without retention (ms) | p99 with retention (ms) | change | p50 without / with (ms) | pass (s) | pass outlasted the load | load (without / with) |")
print("|---|---|---|---|---|---|---|---|")
for b, r, p in zip(base, ret, passes):
    change = (ms(r[3]) / ms(b[3]) - 1) * 100
    seconds = int(counts(p).get("elapsed_ms", "0")) / 1000
    print(f"| {b[1]} | {ms(b[3]):.2f} | {ms(r[3]):.2f} | {change:+.0f} % | {ms(b[2]):.2f} / {ms(r[2]):.2f} "
          f"| {seconds:.1f} | {p[2]} | {b[7]} / {r[7]} |")
if base:
    mb = statistics.median(ms(b[3]) for b in base)
    mr = statistics.median(ms(r[3]) for r in ret)
    print(f"\nMedian p99: {mb:.2f} ms without, {mr:.2f} ms with retention ({(mr / mb - 1) * 100:+.0f} %).\n")
print("| pass | releases | task logs | deliveries | audit entries | pages freed | seconds | database before (MiB) | after (MiB) |")
print("|---|---|---|---|---|---|---|---|---|")
for p in quiet + passes:
    c = counts(p)
    name = "no pushes" if p[0] == "quiet" else f"run {p[1]} (under load)"
    sizes = (f"{int(p[3]) / 2**20:.1f} | {int(p[4]) / 2**20:.1f}" if p[0] == "quiet"
             else "- | -")
    print(f"| {name} | {c.get('releases')} | {c.get('task_logs')} | {c.get('deliveries')} "
          f"| {c.get('audit_entries')} | {c.get('pages_freed')} "
          f"| {int(c.get('elapsed_ms', '0')) / 1000:.1f} | {sizes} |")
PY
