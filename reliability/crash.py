#!/usr/bin/env python3
"""Crash durability and redelivery against a real `tako serve`.

Rounds: start the server on a data directory, send PUSHES signed pushes from
several concurrent senders (recording which were answered 202), SIGKILL the
server at a random moment of the burst, restart, repeat. Then, on a last
start, every acknowledged delivery must be stored exactly once and processed
(lost = 0, duplicated = 0), read from the `deliveries` table with sqlite3.

Redelivery: every delivery of the crash rounds, and a fresh set, is sent
twice in shuffled order by concurrent senders: each id is stored once, each
acknowledged (202) at most once, every other answer is 200 "duplicate".

Usage: crash.py BINARY PUSHES ROUNDS  (prints a summary; exit 1 on failure)
"""

import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

SECRET = b"crash test secret"
SENDERS = 8
ZERO = "0" * 40


def payload(n):
    after = f"{n:040x}"
    return json.dumps({
        "ref": "refs/heads/main", "before": ZERO, "after": after,
        "created": True, "deleted": False, "forced": False,
        "commits": [{"id": after, "message": f"push {n}", "timestamp": "2026-01-01T00:00:00Z",
                     "author": {"name": "t", "email": "t@example.com"},
                     "committer": {"name": "t", "email": "t@example.com"}}],
        "head_commit": None,
        "repository": {"id": 1, "name": "demo", "full_name": "acme/demo",
                       "clone_url": "https://github.com/acme/unregistered.git",
                       "html_url": "https://github.com/acme/demo",
                       "default_branch": "main", "owner": {"login": "acme", "name": "acme"}},
        "pusher": {"name": "t"}, "sender": {"login": "t"},
    }).encode()


def sign(body):
    return "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


class Server:
    def __init__(self, binary, data_dir):
        env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
               "TAKO_LOG": "warn", "TAKO_WEBHOOK_SECRET": SECRET.decode()}
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env=env, text=True)
        self.address = None
        deadline = time.time() + 60
        for line in self.proc.stdout:
            if line.startswith("Tako listening on http://"):
                self.address = line.split("http://", 1)[1].split()[0]
                break
            if time.time() > deadline:
                break
        if not self.address:
            self.proc.kill()
            raise RuntimeError("tako serve did not report its address")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def post(self, delivery, body):
        host, port = self.address.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", "/hooks/github", body=body, headers={
                "Content-Type": "application/json", "X-GitHub-Event": "push",
                "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def sigkill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.sigkill()


def burst(server, ids, bodies, on_answer):
    """Sends every id from SENDERS threads; on_answer(id, status, body) or
    (id, None, error) when the connection fails (the server is gone)."""
    queue = list(ids)
    lock = threading.Lock()

    def sender():
        while True:
            with lock:
                if not queue:
                    return
                delivery = queue.pop()
            try:
                status, body = server.post(delivery, bodies[delivery])
            except (OSError, http.client.HTTPException) as error:
                on_answer(delivery, None, str(error))
                continue
            on_answer(delivery, status, body)

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    return threads


def db_rows(data_dir):
    db = sqlite3.connect(f"file:{data_dir}/tako.db?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT id, state, outcome FROM deliveries").fetchall()
    finally:
        db.close()


def wait_processed(data_dir, expected, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = db_rows(data_dir)
        if len(rows) >= expected and all(r[2] is not None for r in rows):
            return rows
        time.sleep(0.5)
    return db_rows(data_dir)


def main():
    binary, pushes, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(int(os.environ.get("CRASH_SEED", time.time())))
    root = tempfile.mkdtemp(prefix="tako-crash-")
    data_dir = os.path.join(root, "data")
    acknowledged, duplicates_answered, unexpected = set(), 0, []
    bodies = {}
    started = time.time()
    report = []
    try:
        for round_ in range(1, rounds + 1):
            server = Server(binary, data_dir)
            ids = [f"crash-{round_}-{n}" for n in range(pushes)]
            for n, delivery in enumerate(ids):
                bodies[delivery] = payload(round_ * 1_000_000 + n)
            rng.shuffle(ids)
            kill_after = rng.randint(pushes // 10, pushes * 9 // 10)
            answered = {"202": 0, "failed": 0}
            lock = threading.Lock()

            def on_answer(delivery, status, body, answered=answered, lock=lock):
                with lock:
                    if status == 202:
                        acknowledged.add(delivery)
                        answered["202"] += 1
                    elif status is None:
                        answered["failed"] += 1
                    else:
                        unexpected.append((delivery, status, body[:200]))

            t0 = time.time()
            threads = burst(server, ids, bodies, on_answer)
            while answered["202"] < kill_after and any(t.is_alive() for t in threads):
                time.sleep(0.001)
            server.sigkill()
            for thread in threads:
                thread.join()
            line = (f"round {round_}: killed after {answered['202']} acknowledged of {pushes} "
                    f"({answered['failed']} unanswered, {time.time() - t0:.1f}s)")
            print(line, flush=True)
            report.append(line)

        # The last start: everything acknowledged is there, once, processed.
        server = Server(binary, data_dir)
        rows = wait_processed(data_dir, len(acknowledged))
        stored = [r[0] for r in rows]
        stored_set = set(stored)
        lost = sorted(acknowledged - stored_set)
        duplicated = len(stored) - len(stored_set)
        unprocessed = [r[0] for r in rows if r[2] is None]

        # Redelivery: every crash delivery twice, shuffled, plus fresh ones.
        fresh = [f"redeliver-{n}" for n in range(pushes)]
        for n, delivery in enumerate(fresh):
            bodies[delivery] = payload(9_000_000 + n)
        everything = [d for d in bodies]
        twice = everything + everything
        rng.shuffle(twice)
        redelivery = {}
        lock = threading.Lock()

        def on_redelivery(delivery, status, body):
            with lock:
                redelivery.setdefault(delivery, []).append(status)

        t0 = time.time()
        for thread in burst(server, twice, bodies, on_redelivery):
            thread.join()
        redelivery_seconds = time.time() - t0
        acked_twice = [d for d, s in redelivery.items() if s.count(202) > 1]
        already = [d for d in stored_set if 202 in redelivery.get(d, [])]
        bad_status = [(d, s) for d, s in redelivery.items() if any(x not in (200, 202) for x in s)]
        rows = wait_processed(data_dir, len(everything))
        stored_after = [r[0] for r in rows]
        redelivered_duplicates = len(stored_after) - len(set(stored_after))
        missing_after = sorted(set(everything) - set(stored_after))
        server.stop()

        summary = {
            "pushes_per_round": pushes, "rounds": rounds,
            "acknowledged": len(acknowledged), "stored": len(stored),
            "lost": len(lost), "duplicated": duplicated,
            "unprocessed_after_restart": len(unprocessed),
            "unexpected_answers": len(unexpected),
            "redelivery_requests": len(twice),
            "redelivery_acknowledged_twice": len(acked_twice),
            "redelivery_reacknowledged_stored": len(already),
            "redelivery_bad_status": len(bad_status),
            "redelivery_stored_duplicates": redelivered_duplicates,
            "redelivery_missing": len(missing_after),
            "redelivery_seconds": round(redelivery_seconds, 1),
            "total_seconds": round(time.time() - started, 1),
        }
        print(json.dumps(summary, indent=2))
        failed = (lost or duplicated or unprocessed or unexpected or acked_twice or already
                  or bad_status or redelivered_duplicates or missing_after)
        if failed:
            print("FAILED", file=sys.stderr)
            for what, items in [("lost", lost), ("unprocessed", unprocessed),
                                ("unexpected", unexpected), ("acked twice", acked_twice),
                                ("re-acknowledged", already), ("bad status", bad_status),
                                ("missing", missing_after)]:
                if items:
                    print(f"{what}: {items[:10]}", file=sys.stderr)
            return 1
        print("lost = 0, duplicated = 0, redelivery duplicates = 0")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
