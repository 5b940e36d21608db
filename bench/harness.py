"""Processes of a benchmark run: the bench cluster, PgBouncer, pgring, and pgbench runs.

Used by bench/run. Everything here talks to real programs (scripts/cluster, pgbench, psql,
pgbouncer, pgring); the statistics and the report live in report.py.
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(REPO, "scripts", "cluster")
PGBOUNCER = "/usr/sbin/pgbouncer"
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_DEADLINE = 30.0  # seconds for a proxy to accept connections
# pgbench stops sending at the end of -T but waits for the answers in flight; a run still
# going this many seconds later waits for answers that will not come.
HANG_GRACE = 30


class BenchError(Exception):
    """A failure that stops the benchmark, with a message saying what to do."""


def log(msg):
    print(f"bench: {msg}", flush=True)


def run(cmd, env=None, check=True, timeout=None, input_text=None):
    """Runs cmd, returns CompletedProcess with text stdout/stderr."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          input=input_text)
    if check and proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd[:3])} ... failed (exit {proc.returncode}):\n"
                         f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def pg_bindir():
    for d in ("/usr/lib/postgresql/15/bin",):
        if os.access(os.path.join(d, "pgbench"), os.X_OK):
            return d
    found = shutil.which("pgbench")
    if found:
        return os.path.dirname(found)
    raise BenchError("pgbench not found; run scripts/install-deps (postgresql-15)")


# ---------------------------------------------------------------------------------------
# /proc

def cpu_seconds(pid):
    """utime + stime of process pid (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def task_switches(pid):
    """(voluntary, involuntary) context switches of process pid, summed over its threads:
    the times it went to sleep waiting for work, and the times the scheduler took the CPU
    from it (usually for a task it had just woken)."""
    voluntary = involuntary = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        involuntary += int(line.split()[1])
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return voluntary, involuntary


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def raise_fd_limit(want):
    """Raises this process's open-file limit (inherited by the proxies) towards want."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard)
    if os.geteuid() == 0 and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------------------
# Cluster

class Cluster:
    """A scripts/cluster cluster (one shard unless told) in its own directory and ports."""

    def __init__(self, directory, port, shards=1):
        self.dir = os.path.abspath(directory)
        self.port = port
        self.shards = shards
        self.env = {}

    def start(self):
        log(f"starting a {self.shards}-shard cluster in {self.dir} (port {self.port})")
        os.makedirs(os.path.dirname(self.dir), exist_ok=True)
        out = run([CLUSTER, "start", "--shards", str(self.shards), "--port", str(self.port),
                   "--dir", self.dir]).stdout
        for line in out.splitlines():
            m = re.match(r"export (\w+)='(.*)'$", line)
            if m:
                self.env[m.group(1)] = m.group(2)
        for key in ("PGRING_CONFIG", "SHARD_DSNS", "SHARD_SUPERUSER_DSNS", "PGRING_PORT"):
            if key not in self.env:
                raise BenchError(f"scripts/cluster start printed no {key}")
        self.app_password = open(os.path.join(self.dir, "app.password")).read().strip()

    def stop(self):
        run([CLUSTER, "stop", "--dir", self.dir], check=False)

    def super_dsn(self):
        return self.env["SHARD_SUPERUSER_DSNS"].split()[0]

    def shard_dsn(self, i):
        """DSN of shard i as role app."""
        return self.env["SHARD_DSNS"].split()[i]

    def sql(self, query, superuser=True):
        """Runs query on shard 0 and returns its unaligned output."""
        dsn = self.super_dsn() if superuser else self.env["SHARD_DSNS"].split()[0]
        return run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn,
                    "-c", query]).stdout.strip()

    def app_verifier(self):
        verifier = self.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
        if not verifier.startswith("SCRAM-SHA-256$"):
            raise BenchError(f"role app has no SCRAM verifier (got '{verifier[:16]}...')")
        return verifier

    def pgbench_init(self, bindir, scale):
        log(f"pgbench -i -s {scale} through direct PostgreSQL")
        env = client_env(self.port, self.app_password)
        run([os.path.join(bindir, "pgbench"), "-i", "-q", "-s", str(scale)], env=env)


def client_env(port, password):
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("PG"):
            del env[key]
    env.update(PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="app", PGDATABASE="app",
               PGPASSWORD=password, PGSSLMODE="disable", PGGSSENCMODE="disable")
    return env


# ---------------------------------------------------------------------------------------
# Proxies

class Proxy:
    """A proxy process started by the benchmark."""

    name = "?"

    def __init__(self, workdir, port):
        self.workdir = workdir
        self.port = port
        self.proc = None
        self.pid = None
        self.error = None  # why this target cannot run, or None

    def wait_ready(self, logfile):
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.pid is None:
                self.pid = self.find_pid()
            if self.pid and port_accepts(self.port):
                return
            time.sleep(0.1)
        tail = ""
        if os.path.exists(logfile):
            tail = "".join(open(logfile, errors="replace").readlines()[-15:])
        self.stop()
        raise BenchError(f"{self.name} did not accept connections on port {self.port} "
                         f"within {START_DEADLINE:.0f}s; last lines of {logfile}:\n{tail}")

    def find_pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class PgBouncer(Proxy):
    """PgBouncer (Debian package) in transaction pooling mode in front of the shard."""

    name = "pgbouncer"

    def start(self, cluster, pool_size, max_client_conn):
        d = os.path.join(self.workdir, "pgbouncer")
        os.makedirs(d, exist_ok=True)
        verifier = cluster.app_verifier()
        with open(os.path.join(d, "userlist.txt"), "w") as f:
            f.write(f'"app" "{verifier}"\n')
        self.logfile = os.path.join(d, "pgbouncer.log")
        ini = os.path.join(d, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write(f"""; Written by bench/run for one benchmark.
[databases]
app = host=127.0.0.1 port={cluster.port} dbname=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {d}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {max_client_conn}
logfile = {self.logfile}
pidfile = {d}/pgbouncer.pid
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
""")
        kwargs = {}
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root.
            shutil.chown(d, "postgres", "postgres")
            for name in os.listdir(d):
                shutil.chown(os.path.join(d, name), "postgres", "postgres")
            kwargs = dict(user="postgres", group="postgres", extra_groups=[])
        os.chmod(d, 0o700)
        if os.path.exists(self.logfile):
            os.replace(self.logfile, self.logfile + ".1")
        self.proc = subprocess.Popen([PGBOUNCER, ini], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, cwd=d, **kwargs)
        self.pid = self.proc.pid
        self.wait_ready(self.logfile)
        log(f"pgbouncer running (pid {self.pid}) on 127.0.0.1:{self.port}")

    def version(self):
        return run([PGBOUNCER, "--version"], check=False).stdout.splitlines()[0]


class Pgring(Proxy):
    """pgring with the cluster's generated configuration, adjusted for the benchmark."""

    name = "pgring"

    def __init__(self, workdir, port, binary):
        super().__init__(workdir, port)
        self.binary = binary

    def write_config(self, cluster, pool_size, workers, max_clients):
        text = open(cluster.env["PGRING_CONFIG"]).read()

        def sub(pattern, repl, what, flags=re.M):
            nonlocal text
            text, n = re.subn(pattern, repl, text, count=1, flags=flags)
            if n != 1:
                raise BenchError(f"cannot adjust {what} in {cluster.env['PGRING_CONFIG']}: "
                                 f"pattern {pattern!r} not found; update bench/harness.py")

        sub(r"^workers: *\d+ *$", f"workers: {workers}", "workers")
        sub(r"^(pool:\n(?:  .*\n)*?)  size: *\d+ *$", rf"\g<1>  size: {pool_size}",
            "pool.size")
        if re.search(r"^  max_clients:", text, re.M):
            sub(r"^  max_clients: *\d+ *$", f"  max_clients: {max_clients}", "max_clients")
        else:
            sub(r"^pool:\n", f"pool:\n  max_clients: {max_clients}\n", "pool")
        # Clients log in with the same verifier (salt, iteration count) as PostgreSQL and
        # PgBouncer use, so the three do the same SCRAM work for a new connection.
        verifier = cluster.app_verifier()
        sub(r"^(    - name: app\n)      password_file: \S+$",
            rf'\g<1>      scram_verifier: "{verifier}"', "auth.users[app]")
        # Per-connection info lines would cost pgring time PgBouncer (log_connections = 0)
        # does not spend.
        sub(r"^(logging:\n(?:  .*\n)*?)  level: *\w+ *$", r"\g<1>  level: warn",
            "logging.level")
        path = os.path.join(self.workdir, "pgring.yaml")
        with open(path, "w") as f:
            f.write("# Copied from the cluster's pgring.yaml and adjusted by bench/run.\n")
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def start(self, cluster, pool_size, workers, max_clients):
        if not os.access(self.binary, os.X_OK):
            raise BenchError(f"pgring binary not found: {self.binary}; build it "
                             "(cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && "
                             "ninja -C build pgring) or pass --binary PATH")
        config = self.write_config(cluster, pool_size, workers, max_clients)
        check = run([self.binary, "--check-config", config], check=False)
        if check.returncode != 0:
            raise BenchError(f"pgring --check-config {config} failed:\n"
                             f"{check.stderr.strip() or check.stdout.strip()}")
        self.logfile = os.path.join(self.workdir, "pgring.log")
        if os.path.exists(self.logfile):
            os.replace(self.logfile, self.logfile + ".1")
        with open(self.logfile, "w") as logf:
            self.proc = subprocess.Popen([self.binary, "--config", config],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True)
        self.pid = self.proc.pid
        self.wait_ready(self.logfile)
        log(f"pgring running (pid {self.pid}) on 127.0.0.1:{self.port} ({self.binary})")

    def version(self):
        try:
            out = run([self.binary, "--version"], check=False)
            return (out.stdout.strip() or out.stderr.strip()).splitlines()[0]
        except (OSError, IndexError):
            return "unknown"


# ---------------------------------------------------------------------------------------
# pgbench

_ERROR_RE = re.compile(r"(error|fatal|aborted)", re.I)


def first_error(stderr, stdout):
    for line in stderr.splitlines() + stdout.splitlines():
        if _ERROR_RE.search(line):
            text = re.sub(r"^pgbench: (error: )?", "", line.strip())
            return text[:300]
    return (stderr.strip() or stdout.strip() or "no output").splitlines()[-1][:300]


def latencies_us(prefix):
    """Reads and deletes pgbench's per-transaction logs prefix.*; returns the latencies."""
    values = []
    for path in glob.glob(glob.escape(prefix) + ".*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                # client_id transaction_no time script_no time_epoch time_us [lag]
                if len(fields) >= 3 and fields[2].isdigit():
                    values.append(int(fields[2]))
        os.remove(path)
    return values


def pgbench(bindir, target_port, password, pgbench_args, duration, clients, threads,
            logdir, proxy_pid=None, tag="run"):
    """Runs one pgbench and returns a dict of its measurements, or {'error': ...}."""
    prefix = os.path.join(logdir, tag)
    cmd = [os.path.join(bindir, "pgbench"), "-n", "-T", str(duration), "-c", str(clients),
           "-j", str(threads), "--log", "--log-prefix", prefix] + list(pgbench_args)
    cpu0 = cpu_seconds(proxy_pid) if proxy_pid else None
    switches0 = task_switches(proxy_pid) if proxy_pid else None
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=client_env(target_port, password), capture_output=True,
                              text=True, timeout=duration + HANG_GRACE)
    except subprocess.TimeoutExpired as e:
        latencies_us(prefix)
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else ""
        detail = f"; pgbench said: {first_error(stderr, '')}" if stderr.strip() else ""
        return {"error": f"hangs: pgbench was still waiting for answers {HANG_GRACE} s "
                         f"after its {duration} s run{detail}", "hang": True}
    wall = time.monotonic() - started
    cpu1 = cpu_seconds(proxy_pid) if proxy_pid and alive(proxy_pid) else None
    switches1 = task_switches(proxy_pid) if cpu1 is not None else None
    lat = latencies_us(prefix)
    out = proc.stdout
    if proxy_pid and not alive(proxy_pid):
        return {"error": "the proxy process exited during the run: "
                + first_error(proc.stderr, out)}
    if proc.returncode != 0 or "Run was aborted" in out + proc.stderr:
        return {"error": first_error(proc.stderr, out)}
    m_tps = re.search(r"^tps = ([\d.]+)", out, re.M)
    m_tx = re.search(r"number of transactions actually processed: (\d+)", out)
    m_failed = re.search(r"number of failed transactions: (\d+)", out)
    if not m_tps or not m_tx or not lat:
        return {"error": "could not read pgbench output: " + first_error(proc.stderr, out)}
    transactions = int(m_tx.group(1))
    if m_failed and int(m_failed.group(1)) > 0:
        return {"error": f"{m_failed.group(1)} failed transactions: "
                + first_error(proc.stderr, out)}
    lat.sort()
    result = {
        "tps": float(m_tps.group(1)),
        "transactions": transactions,
        "avg_latency_ms": sum(lat) / len(lat) / 1000.0,
        "p50_latency_ms": lat[(len(lat) - 1) // 2] / 1000.0,
        # Nearest-rank p99 over every logged transaction of the run.
        "p99_latency_ms": lat[max(0, -(-99 * len(lat) // 100) - 1)] / 1000.0,
        "logged_transactions": len(lat),
        "wall_seconds": round(wall, 2),
    }
    if cpu0 is not None and cpu1 is not None:
        result["proxy_cpu_seconds"] = round(cpu1 - cpu0, 3)
        result["proxy_cpu_per_1k_tx"] = (cpu1 - cpu0) / transactions * 1000.0
        result["proxy_sleeps_per_tx"] = (switches1[0] - switches0[0]) / transactions
        result["proxy_preemptions_per_tx"] = (switches1[1] - switches0[1]) / transactions
    return result
