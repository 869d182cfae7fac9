#!/usr/bin/env bash
# Where an idle agent's memory is: a fresh `tako serve` on 127.0.0.1 (random
# port, temp data directory) and one enrolled `tako agent run`, left idle
# for 4 s; prints VmRSS/RssAnon/RssFile, /proc/PID/smaps_rollup and the
# mappings holding the most resident memory. Everything is removed after.
#
#   bench/agent_rss.sh [path/to/tako]      (default target/release/tako)
set -u
tako=${1:-target/release/tako}
d=$(mktemp -d)
"$tako" serve --listen 127.0.0.1:0 --data-dir "$d/server" > "$d/serve.out" 2>&1 &
spid=$!
for i in $(seq 100); do grep -q "Tako listening on" "$d/serve.out" && break; sleep 0.2; done
url=$(grep "Tako listening on" "$d/serve.out" | sed 's/Tako listening on \([^ ]*\).*/\1/')
token=$(grep -E "^\s*tako_" "$d/serve.out" | head -1 | tr -d ' ')
enroll=$(TAKO_SERVER=$url TAKO_TOKEN=$token "$tako" agent enroll-token --env Production --role ps --name rss-01 --auto-approve)
"$tako" agent run --server "$url" --enroll "$enroll" --data-dir "$d/agent" > "$d/agent.out" 2>&1 &
apid=$!
sleep 4
echo "agent pid $apid"; grep -E "VmRSS|VmHWM|RssAnon|RssFile|RssShmem|Threads" /proc/$apid/status
cat /proc/$apid/smaps_rollup
echo "--- top mappings by Rss (kB)"
awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{rss[name]+=$2} END{for (n in rss) print rss[n], n}' /proc/$apid/smaps | sort -rn | head -8
kill $apid $spid; wait $apid $spid 2>/dev/null
rm -rf "$d"
