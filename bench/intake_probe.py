#!/usr/bin/env python3
"""Helpers of bench/intake.sh (start-up timing, counting what was carried out,
the Markdown summary). Only 127.0.0.1 is ever contacted.

    intake_probe.py start LOG URL CMD...       start CMD in its own process
                                               group, poll URL until 200;
                                               prints "PID STARTUP_MS"
    intake_probe.py rss PID                    prints "VmRSS_kB VmHWM_kB"
    intake_probe.py tako DB ACKED              wait for the router, count rows
    intake_probe.py webhook RUNS_LOG ACKED     wait for stragglers, count runs
    intake_probe.py summary RESULTS_TSV        Markdown tables
"""

import http.client
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse


def start(log, url, cmd):
    parsed = urllib.parse.urlsplit(url)
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
    deadline = t0 + 30
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=1)
            conn.request("GET", parsed.path or "/")
            if conn.getresponse().status == 200:
                ms = (time.perf_counter() - t0) * 1000
                print(proc.pid, f"{ms:.1f}")
                return
        except OSError:
            pass
        time.sleep(0.002)
    sys.exit(f"server not healthy after 30 s; see {log}")


def rss(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else "0"
    print(fields.get("VmRSS", "0"), fields.get("VmHWM", "0"))


def read_ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def tako(db, acked_file, timeout=120.0):
    """Every acknowledged id must be a stored row; waits (up to timeout) for
    the router to process every stored row. Prints
    stored processed missing drain_s."""
    acked = set(read_ids(acked_file))
    t0 = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    while True:
        pending = conn.execute(
            "SELECT count(*) FROM deliveries WHERE state = 'pending'"
        ).fetchone()[0]
        if pending == 0 or time.perf_counter() - t0 > timeout:
            break
        time.sleep(0.05)
    drain = time.perf_counter() - t0
    stored_ids = {row[0] for row in conn.execute("SELECT id FROM deliveries")}
    processed = conn.execute(
        "SELECT count(*) FROM deliveries WHERE state != 'pending'"
    ).fetchone()[0]
    missing = len(acked - stored_ids)
    print(len(stored_ids), processed, missing, f"{drain:.2f}")


def webhook(runs_log, acked_file, timeout=120.0, settle=2.0):
    """Waits until the command log stops growing for `settle` seconds, then
    prints runs unique_runs missing(acked ids not run; -1 when the responses
    carry no ids) straggle_s."""
    t0 = time.perf_counter()
    last, last_change = -1, t0

    def count():
        try:
            with open(runs_log, "rb") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    while True:
        now = time.perf_counter()
        n = count()
        if n != last:
            last, last_change = n, now
        elif now - last_change >= settle or now - t0 > timeout:
            break
        time.sleep(0.1)
    straggle = max(0.0, last_change - t0)
    try:
        runs = read_ids(runs_log)
    except FileNotFoundError:
        runs = []
    acked = read_ids(acked_file)
    missing = len(set(acked) - set(runs)) if acked else -1
    print(len(runs), len(set(runs)), missing, f"{straggle:.2f}")


COLUMNS = (
    "server c run rps p50_ms p99_ms max_ms responses acked carried processed "
    "lost startup_ms rss_idle_mb rss_peak_mb settle_s load statuses errors"
).split()


def summary(path):
    rows = []
    with open(path) as f:
        for line in f:
            values = line.rstrip("\n").split("\t")
            rows.append(dict(zip(COLUMNS, values)))
    order = []
    for row in rows:
        if row["server"] not in order:
            order.append(row["server"])

    def nums(group, key):
        return [float(r[key]) for r in group]

    def mmm(xs, fmt):
        return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"

    print("Median (min–max) of the runs; acknowledged, carried out and lost are totals over the runs.\n")
    print("| server | conc. | runs | requests/s | p50 | p99 | acknowledged | carried out | lost |")
    print("|---|---|---|---|---|---|---|---|---|")
    for server in order:
        for c in sorted({int(r["c"]) for r in rows if r["server"] == server}):
            group = [r for r in rows if r["server"] == server and int(r["c"]) == c]
            acked = sum(int(r["acked"]) for r in group)
            carried = sum(int(r["carried"]) for r in group)
            lost = sum(max(0, int(r["lost"])) for r in group)
            print(
                f"| {server} | {c} | {len(group)} | {mmm(nums(group, 'rps'), '{:,.0f}')} "
                f"| {mmm(nums(group, 'p50_ms'), '{:.2f}')} ms | {mmm(nums(group, 'p99_ms'), '{:.2f}')} ms "
                f"| {acked:,} | {carried:,} | {lost:,} |"
            )
    print("\n| server | start-up to healthy | RSS idle | RSS peak (VmHWM) | after the burst until carried out |")
    print("|---|---|---|---|---|")
    for server in order:
        group = [r for r in rows if r["server"] == server]
        print(
            f"| {server} | {mmm(nums(group, 'startup_ms'), '{:.0f}')} ms "
            f"| {mmm(nums(group, 'rss_idle_mb'), '{:.1f}')} MiB "
            f"| {mmm(nums(group, 'rss_peak_mb'), '{:.1f}')} MiB "
            f"| {mmm(nums(group, 'settle_s'), '{:.2f}')} s |"
        )
    print("\nEvery run:\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(r[k] for k in COLUMNS) + " |")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "start":
        start(args[0], args[1], args[2:])
    elif command == "rss":
        rss(args[0])
    elif command == "tako":
        tako(args[0], args[1])
    elif command == "webhook":
        webhook(args[0], args[1])
    elif command == "summary":
        summary(args[0])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
