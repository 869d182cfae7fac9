#!/usr/bin/env python3
"""One run of the end-to-end benchmark (bench/end-to-end.sh): signed pushes
into a real `tako serve`, one project whose takofile maps the branches
env0..env9 to the environments Env0..Env9, each deployment one `true` step.

    end_to_end.py run TAKO DIR PUSHES ENVIRONMENTS PACED RATE [SERVE_ARGS...]
        prints one tab-separated result row (see COLUMNS)
    end_to_end.py summary RESULTS_TSV
        Markdown tables of the rows

The repository is a real bare git repository reached through file://. All
commits are made beforehand with `git fast-import` and kept reachable from
refs/bench/* (which the server's mirror does not fetch); before each push is
sent, its branch is moved to the push's commit with `git update-ref`, so the
server's mirror has to fetch it, as after a real `git push`.

A run: start the server in DIR/data (its first-start admin token read from
its output), register the project through the API with its own webhook
secret, one warm-up push (the mirror's first clone) awaited to its end, then
  burst: PUSHES pushes sent one after the other as fast as the server
         answers (round robin over the branches); waits until every one is
         routed and every deployment has ended;
  paced: PACED pushes at RATE per second (0 skips it), the same way;
and reads each push's deployment back through the API: push-to-first-step
is the step's `started_at` minus the moment the push's 202 was read (the
same clock: server and client run on this machine). Completed deployments
per second = successful deployments / (last `finished_at` - first push
sent). Only 127.0.0.1 is contacted.
"""

import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

SECRET = "bench-end-to-end-secret"
PROJECT = "EndToEnd"
ZERO = "0" * 40

COLUMNS = (
    "run pushes acked succeeded failed send_s drain_s deploys_per_s p50_ms p99_ms max_ms "
    "paced paced_ok paced_p50_ms paced_p99_ms paced_max_ms rss_start_mb rss_peak_mb "
    "load_start load_end route_ms claim_ms prepare_ms paced_route_ms paced_claim_ms "
    "paced_prepare_ms"
).split()


def git(repo, *args, stdin=None):
    out = subprocess.run(
        ["git", "--git-dir", repo, *args],
        input=stdin,
        capture_output=True,
        check=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.path.dirname(repo)},
    )
    return out.stdout.decode().strip()


def takofile(environments):
    mappings = "".join(
        f"  - Branch: env{k}\n    Environment: Env{k}\n" for k in range(environments)
    )
    return (
        f"Project: {PROJECT}\nMappings:\n{mappings}"
        "Steps:\n  - Name: Nothing\n    Run: \"true\"\n"
    )


def make_repo(repo, text, branches, per_branch, files=None):
    """A bare repository: main holds the takofile `text` (and `files`); every
    branch of `branches` points at main; refs/bench/<branch> holds per_branch
    commits on top of it. Returns {branch: [main, c1, c2, ...]}."""
    subprocess.run(["git", "init", "-q", "--bare", repo], check=True)
    stream = []
    when = 1764000000

    def data(content):
        raw = content.encode()
        stream.append(f"data {len(raw)}\n".encode() + raw + b"\n")

    def commit(ref, mark, parent, changes, message):
        nonlocal when
        when += 1
        stream.append(f"commit {ref}\nmark :{mark}\n".encode())
        stream.append(f"committer Bench <bench@example.invalid> {when} +0000\n".encode())
        data(message)
        if parent:
            stream.append(f"from :{parent}\n".encode())
        for path, content in changes.items():
            stream.append(f"M 100644 inline {path}\n".encode())
            data(content)

    commit("refs/heads/main", 1, None, {"takofile.yml": text, **(files or {})}, "Add the takofile")
    mark = 1
    for branch in branches:
        parent = 1
        for n in range(per_branch):
            mark += 1
            commit(f"refs/bench/{branch}", mark, parent,
                   {"app.txt": f"{branch} change {n + 1}\n"}, f"Change {n + 1} on {branch}")
            parent = mark
        stream.append(f"reset refs/heads/{branch}\nfrom :1\n\n".encode())
    subprocess.run(["git", "--git-dir", repo, "fast-import", "--quiet"],
                   input=b"".join(stream), check=True)
    git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    main = git(repo, "rev-parse", "refs/heads/main")
    commits = {}
    for branch in branches:
        listed = git(repo, "rev-list", "--reverse", f"refs/bench/{branch}", "^refs/heads/main")
        commits[branch] = [main] + listed.split()
    return commits


def payload(clone_url, branch, before, after, number):
    def commit(sha):
        return {
            "id": sha, "tree_id": ZERO, "distinct": True,
            "message": f"Change {number} on {branch}",
            "timestamp": "2026-11-25T00:00:00Z",
            "url": f"https://example.invalid/acme/demo/commit/{sha}",
            "author": {"name": "Bench", "email": "bench@example.invalid", "username": "bench"},
            "committer": {"name": "Bench", "email": "bench@example.invalid", "username": "bench"},
            "added": [], "removed": [], "modified": ["app.txt"],
        }
    body = {
        "ref": f"refs/heads/{branch}", "before": before, "after": after,
        "created": False, "deleted": False, "forced": False, "base_ref": None,
        "compare": "https://example.invalid/acme/demo/compare",
        "commits": [commit(after)], "head_commit": commit(after),
        "repository": {
            "id": 1, "node_id": "R_1", "name": "demo", "full_name": "acme/demo",
            "private": False, "owner": {"name": "acme", "login": "acme", "id": 2},
            "html_url": "https://example.invalid/acme/demo", "url": "https://example.invalid/acme/demo",
            "clone_url": clone_url, "default_branch": "main", "master_branch": "main",
        },
        "pusher": {"name": "bench", "email": "bench@example.invalid"},
        "sender": {"login": "bench", "id": 3},
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, signature


class Server:
    """`tako serve` on 127.0.0.1:0 in its own process group."""

    def __init__(self, tako, data_dir, log, args):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env["TAKO_LOG"] = os.environ.get("BENCH_TAKO_LOG", "warn")
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [tako, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, *args],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        self.token = None
        self.address = None
        deadline = time.time() + 30
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("tako_"):
                self.token = line
            if line.startswith("Tako listening on http://"):
                self.address = line.split("http://", 1)[1].split()[0]
                break
            if time.time() > deadline:
                break
        if not self.address or not self.token:
            self.stop()
            sys.exit(f"tako serve did not start (see {log})")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        host, port = self.address.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def rss_mb(self):
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.split()[0] if value.split() else "0"
        return int(fields.get("VmRSS", 0)) / 1024, int(fields.get("VmHWM", 0)) / 1024

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.log.close()


class Client:
    def __init__(self, server):
        self.server = server
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=30)

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def api(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.server.token}"}
        raw = None
        if body is not None:
            raw = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, data = self.request(method, path, raw, headers)
        return status, (json.loads(data) if data else None)

    def push(self, delivery, raw, signature):
        status, data = self.request("POST", "/hooks/github", raw, {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
            "User-Agent": "GitHub-Hookshot/bench",
        })
        return status, data


def parse_time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Pusher:
    def __init__(self, client, repo, clone_url, commits):
        self.client, self.repo, self.clone_url = client, repo, clone_url
        self.commits = commits
        self.position = {branch: 0 for branch in commits}
        self.number = 0

    def push(self, branch, delivery):
        """Moves `branch` one commit on, sends the signed push; returns
        (sent_at, acked_at) or raises."""
        before = self.commits[branch][self.position[branch]]
        self.position[branch] += 1
        after = self.commits[branch][self.position[branch]]
        self.number += 1
        git(self.repo, "update-ref", f"refs/heads/{branch}", after, before)
        raw, signature = payload(self.clone_url, branch, before, after, self.number)
        sent = time.time()
        status, body = self.client.push(delivery, raw, signature)
        acked = time.time()
        if status != 202:
            sys.exit(f"push {delivery} answered {status}: {body[:300]!r}")
        return sent, acked


def wait_until_done(client, last_delivery, timeout=900):
    """Until the newest delivery is routed (they are routed in order) and no
    deployment is queued or running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, page = client.api("GET", "/api/v1/deliveries?limit=1")
        newest = page["items"][0] if page["items"] else None
        routed = newest is not None and newest["id"] == last_delivery and newest["state"] == "done"
        if routed:
            busy = False
            for state in ("queued", "running"):
                _, found = client.api("GET", f"/api/v1/deployments?state={state}&limit=1")
                busy = busy or bool(found["items"])
            if not busy:
                return True
        time.sleep(0.1)
    return False


def outcomes(client, deliveries):
    """delivery id -> (deployment id, routed at), from the deliveries
    listing."""
    wanted = set(deliveries)
    found = {}
    cursor = ""
    while wanted - set(found):
        status, page = client.api("GET", f"/api/v1/deliveries?limit=200&cursor={cursor}")
        if status != 200:
            sys.exit(f"listing deliveries answered {status}: {page}")
        for item in page["items"]:
            if item["id"] in wanted:
                outcome = item.get("outcome") or {}
                routed = item.get("completed_at")
                found[item["id"]] = (outcome.get("deployment"),
                                     parse_time(routed) if routed else None)
                if outcome.get("kind") != "queued":
                    print(f"delivery {item['id']}: {outcome}", file=sys.stderr)
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return found


def collect(client, acked):
    """For pushes {delivery: (sent, acked)}: latencies (ms), succeeded,
    failed, first sent, last finished, and the latencies' parts (ms): 202 to
    routed (the delivery's `completed_at`), routed to claimed (the
    deployment's `started_at`), claimed to the step's start."""
    deployments = outcomes(client, acked)
    latencies, ok, failed, last_finished = [], 0, 0, 0.0
    parts = {"route": [], "claim": [], "prepare": []}
    for delivery, (_, acked_at) in acked.items():
        deployment, routed = deployments.get(delivery, (None, None))
        if deployment is None:
            failed += 1
            continue
        status, detail = client.api("GET", f"/api/v1/deployments/{deployment}")
        if status != 200:
            sys.exit(f"deployment {deployment} answered {status}")
        if detail["state"] != "success" or not detail.get("steps"):
            failed += 1
            print(f"deployment {deployment}: {detail['state']} {detail.get('error')}",
                  file=sys.stderr)
            continue
        ok += 1
        started = parse_time(detail["steps"][0]["started_at"])
        claimed = parse_time(detail["started_at"])
        latencies.append((started - acked_at) * 1000)
        if routed is not None:
            parts["route"].append((routed - acked_at) * 1000)
            parts["claim"].append((claimed - routed) * 1000)
        parts["prepare"].append((started - claimed) * 1000)
        last_finished = max(last_finished, parse_time(detail["finished_at"]))
    first_sent = min(sent for sent, _ in acked.values())
    return latencies, ok, failed, first_sent, last_finished, parts


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def run(tako, directory, pushes, environments, paced, rate, serve_args):
    os.makedirs(directory, exist_ok=True)
    repo = os.path.join(directory, "demo.git")
    per_branch = (1 + pushes + paced) // environments + 2
    branches = [f"env{k}" for k in range(environments)]
    commits = make_repo(repo, takofile(environments), branches, per_branch)
    clone_url = f"file://{repo}"
    load_start = load1()
    server = Server(tako, os.path.join(directory, "data"), os.path.join(directory, "server.log"),
                    serve_args)
    try:
        client = Client(server)
        status, body = client.api("POST", "/api/v1/projects", {
            "name": PROJECT, "repository": clone_url, "webhook_secret": SECRET})
        if status != 201:
            sys.exit(f"registering the project answered {status}: {body}")
        pusher = Pusher(client, repo, clone_url, commits)

        # Warm-up: the mirror's first clone, the first checkout.
        pusher.push(branches[0], "warm-up")
        if not wait_until_done(client, "warm-up", timeout=120):
            sys.exit("the warm-up push did not finish")
        rss_start, _ = server.rss_mb()

        acked = {}
        for i in range(pushes):
            delivery = f"burst-{i}"
            acked[delivery] = pusher.push(branches[i % environments], delivery)
        send_s = time.time() - min(s for s, _ in acked.values())
        if not wait_until_done(client, f"burst-{pushes - 1}"):
            sys.exit("the burst did not finish in time")
        latencies, ok, failed, first_sent, last_finished, parts = collect(client, acked)
        drain_s = last_finished - first_sent

        paced_latencies, paced_ok = [], 0
        paced_parts = {"route": [], "claim": [], "prepare": []}
        if paced and rate > 0:
            paced_acked = {}
            start = time.time() + 0.5
            for i in range(paced):
                pause = start + i / rate - time.time()
                if pause > 0:
                    time.sleep(pause)
                delivery = f"paced-{i}"
                paced_acked[delivery] = pusher.push(branches[i % environments], delivery)
            if not wait_until_done(client, f"paced-{paced - 1}"):
                sys.exit("the paced pushes did not finish in time")
            paced_latencies, paced_ok, _, _, _, paced_parts = collect(client, paced_acked)
        _, rss_peak = server.rss_mb()
    finally:
        server.stop()

    row = [
        os.path.basename(directory), pushes, len(acked), ok, failed,
        f"{send_s:.2f}", f"{drain_s:.2f}", f"{ok / drain_s:.1f}",
        f"{percentile(latencies, 50):.0f}", f"{percentile(latencies, 99):.0f}",
        f"{max(latencies):.0f}" if latencies else "nan",
        paced, paced_ok,
        f"{percentile(paced_latencies, 50):.0f}", f"{percentile(paced_latencies, 99):.0f}",
        f"{max(paced_latencies):.0f}" if paced_latencies else "nan",
        f"{rss_start:.1f}", f"{rss_peak:.1f}", f"{load_start:.2f}", f"{load1():.2f}",
    ]
    for measured in (parts, paced_parts):
        for key in ("route", "claim", "prepare"):
            row.append(f"{percentile(measured[key], 50):.0f}")
    print("\t".join(str(x) for x in row))


def summary(path):
    rows = []
    with open(path) as f:
        for line in f:
            rows.append(dict(zip(COLUMNS, line.rstrip("\n").split("\t"))))

    def mmm(key, fmt="{:.0f}"):
        xs = [float(r[key]) for r in rows]
        return (f"{fmt.format(statistics.median(xs))} "
                f"({fmt.format(min(xs))}–{fmt.format(max(xs))})")

    print("Median (min–max) of the runs.\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| runs | {len(rows)} |")
    print(f"| completed deployments/s (burst of {rows[0]['pushes']}) | {mmm('deploys_per_s', '{:.1f}')} |")
    print(f"| burst: pushes sent in | {mmm('send_s', '{:.2f}')} s |")
    print(f"| burst: first push to last deployment finished | {mmm('drain_s', '{:.2f}')} s |")
    print(f"| burst: push-to-first-step p50 | {mmm('p50_ms')} ms |")
    print(f"| burst: push-to-first-step p99 | {mmm('p99_ms')} ms |")
    print(f"| burst, median parts: 202 → routed / → claimed / → step | {mmm('route_ms')} / "
          f"{mmm('claim_ms')} / {mmm('prepare_ms')} ms |")
    if int(rows[0]["paced"]):
        print(f"| paced ({rows[0]['paced']} pushes): push-to-first-step p50 | {mmm('paced_p50_ms')} ms |")
        print(f"| paced: push-to-first-step p99 | {mmm('paced_p99_ms')} ms |")
        print(f"| paced, median parts: 202 → routed | {mmm('paced_route_ms')} ms |")
        print(f"| paced, median parts: routed → claimed | {mmm('paced_claim_ms')} ms |")
        print(f"| paced, median parts: claimed → step started | {mmm('paced_prepare_ms')} ms |")
    print(f"| server RSS after warm-up | {mmm('rss_start_mb', '{:.1f}')} MiB |")
    print(f"| server RSS peak (VmHWM) | {mmm('rss_peak_mb', '{:.1f}')} MiB |")
    print("\nEvery run:\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(r[k] for k in COLUMNS) + " |")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "run":
        tako, directory = args[0], args[1]
        pushes, environments, paced = int(args[2]), int(args[3]), int(args[4])
        rate = float(args[5])
        run(tako, directory, pushes, environments, paced, rate, args[6:])
    elif command == "summary":
        summary(args[0])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
