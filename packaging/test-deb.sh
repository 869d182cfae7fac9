#!/usr/bin/env bash
# Tests the Debian package as a user meets it: installs target/debian/tako_*.deb
# with dpkg -i, checks what it put on the machine (binary, man pages,
# completions, settings, users), verifies the systemd units with
# systemd-analyze, then runs the installed `tako serve` as the packaged `tako`
# user against a temporary data directory: /healthz answers, a signed push
# deploys, and a SIGTERM stops it cleanly. Purges the package at the end.
#
# Needs root (dpkg -i); scripts/test runs it after building the package.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }
step() { echo "test-deb: $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs the package with dpkg -i)"
deb=$(ls target/debian/tako_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no package in target/debian: run packaging/build-deb.sh first"

for tool in adduser git python3 systemd-analyze setpriv curl; do
  command -v "$tool" >/dev/null || missing="${missing:-} $tool"
done
if [ -n "${missing:-}" ]; then
  step "installing:$missing"
  packages=$(echo "$missing" | sed 's/systemd-analyze/systemd/; s/setpriv/util-linux/')
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
fi

work=$(mktemp -d /tmp/tako-deb-test.XXXXXX)
chmod 755 "$work"
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid" || true; fi
  dpkg --purge tako >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "dpkg -i $deb"
dpkg --purge tako >/dev/null 2>&1 || true
dpkg -i "$deb"

step "what the package installed"
/usr/bin/tako --version | grep -q '^tako ' || fail "tako --version"
for page in tako.1.gz tako-serve.1.gz tako-agent-run.1.gz tako-deployment-list.1.gz; do
  [ -s "/usr/share/man/man1/$page" ] || fail "man page $page missing"
done
zcat /usr/share/man/man1/tako-serve.1.gz | grep -q '^\.TH' || fail "tako-serve.1 is not a man page"
[ -s /usr/share/bash-completion/completions/tako ] || fail "bash completion missing"
bash -n /usr/share/bash-completion/completions/tako || fail "bash completion does not parse"
[ -s /usr/share/zsh/vendor-completions/_tako ] || fail "zsh completion missing"
[ -s /usr/share/fish/vendor_completions.d/tako.fish ] || fail "fish completion missing"
getent passwd tako >/dev/null || fail "user tako not created"
getent passwd tako-agent >/dev/null || fail "user tako-agent not created"
[ "$(stat -c '%a %U %G' /etc/tako/tako.toml)" = "640 root tako" ] || fail "/etc/tako/tako.toml: $(stat -c '%a %U %G' /etc/tako/tako.toml)"
grep -qx '/etc/tako/tako.toml' /var/lib/dpkg/info/tako.conffiles || fail "tako.toml is not a conffile"

step "systemd-analyze verify"
# A throwaway agent.env with values, as an administrator would write it.
for unit in tako.service tako-agent.service; do
  [ -s "/usr/lib/systemd/system/$unit" ] || fail "$unit missing"
done
verify_log="$work/verify.log"
if ! systemd-analyze verify /usr/lib/systemd/system/tako.service /usr/lib/systemd/system/tako-agent.service >"$verify_log" 2>&1; then
  cat "$verify_log" >&2
  fail "systemd-analyze verify"
fi
if grep -v -e 'Failed to .*bus' -e '^$' "$verify_log" | grep -q .; then
  cat "$verify_log" >&2
  fail "systemd-analyze verify reported problems"
fi
security=$(systemd-analyze security --offline=true /usr/lib/systemd/system/tako.service 2>/dev/null | tail -1 || true)
step "tako.service exposure: ${security:-not available}"

step "tako serve as the packaged user"
data="$work/data"
install -d -o tako -g tako -m 0750 "$data"
secret="deb-test-webhook-secret"
out="$work/serve.out"
setpriv --reuid tako --regid tako --init-groups env -i PATH=/usr/bin:/bin HOME="$data" TAKO_LOG=info \
  TAKO_WEBHOOK_SECRET="$secret" \
  /usr/bin/tako serve --config /etc/tako/tako.toml --data-dir "$data" --listen 127.0.0.1:0 \
  >"$out" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q '^Tako listening on ' "$out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; fail "tako serve exited at start"; }
  sleep 0.1
done
url=$(sed -n 's/^Tako listening on \([^ ]*\).*/\1/p' "$out" | head -1)
token=$(grep -m1 '^ *tako_' "$out" | tr -d ' ')
[ -n "$url" ] || fail "tako serve did not report its address"
[ -n "$token" ] || fail "tako serve did not print its first token"
curl -fsS "$url/healthz" >/dev/null || fail "/healthz"
[ "$(stat -c %U "$data/tako.db")" = tako ] || fail "the database is not owned by tako"

# A repository readable by the tako user, and a signed push of it.
repo="$work/repo"
git init -q -b main "$repo"
cat >"$repo/takofile.yml" <<'YAML'
Project: Packaged
Mappings:
  - Branch: main
    Environment: Production
Steps:
  - Name: Hello
    Run: |
      echo "packaged deploy of #{Octopus.Release.Number} as $(id -un)"
YAML
git -C "$repo" -c user.name=Test -c user.email=test@example.invalid add -A
git -C "$repo" -c user.name=Test -c user.email=test@example.invalid commit -qm "A takofile"
git clone -q --bare "$repo" "$work/origin.git"
chown -R tako:tako "$work/origin.git"
after=$(git -C "$repo" rev-parse HEAD)

curl -fsS -X POST "$url/api/v1/projects" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' \
  -d "{\"name\":\"Packaged\",\"repository\":\"file://$work/origin.git\"}" >/dev/null \
  || fail "creating the project"
body=$(python3 - "$work/origin.git" "$after" <<'PY'
import json, sys
repo, after = sys.argv[1], sys.argv[2]
commit = {"id": after, "tree_id": "0" * 40, "distinct": True, "message": "A takofile",
          "timestamp": "2026-01-01T00:00:00Z", "url": "file://" + repo,
          "author": {"name": "Test", "email": "test@example.invalid", "username": "test"},
          "committer": {"name": "Test", "email": "test@example.invalid", "username": "test"},
          "added": [], "removed": [], "modified": []}
print(json.dumps({
    "ref": "refs/heads/main", "before": "0" * 40, "after": after, "created": True,
    "deleted": False, "forced": False, "base_ref": None, "compare": "file://" + repo,
    "commits": [commit], "head_commit": commit,
    "repository": {"id": 1, "node_id": "R_1", "name": "origin", "full_name": "test/origin",
                   "private": False, "owner": {"name": "test", "login": "test", "id": 2},
                   "html_url": "file://" + repo, "url": "file://" + repo,
                   "clone_url": "file://" + repo, "default_branch": "main",
                   "master_branch": "main"},
    "pusher": {"name": "test", "email": "test@example.invalid"},
    "sender": {"login": "test", "id": 3},
}, separators=(",", ":")))
PY
)
signature=$(printf '%s' "$body" | python3 -c "import hashlib,hmac,sys; print('sha256=' + hmac.new(b'$secret', sys.stdin.buffer.read(), hashlib.sha256).hexdigest())")
status=$(curl -sS -o "$work/push.out" -w '%{http_code}' -X POST "$url/hooks/github" \
  -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
  -H 'X-GitHub-Delivery: deb-test-1' -H "X-Hub-Signature-256: $signature" --data-binary "$body")
[ "$status" = 202 ] || { cat "$work/push.out" >&2; fail "the signed push got $status"; }

state=
for _ in $(seq 1 600); do
  state=$(curl -fsS "$url/api/v1/deployments" -H "Authorization: Bearer $token" \
    | python3 -c 'import json,sys; items=json.load(sys.stdin)["items"]; print(items[0]["state"] if items else "")')
  case "$state" in success|failed|cancelled|interrupted) break ;; esac
  sleep 0.1
done
[ "$state" = success ] || { curl -sS "$url/api/v1/deliveries" -H "Authorization: Bearer $token" >&2; fail "the push's deployment ended '$state'"; }
id=$(curl -fsS "$url/api/v1/deployments" -H "Authorization: Bearer $token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
/usr/bin/tako logs "$id" --server "$url" --token "$token" | grep -q 'packaged deploy of .* as tako' \
  || fail "the deployment's log lacks the step's line (run as tako)"

step "SIGTERM stops it"
kill -TERM "$server_pid"
if ! wait "$server_pid"; then fail "tako serve did not exit 0 on SIGTERM"; fi
server_pid=

step "dpkg --purge"
dpkg --purge tako
[ ! -e /usr/bin/tako ] || fail "/usr/bin/tako left behind"
! getent passwd tako >/dev/null || fail "user tako left behind by the purge"
echo "test-deb: the package installs, verifies, serves, deploys and purges"
