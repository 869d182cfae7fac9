#!/usr/bin/env bash
# Sends a signed GitHub push webhook for the newest commit of a local
# repository to a Tako server, exactly as GitHub would (HMAC-SHA256 over the
# body). For a local trial without GitHub:
#
#   examples/local-trial/push.sh REPO_DIR BRANCH [SERVER] [SECRET]
#
# REPO_DIR: a clone whose `origin` is the bare repository Tako fetches from.
# SERVER defaults to http://127.0.0.1:8080, SECRET to $TAKO_WEBHOOK_SECRET.
set -euo pipefail
repo=${1:?usage: push.sh REPO_DIR BRANCH [SERVER] [SECRET]}
branch=${2:?usage: push.sh REPO_DIR BRANCH [SERVER] [SECRET]}
server=${3:-http://127.0.0.1:8080}
secret=${4:-${TAKO_WEBHOOK_SECRET:?set TAKO_WEBHOOK_SECRET or pass SECRET}}

origin=$(git -C "$repo" remote get-url origin)
case "$origin" in /*) origin="file://$origin" ;; esac
after=$(git -C "$repo" rev-parse "$branch")
message=$(git -C "$repo" log -1 --format=%s "$branch")
author=$(git -C "$repo" log -1 --format=%an "$branch")

body=$(python3 - "$origin" "$branch" "$after" "$message" "$author" <<'PY'
import json, sys
origin, branch, after, message, author = sys.argv[1:]
commit = {"id": after, "message": message, "timestamp": "2026-01-01T00:00:00Z",
          "url": origin, "author": {"name": author, "email": "trial@example.com"}}
print(json.dumps({
    "ref": f"refs/heads/{branch}", "before": "0" * 40, "after": after,
    "created": False, "deleted": False, "forced": False,
    "commits": [commit], "head_commit": commit,
    "repository": {"id": 1, "name": "trial", "full_name": "local/trial", "private": False,
                   "clone_url": origin, "html_url": origin, "default_branch": "main"},
    "pusher": {"name": author}, "sender": {"login": author},
}))
PY
)
signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
curl -sS -X POST "$server/hooks/github" \
  -H 'Content-Type: application/json' \
  -H 'X-GitHub-Event: push' \
  -H "X-GitHub-Delivery: trial-$(date +%s%N)" \
  -H "X-Hub-Signature-256: sha256=$signature" \
  --data-binary "$body"
echo
