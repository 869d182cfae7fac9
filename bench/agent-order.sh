#!/usr/bin/env bash
# Regenerates crates/tako/agent-idle.order: the functions an idle agent runs
# (start-up, enrollment, then long polls for SECONDS), which the link places
# next to each other (crates/tako/build.rs explains why; the effect on the
# idle RSS is in docs/benchmarks.md). Each binary given is run under
# valgrind's callgrind (installed if missing) as a freshly enrolled agent of
# a temporary `tako serve` on 127.0.0.1; the list is the union over them, of
# the names each binary really has (e.g. a release and a dist build: their
# symbol names differ). Then rebuild: only the final link changes.
#
#   bench/agent-order.sh [path/to/tako ...]     (default target/release/tako)
#   SECONDS_IDLE=45 bench/agent-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v valgrind >/dev/null || { as_root apt-get update -qq && as_root apt-get install -y -qq valgrind; }
[ $# -gt 0 ] || set -- target/release/tako
idle=${SECONDS_IDLE:-45}
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
lists=()
for tako in "$@"; do
  tako=$(realpath "$tako")
  d=$work/$(basename "$tako")-$RANDOM
  mkdir -p "$d"
  "$tako" serve --listen 127.0.0.1:0 --data-dir "$d/server" > "$d/serve.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do grep -q "Tako listening on" "$d/serve.out" && break; sleep 0.2; done
  url=$(grep "Tako listening on" "$d/serve.out" | sed 's/Tako listening on \([^ ]*\).*/\1/')
  token=$(grep -E "^\s*tako_" "$d/serve.out" | head -1 | tr -d ' ')
  enroll=$(TAKO_SERVER=$url TAKO_TOKEN=$token "$tako" agent enroll-token --env Production \
    --role ps --name order-01 --auto-approve | grep -o 'takoenroll_[0-9a-f]*' | head -1)
  echo "$tako: callgrind over ${idle} s of an idle agent" >&2
  timeout -s INT "$idle" valgrind --tool=callgrind --demangle=no \
    --callgrind-out-file="$d/callgrind.out" \
    "$tako" agent run --server "$url" --enroll "$enroll" --data-dir "$d/agent" \
    > "$d/agent.out" 2>&1 || true
  grep -q "waiting for work" "$d/agent.out" || { echo "the agent never got ready: $d/agent.out" >&2; cat "$d/agent.out" >&2; exit 1; }
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  nm "$tako" > "$d/nm.txt"
  python3 - "$d/callgrind.out" "$d/nm.txt" "$tako" > "$d/list" <<'PY'
import re, sys
out, nm, binary = sys.argv[1:]
objects, names, ran, current = {}, {}, set(), None
for line in open(out, errors="replace"):
    line = line.rstrip("\n")
    m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
    if m:
        kind, i, name = m.groups()
        if name:
            objects[i] = name
        if kind == "ob":
            current = objects.get(i)
        continue
    m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
    if m:
        kind, i, name = m.groups()
        if name:
            names[i] = name
        if kind == "fn" and current == binary:
            ran.add(names[i])
defined = {p[2] for p in (l.split() for l in open(nm)) if len(p) == 3 and p[1] in "tT"}
for name in sorted(ran & defined):
    print(name)
PY
  echo "$tako: $(wc -l < "$d/list") functions" >&2
  lists+=("$d/list")
done
sort -u "${lists[@]}" > crates/tako/agent-idle.order
echo "crates/tako/agent-idle.order: $(wc -l < crates/tako/agent-idle.order) functions" >&2
