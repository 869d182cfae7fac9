#!/usr/bin/env python3
"""Several nodes on PostgreSQL against one node on SQLite, side by side in
one run (bench/cluster.sh; issue 15 "Measured, not claimed", cluster spec §6).

    cluster.py TAKO WORKDIR        prints Markdown tables of one run

What one run measures, each on a fresh server and database:

  intake     signed pushes (the intake bench's ~7.5 KB push, a repository no
             project has: stored, then ignored) with wrk at c64 into one node,
             on SQLite and on PostgreSQL: accepted/s, p50/p99/max; every 202
             must name a stored delivery (checked in the database after).
             "All routed after": from the burst's start until no delivery is
             pending (the router has routed every one).
  loaded     the same burst while DEPLOYS one-step deployments (`true`) are
             queued in ten environments and running behind it.
  deploys    DEPLOYS_E2E deployments queued through the API, drained by one
             node and by three nodes on one PostgreSQL: completed/s from the
             first queued to the last finished.
  failover   two nodes on PostgreSQL (deployment_lease LEASE, lease_sweep
             SWEEP); node A runs a `sleep` deployment, one more waits behind it
             in the same environment; kill -9 of A to the waiting one running
             on B.

The header line also says how fast the machine is at the start of the run
(SHA-256 blocks a second on one core, the median fsync of 4 KiB): this
machine's speed moves by half within hours, so only figures of one run, or
of runs with similar header figures, compare.

PostgreSQL 15 from the system's binaries (initdb/pg_ctl, run as `nobody`
when root) on 127.0.0.1, fsync on. Only 127.0.0.1 is contacted. Environment:
REQUESTS (20000), CONCURRENCY (64), DEPLOYS (20000), DEPLOYS_E2E (1000),
LEASE (10s), SWEEP (2s), STORES ("sqlite postgres"), PARTS ("intake loaded
deploys failover"), PERF (set: perf record -a of each burst into WORKDIR; use
with KEEP=1), WORK_ON (a directory, e.g. /dev/shm: each node's working
directories go there, through a symlink; an experiment, not a setting),
PG_SETTINGS (more server options for PostgreSQL, e.g. "-c shared_buffers=1GB"),
PG_WARM_WAL_MB (256: WAL written and checkpointed before each part, so its
segments are recycled as on a server that has been running; 0 for a cold
initdb, where each new 16 MB segment is zero-filled during the burst),
PG_AFTER_MIGRATE, SQLITE_AFTER_MIGRATE (SQL run in the intake's database of
that store once its node has migrated it: a schema change tried before it
becomes a migration), PG_REPORT (SQL run in the intake's database once the
burst is routed, before the node stops; its rows go to standard error, e.g.
a query of pg_stat_statements).
"""

import atexit
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import end_to_end as e2e  # noqa: E402  (its repository, takofile and API client)

SECRET = "bench-cluster-secret"
PG_USER = "tako"


def load1():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    def __init__(self, work):
        versions = sorted(os.listdir("/usr/lib/postgresql"), key=int)
        self.bin = f"/usr/lib/postgresql/{versions[-1]}/bin"
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.as_nobody = os.getuid() == 0
        if self.as_nobody:
            shutil.chown(self.dir, "nobody", "nogroup")
        self.data = os.path.join(self.dir, "data")
        self.run("initdb", "-D", self.data, "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                 "--locale=C", "--no-sync")
        self.port = free_port()
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                 "-c max_connections=300 " + os.environ.get("PG_SETTINGS", ""), "start")
        self.databases = 0

    def run(self, program, *args):
        command = [os.path.join(self.bin, program), *args]
        if self.as_nobody:
            command = ["runuser", "-u", "nobody", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir,
                       env={**os.environ, "LC_ALL": "C"})

    def new_database(self):
        self.databases += 1
        name = f"bench{self.databases}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        self.warm_wal()
        return name, f"postgres://{PG_USER}@127.0.0.1:{self.port}/{name}"

    def warm_wal(self):
        """Leaves WAL segments ready for the next part, as on a server that
        has been running: PG_WARM_WAL_MB of WAL written and checkpointed, so
        the checkpoint recycles those segments instead of removing them. A
        fresh initdb has one segment, and every 16 MB of a burst's WAL then
        creates and zero-fills a new one (wal_init_zero) while commits wait.
        PG_WARM_WAL_MB=0 measures that cold start."""
        value = os.environ.get("PG_WARM_WAL_MB", "256")
        try:
            megabytes = int(value)
        except ValueError:
            sys.exit(f"PG_WARM_WAL_MB={value!r}: give a whole number of megabytes (0: none)")
        if megabytes <= 0:
            return
        # generate_series rows of an int take ~36 bytes of heap each, and a
        # table made by CREATE TABLE AS is logged page by page.
        rows = megabytes * (1 << 20) // 36
        self.psql("postgres", f"CREATE TABLE bench_wal AS SELECT g FROM generate_series(1, {rows}) g")
        self.psql("postgres", "DROP TABLE bench_wal")
        self.psql("postgres", "CHECKPOINT")

    def psql(self, database, sql, stdin=None):
        out = subprocess.run(
            [os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             PG_USER, "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            input=stdin, capture_output=True, check=True, text=True)
        return out.stdout.strip()

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass


class Node(e2e.Server):
    """`tako serve`; a node joining a database that has its token gets it
    from the caller."""

    def __init__(self, tako, data_dir, log, args, token=None, key_from=None):
        os.makedirs(data_dir, exist_ok=True)
        work_on = os.environ.get("WORK_ON")
        if work_on and not os.path.exists(os.path.join(data_dir, "work")):
            # The deployments' working directories on another file system
            # (e.g. /dev/shm): does their I/O slow the store's commits?
            elsewhere = tempfile.mkdtemp(prefix="tako-work-", dir=work_on)
            atexit.register(shutil.rmtree, elsewhere, True)
            os.symlink(elsewhere, os.path.join(data_dir, "work"))
        if key_from:
            shutil.copy(os.path.join(key_from, "secret.key"), os.path.join(data_dir, "secret.key"))
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        env["TAKO_LOG"] = os.environ.get("BENCH_TAKO_LOG", "warn")
        env["TAKO_WEBHOOK_SECRET"] = SECRET
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [tako, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, *args],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True)
        self.token = token
        self.address = None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("tako_"):
                self.token = line
            if line.startswith("Tako listening on http://"):
                self.address = line.split("http://", 1)[1].split()[0]
                break
        if not self.address or not self.token:
            self.stop()
            sys.exit(f"tako serve did not start (see {log})")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        host, port = self.address.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()


def wrk_burst(work, node, label, requests, concurrency):
    """The intake bench's burst; returns (accepted/s, p50, p99, max ms, acked ids)."""
    body = os.path.join(work, "push.json")
    if not os.path.exists(body):
        signature = subprocess.run(
            ["python3", os.path.join(HERE, "intake_payload.py"), body, SECRET],
            capture_output=True, text=True, check=True).stdout.strip()
        with open(body + ".sig", "w") as f:
            f.write(signature)
    with open(body + ".sig") as f:
        signature = f.read().strip()
    out_dir = os.path.join(work, f"wrk-{label}")
    os.makedirs(out_dir)
    env = {**os.environ, "INTAKE_BODY": body, "INTAKE_SIGNATURE": signature,
           "INTAKE_REQUESTS": str(requests), "INTAKE_THREADS": "2",
           "INTAKE_PREFIX": re.sub(r"[^a-z0-9]", "", label), "INTAKE_OUT": out_dir}
    perf = None
    if os.environ.get("PERF"):
        # PERF=1: a system-wide profile of the burst (perf report -i it).
        perf = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "499", "-o",
                                 os.path.join(work, f"perf-{label}.data")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
    burst_started = time.time()
    out = subprocess.run(
        ["wrk", "-t2", f"-c{concurrency}", "-d300s", "--timeout", "10s", "--latency", "-s",
         os.path.join(HERE, "intake.lua"), f"http://{node.address}/hooks/github"],
        env=env, capture_output=True, text=True, check=True).stdout
    print(f"burst {label}: {burst_started:.1f} to {time.time():.1f} (epoch s)", file=sys.stderr)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    with open(os.path.join(work, f"wrk-{label}.txt"), "w") as f:
        f.write(out)
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    acked_ids = open(os.path.join(out_dir, "acked")).read().split()
    seconds = int(fields["duration_us"]) / 1e6
    return (len(acked_ids) / seconds, int(fields["p50_us"]) / 1000,
            int(fields["p99_us"]) / 1000, int(fields["max_us"]) / 1000, acked_ids)


def missing_sqlite(db, acked):
    conn = sqlite3.connect(db)
    conn.execute("CREATE TEMP TABLE acked (id TEXT PRIMARY KEY)")
    conn.executemany("INSERT OR IGNORE INTO acked VALUES (?)", [(a,) for a in acked])
    n = conn.execute("SELECT count(*) FROM acked WHERE id NOT IN (SELECT id FROM deliveries)")
    return n.fetchone()[0]


def missing_postgres(pg, database, acked):
    return int(pg.psql(database,
                       "CREATE TEMP TABLE acked (id TEXT); COPY acked FROM STDIN; "
                       "SELECT count(*) FROM acked WHERE id NOT IN (SELECT id FROM deliveries)",
                       stdin="\n".join(acked) + "\n").splitlines()[-1])


def project_with_release(work, node, environments=10, steps='"true"'):
    """Registers a project on a bare repository whose takofile maps
    env0..env9 to Env0..Env9 with one step; creates a release; returns
    (client, release id)."""
    repo = os.path.join(work, f"repo-{time.time_ns()}.git")
    text = e2e.takofile(environments).replace('Run: "true"', f"Run: {steps}")
    e2e.make_repo(repo, text, [f"env{k}" for k in range(environments)], 1)
    client = e2e.Client(node)
    status, body = client.api("POST", "/api/v1/projects", {
        "name": e2e.PROJECT, "repository": f"file://{repo}", "webhook_secret": SECRET})
    assert status == 201, (status, body)
    for _ in range(100):
        status, body = client.api("POST", f"/api/v1/projects/{e2e.PROJECT}/releases", {})
        if status == 201:
            return client, body["release"]["id"]
        if status != 503:
            sys.exit(f"creating a release answered {status}: {body}")
        time.sleep(0.2)
    sys.exit("the repository was never fetched")


def queue(node, release, count, environments=10, threads=8):
    """Queues `count` deployments of `release` round robin over the
    environments, from `threads` API clients."""
    def work(offset):
        client = e2e.Client(node)
        for i in range(offset, count, threads):
            status, body = client.api("POST", f"/api/v1/releases/{release}/deployments",
                                      {"environment": f"Env{i % environments}"})
            if status != 201:
                sys.exit(f"queueing answered {status}: {body}")
    started = time.time()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.time() - started


def intake(tako, work, pg, store, loaded, requests, concurrency, deploys):
    label = f"{store}-{'loaded' if loaded else 'idle'}"
    base = os.path.join(work, label)
    os.makedirs(base)
    args = []
    database = None
    if store == "postgres":
        database, url = pg.new_database()
        args = ["--database-url", url]
    node = Node(tako, os.path.join(base, "data"), os.path.join(base, "server.log"), args)
    if store == "postgres" and os.environ.get("PG_AFTER_MIGRATE"):
        pg.psql(database, os.environ["PG_AFTER_MIGRATE"])
    if store == "sqlite" and os.environ.get("SQLITE_AFTER_MIGRATE"):
        conn = sqlite3.connect(os.path.join(base, "data", "tako.db"), timeout=30)
        conn.executescript(os.environ["SQLITE_AFTER_MIGRATE"])
        conn.close()
    try:
        settle()
        before = None
        if loaded:
            _, release = project_with_release(base, node)
            queue(node, release, deploys)
            before = finished_count(store, pg, database, base)
        load = load1()
        burst_started = time.time()
        rps, p50, p99, worst, acked = wrk_burst(base, node, label, requests, concurrency)
        during = None
        if loaded:
            during = finished_count(store, pg, database, base) - before
        routed = routed_after(store, pg, database, base, burst_started)
        if store == "postgres" and os.environ.get("PG_REPORT"):
            print(f"{label}:\n{pg.psql(database, os.environ['PG_REPORT'])}", file=sys.stderr)
    finally:
        node.stop()
    if store == "postgres":
        lost = missing_postgres(pg, database, acked)
    else:
        lost = missing_sqlite(os.path.join(base, "data", "tako.db"), acked)
    return {"label": label, "rps": rps, "p50": p50, "p99": p99, "max": worst,
            "acked": len(acked), "lost": lost, "load": load, "deployed": during,
            "routed": routed}


def settle():
    """Starts a burst on a quiet disk: what earlier parts left dirty in the
    page cache (their deployments' working directories, their databases)
    is written out first, not during the burst."""
    os.sync()
    time.sleep(2)


def routed_after(store, pg, database, base, burst_started, limit=600):
    """Seconds from the burst's start until the router has routed every
    stored delivery (none pending), polled every 0.2 s."""
    sql = "SELECT count(*) FROM deliveries WHERE state = 'pending'"
    deadline = time.time() + limit
    while time.time() < deadline:
        if store == "postgres":
            pending = int(pg.psql(database, sql))
        else:
            conn = sqlite3.connect(os.path.join(base, "data", "tako.db"))
            pending = conn.execute(sql).fetchone()[0]
            conn.close()
        if pending == 0:
            return time.time() - burst_started
        time.sleep(0.2)
    sys.exit(f"deliveries still pending {limit} s after the burst")


def finished_count(store, pg, database, base):
    sql = "SELECT count(*) FROM deployments WHERE state NOT IN ('queued', 'running')"
    if store == "postgres":
        return int(pg.psql(database, sql))
    conn = sqlite3.connect(os.path.join(base, "data", "tako.db"))
    return conn.execute(sql).fetchone()[0]


def drain(tako, work, pg, nodes, count):
    base = os.path.join(work, f"deploys-{nodes}")
    os.makedirs(base)
    database, url = pg.new_database()
    first = Node(tako, os.path.join(base, "n1"), os.path.join(base, "n1.log"),
                 ["--database-url", url])
    started = [first]
    try:
        _, release = project_with_release(base, first)
        for k in range(2, nodes + 1):
            started.append(Node(tako, os.path.join(base, f"n{k}"), os.path.join(base, f"n{k}.log"),
                                ["--database-url", url], token=first.token,
                                key_from=os.path.join(base, "n1")))
        load = load1()
        t0 = time.time()
        queue(first, release, count)
        while True:
            done = int(pg.psql(database, "SELECT count(*) FROM deployments "
                                         "WHERE state NOT IN ('queued', 'running')"))
            if done >= count:
                break
            if time.time() - t0 > 1800:
                sys.exit("the deployments did not finish in 30 minutes")
            time.sleep(0.2)
        elapsed = time.time() - t0
        rows = pg.psql(database, "SELECT claimed_by, count(*), "
                                 "count(*) FILTER (WHERE state = 'success') "
                                 "FROM deployments GROUP BY 1 ORDER BY 1")
    finally:
        for node in started:
            node.stop()
    ok = sum(int(r.split("|")[2]) for r in rows.splitlines())
    per_node = ", ".join(r.split("|")[1] for r in rows.splitlines())
    return {"nodes": nodes, "count": count, "ok": ok, "seconds": elapsed,
            "per_s": ok / elapsed, "per_node": per_node, "load": load}


def failover(tako, work, pg, lease, sweep):
    base = os.path.join(work, "failover")
    os.makedirs(base)
    database, url = pg.new_database()
    args = ["--database-url", url, "--deployment-lease", lease, "--lease-sweep", sweep]
    a = Node(tako, os.path.join(base, "a"), os.path.join(base, "a.log"), args)
    b = None
    try:
        _, release = project_with_release(base, a, environments=1, steps='"sleep 600"')
        client = e2e.Client(a)
        status, first = client.api("POST", f"/api/v1/releases/{release}/deployments",
                                   {"environment": "Env0"})
        assert status == 201, first
        deadline = time.time() + 60
        while pg.psql(database, f"SELECT state FROM deployments WHERE id = {first['id']}") \
                != "running":
            assert time.time() < deadline, "the first deployment never ran"
            time.sleep(0.1)
        status, second = client.api("POST", f"/api/v1/releases/{release}/deployments",
                                    {"environment": "Env0"})
        assert status == 201, second
        b = Node(tako, os.path.join(base, "b"), os.path.join(base, "b.log"), args,
                 token=a.token, key_from=os.path.join(base, "a"))
        time.sleep(1)
        load = load1()
        killed = time.time()
        a.kill9()
        interrupted = None
        while True:
            state = pg.psql(database, f"SELECT state FROM deployments WHERE id = {first['id']}")
            if interrupted is None and state != "running":
                interrupted = time.time() - killed
            moved = pg.psql(database,
                            f"SELECT state FROM deployments WHERE id = {second['id']}")
            if moved != "queued":
                return {"interrupted": interrupted or time.time() - killed,
                        "moved": time.time() - killed, "lease": lease, "sweep": sweep,
                        "load": load}
            if time.time() - killed > 300:
                sys.exit("the queue never moved")
            time.sleep(0.02)
    finally:
        if b:
            b.stop()
        if a.proc.poll() is None:
            a.stop()


def machine_speed(work):
    """How fast this machine is right now, so runs of different hours can be
    told apart: SHA-256 over 8 KiB blocks a second on one core (0.5 s of
    it), and the median of 50 writes of 4 KiB each followed by an fsync, in
    the bench's working directory."""
    import hashlib
    block = os.urandom(8192)
    hashed, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.5:
        for _ in range(100):
            hashlib.sha256(block).digest()
        hashed += 100
    per_second = hashed / (time.perf_counter() - started)
    path = os.path.join(work, "fsync-probe")
    took = []
    with open(path, "wb") as f:
        for _ in range(50):
            began = time.perf_counter()
            f.write(block[:4096])
            f.flush()
            os.fsync(f.fileno())
            took.append(time.perf_counter() - began)
    os.remove(path)
    took.sort()
    return per_second, took[len(took) // 2] * 1000


def main():
    tako, work = sys.argv[1], sys.argv[2]
    requests = int(os.environ.get("REQUESTS", "20000"))
    concurrency = int(os.environ.get("CONCURRENCY", "64"))
    deploys = int(os.environ.get("DEPLOYS", "20000"))
    deploys_e2e = int(os.environ.get("DEPLOYS_E2E", "1000"))
    lease = os.environ.get("LEASE", "10s")
    sweep = os.environ.get("SWEEP", "2s")
    stores = os.environ.get("STORES", "sqlite postgres").split()
    parts = os.environ.get("PARTS", "intake loaded deploys failover").split()
    pg = Postgres(work)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        hashes, fsync_ms = machine_speed(work)
        print(f"{started}, {os.cpu_count()} CPUs, load {load1()} at start; "
              f"wrk -t2 -c{concurrency}, {requests} pushes per burst; "
              f"machine: {hashes:,.0f} SHA-256 of 8 KiB/s on one core, "
              f"fsync of 4 KiB {fsync_ms:.2f} ms (median of 50)\n")
        if "intake" in parts or "loaded" in parts:
            print("| store | deployments behind | accepted/s | p50 | p99 | max | acked | lost | all routed after | deployments finished during the burst | load |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for loaded in (False, True):
                if ("loaded" if loaded else "intake") not in parts:
                    continue
                for store in stores:
                    r = intake(tako, work, pg, store, loaded, requests, concurrency, deploys)
                    print(f"| {store} | {deploys if loaded else 0} | {r['rps']:,.0f} | "
                          f"{r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['max']:.0f} ms | "
                          f"{r['acked']} | {r['lost']} | {r['routed']:.1f} s | "
                          f"{'-' if r['deployed'] is None else r['deployed']} | {r['load']} |",
                          flush=True)
            print()
        if "deploys" in parts:
            print("| nodes on PostgreSQL | deployments | succeeded | seconds | deployments/s | per node | load |")
            print("|---|---|---|---|---|---|---|")
            for nodes in (1, 3):
                r = drain(tako, work, pg, nodes, deploys_e2e)
                print(f"| {nodes} | {r['count']} | {r['ok']} | {r['seconds']:.1f} | "
                      f"{r['per_s']:.1f} | {r['per_node']} | {r['load']} |", flush=True)
            print()
        if "failover" in parts:
            r = failover(tako, work, pg, lease, sweep)
            print("| deployment_lease | lease_sweep | kill -9 to interrupted | kill -9 to the queue moving on the other node | load |")
            print("|---|---|---|---|---|")
            print(f"| {r['lease']} | {r['sweep']} | {r['interrupted']:.1f} s | {r['moved']:.1f} s | {r['load']} |")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
