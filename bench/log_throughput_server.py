#!/usr/bin/env python3
"""The log throughput benchmark through the server (bench/log-throughput-server.sh):
a step printing LINES lines, deployed by a real `tako serve` after a signed
push, against the same script run by bash with its output to a file.

    log_throughput_server.py RUNS LINES TAKO DIR [SERVE_ARGS...]

One server for all runs (a fresh data directory); a warm-up push first (the
mirror's first clone; its deployment is not counted); then RUNS times,
interleaved: `bash print.sh > file` (wall time), and one push whose
deployment is timed from its `started_at` to its `finished_at` (server
timestamps: the checkout, the step, and storing the whole task log, which
the scheduler finishes before the deployment ends). The server's RSS is read
before each push, after each deployment, and its peak (VmHWM) at the end.
Every deployment must succeed with LINES log lines stored. Prints Markdown.
"""

import os
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import end_to_end as e2e  # noqa: E402

PROJECT = "LogBench"


def script(lines):
    return (f'i=0; while [ $i -lt {lines} ]; do echo "line $i of the log"; '
            'i=$((i+1)); done\n')


def takofile():
    return (f"Project: {PROJECT}\nMappings:\n  - Branch: bench\n    Environment: Bench\n"
            "Steps:\n  - Name: Print\n    Script: print.sh\n")


def wait_for(client, delivery, timeout=600):
    if not e2e.wait_until_done(client, delivery, timeout=timeout):
        sys.exit(f"the deployment of {delivery} did not finish")
    deployment, _ = e2e.outcomes(client, [delivery]).get(delivery, (None, None))
    if deployment is None:
        sys.exit(f"{delivery} queued no deployment")
    _, detail = client.api("GET", f"/api/v1/deployments/{deployment}")
    return detail


def main():
    runs, lines, tako, directory = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    serve_args = sys.argv[5:]
    os.makedirs(directory, exist_ok=True)
    repo = os.path.join(directory, "logbench.git")
    commits = e2e.make_repo(repo, takofile(), ["bench"], runs + 2,
                            files={"print.sh": script(lines)})
    clone_url = f"file://{repo}"
    baseline_script = os.path.join(directory, "print.sh")
    with open(baseline_script, "w") as f:
        f.write(script(lines))

    server = e2e.Server(tako, os.path.join(directory, "data"),
                        os.path.join(directory, "server.log"), serve_args)
    rows = []
    plain = []
    try:
        client = e2e.Client(server)
        status, body = client.api("POST", "/api/v1/projects", {
            "name": PROJECT, "repository": clone_url, "webhook_secret": e2e.SECRET})
        if status != 201:
            sys.exit(f"registering the project answered {status}: {body}")
        pusher = e2e.Pusher(client, repo, clone_url, commits)
        pusher.push("bench", "warm-up")
        warm = wait_for(client, "warm-up")
        if warm["state"] != "success":
            sys.exit(f"the warm-up deployment ended {warm['state']}: {warm.get('error')}")
        for run in range(1, runs + 1):
            load = e2e.load1()
            out = os.path.join(directory, "plain.log")
            started = time.perf_counter()
            with open(out, "wb") as f:
                subprocess.run(["bash", baseline_script], stdout=f, stderr=f, check=True)
            plain.append(time.perf_counter() - started)

            rss_before, _ = server.rss_mb()
            delivery = f"run-{run}"
            pusher.push("bench", delivery)
            detail = wait_for(client, delivery)
            rss_after, _ = server.rss_mb()
            if detail["state"] != "success" or detail["log_lines"] < lines:
                sys.exit(f"deployment {detail['id']}: {detail['state']}, "
                         f"{detail['log_lines']} log lines: {detail.get('error')}")
            deployment_s = (e2e.parse_time(detail["finished_at"])
                            - e2e.parse_time(detail["started_at"]))
            step_s = detail["steps"][0]["duration_ms"] / 1000
            rows.append((run, plain[-1], deployment_s, step_s, detail["log_lines"],
                         rss_before, rss_after, load))
            print(f"run {run}: script > file {plain[-1]:.3f} s, deployment {deployment_s:.3f} s "
                  f"(step {step_s:.3f} s), {detail['log_lines']} lines, RSS "
                  f"{rss_before:.1f} -> {rss_after:.1f} MiB, load {load:.2f}", file=sys.stderr)
        _, rss_peak = server.rss_mb()
    finally:
        server.stop()
    db_mb = os.path.getsize(os.path.join(directory, "data", "tako.db")) / 2**20

    def mmm(xs, unit, fmt="{:.3f}"):
        return (f"{fmt.format(statistics.median(xs))} {unit} | {fmt.format(min(xs))} {unit} "
                f"| {fmt.format(max(xs))} {unit}")

    print(f"{runs} runs of {lines:,} lines; load (1 min) {', '.join(f'{r[7]:.2f}' for r in rows)}\n")
    print("| run | median | min | max |")
    print("|---|---|---|---|")
    print(f"| script > file | {mmm(plain, 's')} |")
    print(f"| deployment through tako serve (started → finished) | {mmm([r[2] for r in rows], 's')} |")
    print(f"| its step (duration) | {mmm([r[3] for r in rows], 's')} |")
    print(f"| server RSS before the push | {mmm([r[5] for r in rows], 'MiB', '{:.1f}')} |")
    print(f"| server RSS after the deployment | {mmm([r[6] for r in rows], 'MiB', '{:.1f}')} |")
    ratio = statistics.median([r[2] for r in rows]) / statistics.median(plain)
    print(f"\nratio of medians (deployment / script > file): {ratio:.2f}x (goal <= 1.30x)")
    print(f"server RSS peak (VmHWM) over the whole run: {rss_peak:.1f} MiB; "
          f"database after {runs + 1} deployments: {db_mb:.0f} MiB")
    print("\n| run | script_s | deployment_s | step_s | log_lines | rss_before_mb | rss_after_mb | load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]} | {r[5]:.1f} | {r[6]:.1f} | {r[7]:.2f} |")


if __name__ == "__main__":
    main()
