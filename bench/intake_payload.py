#!/usr/bin/env python3
"""The webhook intake benchmark's payload: one realistic signed GitHub push.

Built from GitHub's own example `crates/github/tests/fixtures/push-api-4.json`
(a push to `master` with one commit, full `repository`, `pusher` and `sender`
objects), turned into an ordinary push to an existing branch (`before` is a
commit, `created` false, a `compare` range, a commit message with a body),
serialised compactly as GitHub sends it: ~7.5 KB.

    bench/intake_payload.py OUT_FILE SECRET    -> writes the body, prints
                                                  "sha256=<hex HMAC-SHA256>"
"""

import hashlib
import hmac
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "crates/github/tests/fixtures/push-api-4.json"


def payload() -> bytes:
    push = json.loads(FIXTURE.read_text())
    before = "a10867b14bb761a232cd80139fbd4c0d33264240"
    after = push["after"]
    push["before"] = before
    push["created"] = False
    push.pop("installation", None)  # a repository webhook, not a GitHub App's
    push["compare"] = (
        "https://github.com/Codertocat/Hello-World/compare/"
        f"{before[:12]}...{after[:12]}"
    )
    for commit in push["commits"] + [push["head_commit"]]:
        commit["message"] = (
            "Retry the deploy health check before giving up\n\n"
            "The load balancer needs a few seconds to register the new pods."
        )
        commit["added"] = []
        commit["modified"] = ["deploy/health-check.sh", "README.md"]
    return json.dumps(push, separators=(",", ":")).encode()


def main() -> None:
    out, secret = sys.argv[1], sys.argv[2]
    body = payload()
    pathlib.Path(out).write_bytes(body)
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    print(f"sha256={digest}")


if __name__ == "__main__":
    main()
