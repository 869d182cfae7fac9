#!/usr/bin/env bash
# Tests the Debian package as a user meets it: installs target/debian/tako_*.deb
# with dpkg -i, checks what it put on the machine (binary, man pages,
# completions, settings, users), verifies the systemd units with
# systemd-analyze, then follows the manual's "From dpkg -i to a deployment"
# (docs/manual/src/debian.md) step by step: the webhook secret in
# /etc/tako/tako.env, `tako serve` run as tako.service runs it (its
# ExecStart, Environment and EnvironmentFile, as the packaged `tako` user),
# the first admin token, `tako project create`, a push signed with openssl
# and sent with curl, the deployment followed with `tako logs --follow`;
# then a SIGTERM stops it cleanly. Purges the package at the end.
#
# Needs root (dpkg -i); scripts/test runs it after building the package.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }
step() { echo "test-deb: $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs the package with dpkg -i)"
deb=$(ls target/debian/tako_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no package in target/debian: run packaging/build-deb.sh first"

for tool in adduser git python3 systemd-analyze setpriv curl openssl; do
  command -v "$tool" >/dev/null || missing="${missing:-} $tool"
done
if [ -n "${missing:-}" ]; then
  step "installing:$missing"
  packages=$(echo "$missing" | sed 's/systemd-analyze/systemd/; s/setpriv/util-linux/')
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
fi

# Not under /tmp: tako.service has PrivateTmp=, the manual's repository is
# elsewhere too.
mkdir -p /srv
work=$(mktemp -d /srv/tako-deb-test.XXXXXX)
chmod 755 "$work"
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid" || true; fi
  dpkg --purge tako >/dev/null 2>&1 || true
  rm -f /etc/tako/tako.env
  rmdir /etc/tako 2>/dev/null || true
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

# From here on, the steps of the manual's "From dpkg -i to a deployment"
# (docs/manual/src/debian.md), command for command; where a step differs
# (no systemd here, a temporary data directory, a random port) it says so.
step "the webhook secret in /etc/tako/tako.env"
secret=$(openssl rand -hex 20)
echo "TAKO_WEBHOOK_SECRET=$secret" | tee /etc/tako/tako.env >/dev/null
chmod 640 /etc/tako/tako.env && chgrp tako /etc/tako/tako.env

step "tako serve as tako.service runs it"
# `systemctl start tako` where systemd runs; here (no systemd as PID 1) the
# unit's own ExecStart, Environment= and EnvironmentFile= as its User=,
# with a temporary data directory and a random port instead of the unit's.
unit=/usr/lib/systemd/system/tako.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
unit_env=$(sed -n 's/^Environment=//p' "$unit")
[ "$(sed -n 's/^User=//p' "$unit")" = tako ] || fail "tako.service does not run as tako"
[ "$exec_start" = "/usr/bin/tako serve --config /etc/tako/tako.toml" ] || fail "tako.service runs '$exec_start'"
data="$work/data"
install -d -o tako -g tako -m 0750 "$data"
out="$work/serve.out"
# shellcheck disable=SC2086 # the unit's words, split as systemd splits them
setpriv --reuid tako --regid tako --init-groups env -i PATH=/usr/bin:/bin TAKO_LOG=info \
  $unit_env $(grep -v '^#' /etc/tako/tako.env) \
  $exec_start --data-dir "$data" --listen 127.0.0.1:0 \
  >"$out" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 1 300); do
  grep -q '^Tako listening on ' "$out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; fail "tako serve exited at start"; }
  sleep 0.1
done
url=$(sed -n 's/^Tako listening on \([^ ]*\).*/\1/p' "$out" | head -1)
[ -n "$url" ] || fail "tako serve did not report its address"
curl -fsS "$url/healthz" >/dev/null || fail "/healthz"
[ "$(stat -c %U "$data/tako.db")" = tako ] || fail "the database is not owned by tako"

step "the first admin token"
# Under systemd the server's standard output is the journal:
#   journalctl -u tako -o cat | grep -m1 '^ *tako_' | tr -d ' '
token=$(grep -m1 '^ *tako_' "$out" | tr -d ' ')
[ -n "$token" ] || fail "tako serve did not print its first token"
export TAKO_SERVER="$url" TAKO_TOKEN="$token"

# A repository with a takofile, where the tako user can read it (not under
# /home or /tmp: the unit hides those from the service).
step "a repository with a takofile"
repo="$work/myapp"
git init -q -b main "$repo"
cat >"$repo/takofile.yml" <<'YAML'
Project: MyApp
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
git clone -q --bare "$repo" "$work/myapp.git"
chown -R tako:tako "$work/myapp.git"
repo_url="file://$work/myapp.git"

step "tako project create"
/usr/bin/tako project create MyApp --repo "$repo_url" >/dev/null || fail "tako project create"

step "a signed push, as GitHub sends it"
after=$(git -C "$repo" rev-parse main)
body=$(printf '{"ref":"refs/heads/main","before":"%040d","after":"%s","repository":{"id":1,"name":"myapp","full_name":"you/myapp","clone_url":"%s","html_url":"%s","default_branch":"main"}}' 0 "$after" "$repo_url" "$repo_url")
signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
status=$(curl -sS -o "$work/push.out" -w '%{http_code}' -X POST "$url/hooks/github" \
  -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
  -H 'X-GitHub-Delivery: trial-1' -H "X-Hub-Signature-256: sha256=$signature" \
  --data-binary "$body")
[ "$status" = 202 ] || { cat "$work/push.out" >&2; fail "the signed push got $status"; }

step "the deployment"
id=
for _ in $(seq 1 300); do
  id=$(/usr/bin/tako deployment list --project MyApp --output json \
    | python3 -c 'import json,sys; items=json.load(sys.stdin); print(items[0]["id"] if items else "")')
  [ -n "$id" ] && break
  sleep 0.1
done
[ -n "$id" ] || { /usr/bin/tako delivery list >&2 || true; fail "the push made no deployment"; }
# --follow exits 0 only when the deployment succeeded.
timeout 120 /usr/bin/tako logs "$id" --follow >"$work/deploy.log" \
  || { cat "$work/deploy.log" >&2; fail "deployment $id did not succeed"; }
grep -q 'packaged deploy of .* as tako' "$work/deploy.log" \
  || { cat "$work/deploy.log" >&2; fail "the deployment's log lacks the step's line (run as tako)"; }
/usr/bin/tako deployment list --project MyApp | grep -q success || fail "tako deployment list"

step "SIGTERM stops it"
kill -TERM "$server_pid"
if ! wait "$server_pid"; then fail "tako serve did not exit 0 on SIGTERM"; fi
server_pid=

step "dpkg --purge"
# The administrator's own /etc/tako/tako.env is theirs to remove.
rm /etc/tako/tako.env
dpkg --purge tako
[ ! -e /etc/tako ] || fail "/etc/tako left behind"
[ ! -e /usr/bin/tako ] || fail "/usr/bin/tako left behind"
! getent passwd tako >/dev/null || fail "user tako left behind by the purge"
echo "test-deb: the package installs, verifies, serves, deploys and purges"
