#!/usr/bin/env python3
"""One run of the agent benchmarks of issue 13 (bench/agents.sh), Tako and
Buildbot side by side in the same run.

    agents.py run TAKO BB_VENV BB_RECIPE DIR PACED PUSHES LINES PARTS
        prints one JSON result line (see summary)
    agents.py summary RESULTS_JSONL
        Markdown tables of the runs

PARTS is a comma-separated subset of latency,throughput,log,interrupt,
buildbot. Every part starts a fresh `tako serve` (release build) in its own
data directory under DIR and real `tako agent run` processes enrolled with
tokens from the real CLI (`tako agent enroll-token --auto-approve`); pushes
are signed GitHub webhooks (bench/end_to_end.py) for commits of a real bare
repository reached through file://. The measured step, on both sides, is
`date +%s.%N >> STAMPS` (one `sh`/`bash` and one `date`): its own clock
reading is "the step is running".

  latency     one agent (role ps) in Env0, a takofile whose one step has
              `Roles: [ps]`; PACED pushes one at a time (the next after the
              previous deployment ended). Push → step: the step's stamp minus
              the moment the push was sent (and minus the moment its 202 was
              read). Where the time goes, from the same clock (server and
              agent run on this machine): the delivery's `completed_at`
              (routed: release made), the deployment's `started_at`
              (claimed by the scheduler), the job's `created_at` and
              `started_at` (taken by the agent's long poll) read from the
              server's SQLite database, the agent's "Job … started" line
              (read from its standard output as it is printed: the job
              arrived and was parsed), the stamp (after the source download
              and the step's process start).
  throughput  four agents, each alone in one of four environments (branches
              env0..env3 → Env0..Env3), PUSHES pushes round robin sent as fast
              as the server answers; every job must succeed and every push
              make one deployment. Jobs/s = successful jobs / (last job's
              `finished_at` − first push sent).
  log         one server, two projects with the same 1,000,000-line script
              step: on the server, and with `Roles: [ps]` on one agent;
              interleaved, 3 pushes each. Deployment `started_at` →
              `finished_at` (the whole log stored) for both; the agent's RSS
              sampled every 50 ms during its deployments; its RSS idle.
  interrupt   an agent runs `sleep 600`; 2 s after the step started the
              agent is killed with SIGKILL; the time until its job is
              `interrupted` in the store (polled every 50 ms), against the
              lease's end at the moment of the kill.
  buildbot    the recipe of ../shared/peers/buildbot (master + one worker,
              SQLite, GitHub change hook, builder `engine`: one ShellCommand
              `date … >> STAMPS`, collapseRequests off): PACED pushes one at a
              time (push → the step's stamp), PUSHES pushes sent as fast as
              the master answers (builds/s = successful builds / (last
              build's complete_at − first push sent)), the worker's RSS idle.

Only 127.0.0.1 is contacted.
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import end_to_end as e2e  # noqa: E402

BB_SECRET = "bench-buildbot-secret"


# ---------------------------------------------------------------- helpers


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def rss_mib(pid):
    """(VmRSS, VmHWM) of a process in MiB, or (nan, nan) once it is gone."""
    try:
        fields = {}
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.split()[0] if value.split() else "0"
        return int(fields.get("VmRSS", 0)) / 1024, int(fields.get("VmHWM", 0)) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return float("nan"), float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stamps(path):
    """The stamp lines written so far: [(epoch seconds, rest)]."""
    try:
        with open(path) as f:
            rows = []
            for line in f:
                parts = line.split(None, 1)
                if parts:
                    rows.append((float(parts[0]), parts[1].strip() if len(parts) > 1 else ""))
            return rows
    except FileNotFoundError:
        return []


def wait_for(predicate, timeout, every=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def ms(values):
    return {
        "n": len(values),
        "p50": e2e.percentile(values, 50),
        "p95": e2e.percentile(values, 95),
        "p99": e2e.percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def agents_takofile(project, environments, step):
    mappings = "".join(
        f"  - Branch: env{k}\n    Environment: Env{k}\n" for k in range(environments))
    return f"Project: {project}\nMappings:\n{mappings}Steps:\n{step}"


def stamp_step(stamp_path, roles=True):
    role = "    Roles: [ps]\n" if roles else ""
    return (f"  - Name: Stamp\n{role}    Run: |\n"
            f"      date \"+%s.%N $TAKO_DEPLOYMENT_ID\" >> {stamp_path}\n")


class Db:
    """The server's SQLite database, read-only beside the running server
    (WAL mode: readers do not block it)."""

    def __init__(self, data_dir):
        self.path = os.path.join(data_dir, "tako.db")

    def rows(self, sql, *args):
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()


class Agent:
    """`tako agent run` in its own process group; its stdout lines are kept
    with the moment each was read."""

    def __init__(self, tako, server, token, name, data_dir, log_path):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env["TAKO_LOG"] = os.environ.get("BENCH_AGENT_LOG", "warn")
        self.name = name
        self.lines = []
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [tako, "agent", "run", "--server", f"http://{server.address}", "--enroll", token,
             "--name", name, "--data-dir", data_dir],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append((time.time(), raw.decode(errors="replace").rstrip()))

    def started_at(self, job_id):
        """When the agent printed that job `job_id` started."""
        for at, line in self.lines:
            if line.startswith(f"Job {job_id} started"):
                return at
        return None

    def rss(self):
        return rss_mib(self.proc.pid)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        self.log.close()


class Tako:
    """A fresh `tako serve`, its API client, its database, its agents."""

    def __init__(self, tako, directory):
        os.makedirs(directory, exist_ok=True)
        self.tako, self.directory = tako, directory
        self.data = os.path.join(directory, "data")
        self.server = e2e.Server(tako, self.data, os.path.join(directory, "server.log"), [])
        self.client = e2e.Client(self.server)
        self.db = Db(self.data)
        self.agents = []

    def cli(self, *args):
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env["TAKO_SERVER"] = f"http://{self.server.address}"
        env["TAKO_TOKEN"] = self.server.token
        out = subprocess.run([self.tako, *args], capture_output=True, env=env,
                             stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            sys.exit(f"tako {' '.join(args)}: {out.stdout.decode()}{out.stderr.decode()}")
        return out.stdout.decode().strip()

    def agent(self, name, environment):
        token = self.cli("agent", "enroll-token", "--env", environment, "--role", "ps",
                         "--name", name, "--auto-approve").splitlines()[-1].strip()
        agent = Agent(self.tako, self.server, token, name,
                      os.path.join(self.directory, f"agent-{name}"),
                      os.path.join(self.directory, f"agent-{name}.log"))
        self.agents.append(agent)
        # Enrolled and asking for work: the agent is online in the list.
        def online():
            _, listed = self.client.api("GET", "/api/v1/agents")
            items = listed if isinstance(listed, list) else listed.get("items", [])
            return any(a.get("name") == name and a.get("state") == "online" for a in items)
        if not wait_for(online, 30, 0.05):
            sys.exit(f"agent {name} did not come online (see {agent.log.name})")
        return agent

    def project(self, name, repo, text, branches, per_branch, files=None):
        commits = e2e.make_repo(repo, text, branches, per_branch, files=files)
        clone_url = f"file://{repo}"
        status, body = self.client.api("POST", "/api/v1/projects", {
            "name": name, "repository": clone_url, "webhook_secret": e2e.SECRET})
        if status != 201:
            sys.exit(f"registering project {name} answered {status}: {body}")
        return e2e.Pusher(self.client, repo, clone_url, commits)

    def deployment_of(self, delivery, timeout=600):
        """The deployment of `delivery`, the newest push, once it ended."""
        if not e2e.wait_until_done(self.client, delivery, timeout=timeout):
            sys.exit(f"the deployment of {delivery} did not finish")
        deployment, routed = e2e.outcomes(self.client, [delivery]).get(delivery, (None, None))
        if deployment is None:
            sys.exit(f"{delivery} queued no deployment")
        _, detail = self.client.api("GET", f"/api/v1/deployments/{deployment}")
        return detail, routed

    def stop(self):
        for agent in self.agents:
            agent.stop()
        self.server.stop()


# ---------------------------------------------------------------- Tako parts


def tako_latency(tako, directory, paced):
    """Paced push → step on an agent, and where the time goes."""
    stamp_path = os.path.join(directory, "stamps.txt")
    t = Tako(tako, directory)
    try:
        pusher = t.project("Latency", os.path.join(directory, "latency.git"),
                           agents_takofile("Latency", 1, stamp_step(stamp_path)),
                           ["env0"], paced + 3)
        agent = t.agent("lat-01", "Env0")
        time.sleep(1)
        idle_rss = agent.rss()[0]
        pusher.push("env0", "warm-up")
        warm, _ = t.deployment_of("warm-up")
        if warm["state"] != "success":
            sys.exit(f"the warm-up deployment ended {warm['state']}: {warm.get('error')}")
        sent = []
        for i in range(paced):
            before = len(stamps(stamp_path))
            time.sleep(0.2)  # the agent is back in its long poll
            delivery = f"paced-{i}"
            s, a = pusher.push("env0", delivery)
            if not wait_for(lambda: len(stamps(stamp_path)) > before, 60):
                sys.exit(f"{delivery}: the step never ran")
            detail, routed = t.deployment_of(delivery)
            if detail["state"] != "success":
                sys.exit(f"{delivery}: deployment {detail['id']} {detail['state']}")
            sent.append((delivery, s, a, detail, routed))
        rows = stamps(stamp_path)[1:]  # the warm-up's first
        parts = {k: [] for k in ("sent_step", "ack_step", "answer", "route", "claim", "job",
                                 "take", "wake", "start")}
        for (delivery, s, a, detail, routed), (stamp, _) in zip(sent, rows):
            created, started = t.db.rows(
                "SELECT created_at, started_at FROM jobs WHERE deployment_id = ?",
                detail["id"])[0]
            job_id = t.db.rows("SELECT id FROM jobs WHERE deployment_id = ?", detail["id"])[0][0]
            claimed = e2e.parse_time(detail["started_at"])
            printed = agent.started_at(job_id)
            parts["sent_step"].append((stamp - s) * 1000)
            parts["ack_step"].append((stamp - a) * 1000)
            parts["answer"].append((a - s) * 1000)
            parts["route"].append((routed - a) * 1000)
            parts["claim"].append((claimed - routed) * 1000)
            parts["job"].append((created / 1000 - claimed) * 1000)
            parts["take"].append((started / 1000 - created / 1000) * 1000)
            if printed is not None:
                parts["wake"].append((printed - started / 1000) * 1000)
                parts["start"].append((stamp - printed) * 1000)
        after_rss, hwm = agent.rss()
    finally:
        t.stop()
    return {"paced": paced, "agent_idle_rss_mib": idle_rss, "agent_rss_after_mib": after_rss,
            "agent_hwm_mib": hwm,
            **{k: e2e.percentile(v, 50) for k, v in parts.items()},
            "sent_step_p95": e2e.percentile(parts["sent_step"], 95),
            "sent_step_p99": e2e.percentile(parts["sent_step"], 99),
            "ack_step_p95": e2e.percentile(parts["ack_step"], 95)}


def tako_throughput(tako, directory, pushes, agents=4):
    stamp_path = os.path.join(directory, "stamps.txt")
    t = Tako(tako, directory)
    try:
        branches = [f"env{k}" for k in range(agents)]
        pusher = t.project("Throughput", os.path.join(directory, "throughput.git"),
                           agents_takofile("Throughput", agents, stamp_step(stamp_path)),
                           branches, pushes // agents + 3)
        for k in range(agents):
            t.agent(f"thr-{k:02}", f"Env{k}")
        for k in range(agents):  # warm-up: the mirror, each agent's first job
            pusher.push(branches[k], f"warm-up-{k}")
        if not e2e.wait_until_done(t.client, f"warm-up-{agents - 1}", timeout=300):
            sys.exit("the warm-up pushes did not finish")
        states = dict(t.db.rows("SELECT state, count(*) FROM deployments GROUP BY state"))
        if states != {"success": agents}:
            sys.exit(f"the warm-up deployments ended {states}")
        first_id = t.db.rows("SELECT max(id) FROM deployments")[0][0]
        warm_jobs = t.db.rows("SELECT count(*) FROM jobs")[0][0]
        load_start = e2e.load1()
        acked = {}
        for i in range(pushes):
            delivery = f"burst-{i}"
            acked[delivery] = pusher.push(branches[i % agents], delivery)
        first_sent = min(s for s, _ in acked.values())
        send_s = time.time() - first_sent
        if not e2e.wait_until_done(t.client, f"burst-{pushes - 1}", timeout=1800):
            sys.exit("the burst did not finish in time")
        load_end = e2e.load1()
        found = e2e.outcomes(t.client, acked)
        made = sum(1 for d, _ in found.values() if d is not None)
        states = dict(t.db.rows(
            "SELECT state, count(*) FROM deployments WHERE id > ? GROUP BY state", first_id))
        jobs = t.db.rows("SELECT state, count(*), max(finished_at) FROM jobs "
                         "WHERE deployment_id > ? GROUP BY state", first_id)
        job_states = {state: count for state, count, _ in jobs}
        last_finished = max(f for _, _, f in jobs) / 1000
        per_agent = dict(t.db.rows("SELECT agent_name, count(*) FROM jobs "
                                   "WHERE deployment_id > ? GROUP BY agent_name", first_id))
        stamped = len(stamps(stamp_path)) - agents
        ok_jobs = job_states.get("success", 0)
        rss = [a.rss()[1] for a in t.agents]
    finally:
        t.stop()
    return {"pushes": pushes, "agents": agents, "deployments": made,
            "deployments_ok": states.get("success", 0), "deployment_states": states,
            "jobs_ok": ok_jobs, "job_states": job_states, "per_agent": per_agent,
            "stamped": stamped, "send_s": send_s, "drain_s": last_finished - first_sent,
            "jobs_per_s": ok_jobs / (last_finished - first_sent),
            "warm_jobs": warm_jobs, "agent_hwm_mib": max(rss),
            "load_start": load_start, "load_end": load_end}


def log_script(lines):
    return (f'i=0; while [ $i -lt {lines} ]; do echo "line $i of the log"; '
            'i=$((i+1)); done\n')


def tako_log(tako, directory, lines, runs=3):
    t = Tako(tako, directory)
    try:
        step = "  - Name: Print\n    Script: print.sh\n"
        files = {"print.sh": log_script(lines)}
        on_server = t.project("LogServer", os.path.join(directory, "server.git"),
                              agents_takofile("LogServer", 1, step), ["env0"], runs + 2,
                              files=files)
        on_agent = t.project("LogAgent", os.path.join(directory, "agent.git"),
                             agents_takofile("LogAgent", 1, step.replace(
                                 "    Script:", "    Roles: [ps]\n    Script:")).replace(
                                 "Env0", "AgentEnv"), ["env0"], runs + 2, files=files)
        agent = t.agent("log-01", "AgentEnv")
        time.sleep(2)
        idle_before = agent.rss()[0]
        for pusher, name in ((on_server, "server"), (on_agent, "agent")):
            pusher.push("env0", f"warm-up-{name}")
            warm, _ = t.deployment_of(f"warm-up-{name}")
            if warm["state"] != "success":
                sys.exit(f"log warm-up on the {name} ended {warm['state']}: {warm.get('error')}")
        rows = []
        for run in range(1, runs + 1):
            load = e2e.load1()
            on_server.push("env0", f"server-{run}")
            detail, _ = t.deployment_of(f"server-{run}")
            if detail["state"] != "success" or detail["log_lines"] < lines:
                sys.exit(f"server log run {run}: {detail['state']} {detail['log_lines']}")
            server_s = e2e.parse_time(detail["finished_at"]) - e2e.parse_time(detail["started_at"])
            samples = []
            done = threading.Event()

            def sample():
                while not done.is_set():
                    samples.append(agent.rss()[0])
                    time.sleep(0.05)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            on_agent.push("env0", f"agent-{run}")
            detail, _ = t.deployment_of(f"agent-{run}")
            done.set()
            sampler.join()
            if detail["state"] != "success" or detail["log_lines"] < lines:
                sys.exit(f"agent log run {run}: {detail['state']} {detail['log_lines']} "
                         f"{detail.get('error')}")
            agent_s = e2e.parse_time(detail["finished_at"]) - e2e.parse_time(detail["started_at"])
            job_s, step_s = t.db.rows("SELECT (finished_at - started_at) / 1000.0, "
                                      "duration_ms / 1000.0 FROM jobs WHERE deployment_id = ?",
                                      detail["id"])[0]
            samples = [x for x in samples if x == x]
            rows.append({"run": run, "server_s": server_s, "agent_s": agent_s, "job_s": job_s,
                         "step_s": step_s, "lines": detail["log_lines"], "rss_min": min(samples),
                         "rss_max": max(samples), "load": load})
            log(f"log run {run}: server {server_s:.3f} s, agent {agent_s:.3f} s (job {job_s:.3f}"
                f" s), agent RSS {min(samples):.1f}–{max(samples):.1f} MiB, load {load:.2f}")
        time.sleep(2)
        idle_after, hwm = agent.rss()
    finally:
        t.stop()
    return {"lines": lines, "runs": rows, "agent_idle_before_mib": idle_before,
            "agent_idle_after_mib": idle_after, "agent_hwm_mib": hwm,
            "server_s": statistics.median(r["server_s"] for r in rows),
            "agent_s": statistics.median(r["agent_s"] for r in rows),
            "ratio": statistics.median(r["agent_s"] for r in rows)
            / statistics.median(r["server_s"] for r in rows)}


def tako_interrupt(tako, directory):
    stamp_path = os.path.join(directory, "stamps.txt")
    t = Tako(tako, directory)
    pid_path = os.path.join(directory, "step.pid")
    try:
        step = ("  - Name: Hold\n    Roles: [ps]\n    Run: |\n"
                f"      echo $$ > {pid_path}\n"
                f"      date \"+%s.%N\" >> {stamp_path}\n"
                "      exec sleep 600\n")
        pusher = t.project("Interrupt", os.path.join(directory, "interrupt.git"),
                           agents_takofile("Interrupt", 1, step), ["env0"], 4)
        agent = t.agent("int-01", "Env0")
        pusher.push("env0", "hold")
        if not wait_for(lambda: stamps(stamp_path), 60):
            sys.exit("the holding step never ran")
        time.sleep(2)
        job_id, lease_until, started = t.db.rows(
            "SELECT id, lease_until, started_at FROM jobs WHERE state = 'running'")[0]
        killed = time.time()
        agent.kill()
        seen = wait_for(lambda: t.db.rows("SELECT finished_at FROM jobs WHERE id = ? AND "
                                          "state = 'interrupted'", job_id), 300, 0.05)
        observed = time.time()
        if not seen:
            sys.exit("the job was never interrupted")
        finished = seen[0][0] / 1000
        detail, _ = t.deployment_of("hold", timeout=120)
    finally:
        try:
            with open(pid_path) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)  # the orphaned step
        except (OSError, ValueError):
            pass
        t.stop()
    return {"kill_to_interrupted_s": finished - killed, "kill_to_observed_s": observed - killed,
            "lease_left_at_kill_s": lease_until / 1000 - killed,
            "job_ran_s": killed - started / 1000, "deployment_state": detail["state"],
            "deployment_error": detail.get("error")}


# ---------------------------------------------------------------- Buildbot


class Buildbot:
    """The peer recipe: a master (GitHub change hook, SQLite) and one worker."""

    def __init__(self, venv, recipe, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.hook_port, self.pb_port = free_port(), free_port()
        self.stamp_path = os.path.join(directory, "stamps.txt")
        self.env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        self.env.update({
            "BB_HOOK_PORT": str(self.hook_port), "BB_PB_PORT": str(self.pb_port),
            "BB_SECRET": BB_SECRET, "BB_STAMP_FILE": self.stamp_path,
            "BB_REPO_URL": "file:///nonexistent.git", "BB_COLLAPSE": "0",
            "BB_WORKER_PASS": "bench-pass",
        })
        master, worker = os.path.join(directory, "master"), os.path.join(directory, "worker")
        self.procs = []
        subprocess.run([f"{venv}/bin/buildbot", "create-master", "-q", master], check=True,
                       env=self.env, capture_output=True)
        shutil.copy(os.path.join(recipe, "master.cfg"), os.path.join(master, "master.cfg"))
        started = time.time()
        self.master = self._start([f"{venv}/bin/buildbot", "start", "--nodaemon", master],
                                  os.path.join(directory, "master.out"))
        if not wait_for(lambda: self._ok("/api/v2/builders"), 120, 0.05):
            self.stop()
            sys.exit(f"the Buildbot master did not start (see {directory}/master.out)")
        self.master_start_s = time.time() - started
        subprocess.run([f"{venv}/bin/buildbot-worker", "create-worker", "-q", worker,
                        f"127.0.0.1:{self.pb_port}", "w1", "bench-pass"], check=True,
                       env=self.env, capture_output=True)
        self.worker = self._start([f"{venv}/bin/buildbot-worker", "start", "--nodaemon", worker],
                                  os.path.join(directory, "worker.out"))

        def connected():
            workers = self.get("/api/v2/workers").get("workers", [])
            return any(w.get("connected_to") for w in workers)
        if not wait_for(connected, 60, 0.05):
            self.stop()
            sys.exit(f"the Buildbot worker did not connect (see {directory}/worker.out)")
        self.worker_pid = self._pid(os.path.join(worker, "twistd.pid"), self.worker.pid)
        self.master_pid = self._pid(os.path.join(master, "twistd.pid"), self.master.pid)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.hook_port, timeout=60)
        self.number = 0

    def _start(self, argv, out):
        handle = open(out, "ab")
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=self.env,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=self.directory)
        self.procs.append((proc, handle))
        return proc

    @staticmethod
    def _pid(path, fallback):
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return fallback

    def _ok(self, path):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.hook_port, timeout=5)
            conn.request("GET", path)
            return conn.getresponse().status == 200
        except OSError:
            return False

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.hook_port, timeout=30)
        conn.request("GET", path)
        response = conn.getresponse()
        return json.loads(response.read())

    def push(self, delivery):
        """One signed push of one new commit to bench/engine master;
        returns (sent, answered, revision)."""
        self.number += 1
        revision = hashlib.sha1(f"{delivery}-{self.number}".encode()).hexdigest()
        commit = {
            "id": revision, "tree_id": e2e.ZERO, "distinct": True,
            "message": f"Change {self.number}", "timestamp": "2026-12-06T00:00:00Z",
            "url": f"https://example.invalid/bench/engine/commit/{revision}",
            "author": {"name": "Bench", "email": "bench@example.invalid", "username": "bench"},
            "committer": {"name": "Bench", "email": "bench@example.invalid",
                          "username": "bench"},
            "added": [], "removed": [], "modified": ["app.txt"],
        }
        body = {
            "ref": "refs/heads/master", "before": e2e.ZERO, "after": revision,
            "created": False, "deleted": False, "forced": False, "base_ref": None,
            "compare": "https://example.invalid/bench/engine/compare",
            "commits": [commit], "head_commit": commit,
            "repository": {
                "id": 1, "node_id": "R_1", "name": "engine", "full_name": "bench/engine",
                "private": False, "owner": {"name": "bench", "login": "bench", "id": 2},
                "html_url": "https://example.invalid/bench/engine",
                "url": "https://example.invalid/bench/engine",
                "clone_url": "https://example.invalid/bench/engine.git",
                "default_branch": "master", "master_branch": "master",
            },
            "pusher": {"name": "bench", "email": "bench@example.invalid"},
            "sender": {"login": "bench", "id": 3},
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json", "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery, "User-Agent": "GitHub-Hookshot/bench",
            "X-Hub-Signature": "sha1=" + hmac.new(BB_SECRET.encode(), raw,
                                                  hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + hmac.new(BB_SECRET.encode(), raw,
                                                        hashlib.sha256).hexdigest(),
        }
        sent = time.time()
        for attempt in range(2):
            try:
                self.conn.request("POST", "/change_hook/github", body=raw, headers=headers)
                response = self.conn.getresponse()
                answer = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.hook_port, timeout=60)
                if attempt:
                    raise
        answered = time.time()
        if response.status != 200:
            sys.exit(f"Buildbot answered {response.status}: {answer[:300]!r}")
        return sent, answered, revision

    def idle(self):
        """No build request waiting and no build running."""
        requests = self.get("/api/v2/buildrequests?complete=false&limit=1")
        builds = self.get("/api/v2/builds?complete=false&limit=1")
        return not requests.get("buildrequests") and not builds.get("builds")

    def builds(self):
        return self.get("/api/v2/builds?field=buildid&field=results&field=complete_at"
                        "&field=started_at&field=complete&limit=100000").get("builds", [])

    def stop(self):
        for proc, handle in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait()
            handle.close()


def buildbot(venv, recipe, directory, paced, pushes):
    bb = Buildbot(venv, recipe, directory)
    try:
        time.sleep(2)
        worker_idle = rss_mib(bb.worker_pid)[0]
        master_idle = rss_mib(bb.master_pid)[0]
        # warm-up: the first build
        bb.push("warm-up")
        if not wait_for(lambda: stamps(bb.stamp_path), 60):
            sys.exit("Buildbot's warm-up build never ran its step")
        wait_for(bb.idle, 60, 0.05)
        latency, answers = [], []
        for i in range(paced):
            before = len(stamps(bb.stamp_path))
            time.sleep(0.2)
            sent, answered, revision = bb.push(f"paced-{i}")
            rows = wait_for(lambda: stamps(bb.stamp_path)[before:], 60)
            if not rows or revision not in rows[0][1]:
                sys.exit(f"Buildbot paced push {i}: no stamp for {revision}")
            latency.append((rows[0][0] - sent) * 1000)
            answers.append((answered - sent) * 1000)
            wait_for(bb.idle, 60, 0.02)
        done_before = max((b["buildid"] for b in bb.builds()), default=0)
        stamped_before = len(stamps(bb.stamp_path))
        load_start = e2e.load1()
        revisions = set()
        first_sent = None
        for i in range(pushes):
            sent, _, revision = bb.push(f"burst-{i}")
            first_sent = first_sent or sent
            revisions.add(revision)
        send_s = time.time() - first_sent
        deadline = time.time() + 3600
        while time.time() < deadline:
            if len(stamps(bb.stamp_path)) - stamped_before >= pushes and bb.idle():
                break
            time.sleep(0.5)
        load_end = e2e.load1()
        builds = [b for b in bb.builds() if b["buildid"] > done_before]
        ok = [b for b in builds if b.get("results") == 0 and b.get("complete")]
        last = max((b["complete_at"] for b in ok), default=None)
        stamped = {line.split()[-1] for _, line in stamps(bb.stamp_path)[stamped_before:]}
        worker_after, worker_hwm = rss_mib(bb.worker_pid)
        master_after, master_hwm = rss_mib(bb.master_pid)
    finally:
        bb.stop()
    return {"paced": paced, "p50": e2e.percentile(latency, 50),
            "p95": e2e.percentile(latency, 95), "p99": e2e.percentile(latency, 99),
            "answer_p50": e2e.percentile(answers, 50),
            "pushes": pushes, "builds": len(builds), "builds_ok": len(ok),
            "revisions_built": len(stamped & revisions), "send_s": send_s,
            "drain_s": (last - first_sent) if last else float("nan"),
            "builds_per_s": len(ok) / (last - first_sent) if last else float("nan"),
            "worker_idle_rss_mib": worker_idle, "worker_after_rss_mib": worker_after,
            "worker_hwm_mib": worker_hwm, "master_idle_rss_mib": master_idle,
            "master_hwm_mib": master_hwm, "master_start_s": bb.master_start_s,
            "load_start": load_start, "load_end": load_end}


# ---------------------------------------------------------------- run / summary


def run(tako, venv, recipe, directory, paced, pushes, lines, parts):
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load_start": e2e.load1()}
    for part in parts:
        load = e2e.load1()
        started = time.time()
        log(f"== {part} (load {load:.2f})")
        if part == "latency":
            out = tako_latency(tako, os.path.join(directory, "latency"), paced)
        elif part == "throughput":
            out = tako_throughput(tako, os.path.join(directory, "throughput"), pushes)
        elif part == "log":
            out = tako_log(tako, os.path.join(directory, "log"), lines)
        elif part == "interrupt":
            out = tako_interrupt(tako, os.path.join(directory, "interrupt"))
        elif part == "buildbot":
            out = buildbot(venv, recipe, os.path.join(directory, "buildbot"), paced, pushes)
        else:
            sys.exit(f"unknown part {part}")
        out["load"] = load
        out["seconds"] = time.time() - started
        log(json.dumps(out))
        result[part] = out
    result["load_end"] = e2e.load1()
    print(json.dumps(result), flush=True)


def summary(path):
    with open(path) as f:
        runs = [json.loads(line) for line in f if line.strip()]

    def values(part, key):
        return [r[part][key] for r in runs if part in r and r[part].get(key) is not None]

    def mmm(part, key, fmt="{:.0f}"):
        xs = values(part, key)
        if not xs:
            return "–"
        if len(xs) == 1:
            return fmt.format(xs[0])
        return (f"{fmt.format(statistics.median(xs))} "
                f"({fmt.format(min(xs))}–{fmt.format(max(xs))})")

    print(f"{len(runs)} run(s): {', '.join(r['date'] for r in runs)}; load (1 min) at the "
          f"start of each part: " + "; ".join(
              ", ".join(f"{p} {r[p]['load']:.2f}" for p in
                        ("latency", "throughput", "log", "interrupt", "buildbot") if p in r)
              for r in runs))
    print("\nMedian (min–max) of the runs when there are several.\n")
    print("| figure | Tako (agent) | Buildbot (worker) | target |")
    print("|---|---|---|---|")
    paced = runs[0].get("latency", runs[0].get("buildbot", {})).get("paced", "?")
    print(f"| push sent → step running, paced ({paced} pushes), p50 | "
          f"{mmm('latency', 'sent_step')} ms | {mmm('buildbot', 'p50')} ms | ≤ 50 ms |")
    print(f"| same, p95 | {mmm('latency', 'sent_step_p95')} ms | {mmm('buildbot', 'p95')} ms | |")
    print(f"| same, p99 | {mmm('latency', 'sent_step_p99')} ms | {mmm('buildbot', 'p99')} ms | |")
    print(f"| webhook answered (202 / 200), p50 | {mmm('latency', 'answer')} ms | "
          f"{mmm('buildbot', 'answer_p50')} ms | |")
    print(f"| answer read → step running, p50 | {mmm('latency', 'ack_step')} ms | | |")
    pushes = runs[0].get("throughput", runs[0].get("buildbot", {})).get("pushes", "?")
    print(f"| {pushes} pushes: jobs (builds) per second | "
          f"{mmm('throughput', 'jobs_per_s', '{:.1f}')} jobs/s (4 agents) | "
          f"{mmm('buildbot', 'builds_per_s', '{:.2f}')} builds/s (1 worker) | Tako higher |")
    print(f"| {pushes} pushes: succeeded | {mmm('throughput', 'jobs_ok')} jobs, "
          f"{mmm('throughput', 'deployments_ok')} deployments | {mmm('buildbot', 'builds_ok')}"
          f" builds ({mmm('buildbot', 'revisions_built')} pushed revisions built) | all |")
    print(f"| {pushes} pushes: sent in | {mmm('throughput', 'send_s', '{:.1f}')} s | "
          f"{mmm('buildbot', 'send_s', '{:.1f}')} s | |")
    print(f"| {pushes} pushes: first sent → last finished | "
          f"{mmm('throughput', 'drain_s', '{:.1f}')} s | {mmm('buildbot', 'drain_s', '{:.1f}')} s | |")
    print(f"| RSS idle (enrolled/connected, before any job) | "
          f"{mmm('latency', 'agent_idle_rss_mib', '{:.1f}')} MiB | "
          f"{mmm('buildbot', 'worker_idle_rss_mib', '{:.1f}')} MiB | ≤ 10 MiB "
          "(Woodpecker's agent ~30 MB, its docs) |")
    print(f"| RSS idle after jobs | {mmm('log', 'agent_idle_after_mib', '{:.1f}')} MiB (after "
          f"the 1,000,000-line steps) | {mmm('buildbot', 'worker_after_rss_mib', '{:.1f}')} MiB "
          f"(after the builds) | |")
    print(f"| peak RSS (VmHWM) of the agent / worker | "
          f"{mmm('log', 'agent_hwm_mib', '{:.1f}')} MiB (log part) | "
          f"{mmm('buildbot', 'worker_hwm_mib', '{:.1f}')} MiB | flat |")
    print(f"| Buildbot master RSS idle → peak | | {mmm('buildbot', 'master_idle_rss_mib', '{:.0f}')}"
          f" → {mmm('buildbot', 'master_hwm_mib', '{:.0f}')} MiB | |")
    if any("log" in r for r in runs):
        lines = runs[0]["log"]["lines"]
        print(f"| {lines:,}-line step, deployment started → finished (log stored): on the "
              f"server | {mmm('log', 'server_s', '{:.2f}')} s | | |")
        print(f"| same step on an agent | {mmm('log', 'agent_s', '{:.2f}')} s | | |")
        print(f"| ratio agent / server | {mmm('log', 'ratio', '{:.2f}')}× | | ≤ 1.5× |")
    print(f"| agent killed (SIGKILL) → its job `interrupted` | "
          f"{mmm('interrupt', 'kill_to_interrupted_s', '{:.1f}')} s (lease left at the kill: "
          f"{mmm('interrupt', 'lease_left_at_kill_s', '{:.1f}')} s) | | |")

    if any("latency" in r for r in runs):
        print("\nWhere the time of a paced push goes on Tako (medians of each part, ms; "
              "the parts' medians need not add up to the total's):\n")
        print("| part | ms |")
        print("|---|---|")
        for key, text in (
                ("answer", "push sent → 202 read (delivery stored)"),
                ("route", "202 → delivery routed (mirror fetched, release made, deployment queued)"),
                ("claim", "routed → deployment claimed by the scheduler (`started_at`)"),
                ("job", "claimed → job created for the agent (checkout on the server, engine)"),
                ("take", "job created → job taken by the agent's long poll (job `started_at`)"),
                ("wake", "taken → the agent prints \"Job … started\" (answer received, parsed)"),
                ("start", "agent has the job → the step's `date` runs (source download, "
                          "unpack, process start)"),
                ("sent_step", "total: push sent → step running")):
            print(f"| {text} | {mmm('latency', key)} |")

    print("\nEvery run (load: the 1-minute load average at the start of the part):\n")
    print("| run | Tako p50 (load) | Buildbot p50 | Tako jobs/s (load) | Buildbot builds/s "
          "(load) | agent idle RSS | log agent/server (load) | interrupted after |")
    print("|---|---|---|---|---|---|---|---|")

    def cell(r, part, key, fmt, with_load=False):
        if part not in r or r[part].get(key) is None:
            return "–"
        text = fmt.format(r[part][key])
        return f"{text} ({r[part]['load']:.2f})" if with_load else text
    for n, r in enumerate(runs, 1):
        print(f"| {n}: {r['date']} | {cell(r, 'latency', 'sent_step', '{:.0f} ms', True)} | "
              f"{cell(r, 'buildbot', 'p50', '{:.0f} ms')} | "
              f"{cell(r, 'throughput', 'jobs_per_s', '{:.1f}', True)} | "
              f"{cell(r, 'buildbot', 'builds_per_s', '{:.2f}', True)} | "
              f"{cell(r, 'latency', 'agent_idle_rss_mib', '{:.1f} MiB')} | "
              f"{cell(r, 'log', 'ratio', '{:.2f}×', True)} | "
              f"{cell(r, 'interrupt', 'kill_to_interrupted_s', '{:.1f} s')} |")

    if any("log" in r for r in runs):
        print("\nThe 1,000,000-line step, every run:\n")
        print("| run.push | on the server (s) | on the agent (s) | agent job taken → ended (s) | "
              "the step on the agent (s) | lines | agent RSS min–max during the step (MiB) "
              "| load |")
        print("|---|---|---|---|---|---|---|---|")
        for n, r in enumerate(runs, 1):
            for row in r.get("log", {}).get("runs", []):
                step = f"{row['step_s']:.3f}" if row.get("step_s") is not None else "–"
                print(f"| {n}.{row['run']} | {row['server_s']:.3f} | {row['agent_s']:.3f} | "
                      f"{row['job_s']:.3f} | {step} | {row['lines']} | {row['rss_min']:.1f}–"
                      f"{row['rss_max']:.1f} | {row['load']:.2f} |")
    if any("throughput" in r for r in runs):
        print("\nThroughput, every run:\n")
        for r in runs:
            t = r.get("throughput")
            if t:
                print(f"- {t['pushes']} pushes, {t['agents']} agents: deployments "
                      f"{t['deployment_states']}, jobs {t['job_states']}, per agent "
                      f"{t['per_agent']}, stamps {t['stamped']}, load {t['load_start']:.2f} → "
                      f"{t['load_end']:.2f}")
            b = r.get("buildbot")
            if b:
                print(f"- Buildbot: {b['pushes']} pushes, {b['builds']} builds, {b['builds_ok']} "
                      f"succeeded, {b['revisions_built']} pushed revisions stamped, load "
                      f"{b['load_start']:.2f} → {b['load_end']:.2f}; master started in "
                      f"{b['master_start_s']:.1f} s")
    if any("interrupt" in r for r in runs):
        for r in runs:
            i = r.get("interrupt")
            if i:
                print(f"- interrupt: killed after the job ran {i['job_ran_s']:.1f} s; interrupted "
                      f"{i['kill_to_interrupted_s']:.1f} s after the kill (seen "
                      f"{i['kill_to_observed_s']:.1f} s); deployment {i['deployment_state']}: "
                      f"{i['deployment_error']}")


def main():
    # SIGTERM (bench/agents.sh's cleanup) runs the `finally`s that stop
    # the servers, agents and Buildbot.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command, args = sys.argv[1], sys.argv[2:]
    if command == "run":
        tako, venv, recipe, directory = args[:4]
        paced, pushes, lines = int(args[4]), int(args[5]), int(args[6])
        parts = [p for p in re.split(r"[,\s]+", args[7]) if p]
        run(tako, venv, recipe, directory, paced, pushes, lines, parts)
    elif command == "summary":
        summary(args[0])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
