"""Shared benchmark plumbing: throwaway databases, smtp-sink and redis-server processes, CPU/RSS and timing."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port
from tests.support.postgres import TempPostgres
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- ports, waiting, processes ----------------------------------------------------------------


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group (started with start_new_session), then SIGKILL what is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=grace)


def bench_env(**extra: str) -> dict[str, str]:
    """This environment without any MAILER_* variable, plus `extra`, with the repo on PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAILER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --- CPU and memory from /proc ----------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid`'s process tree, reaped children included."""
    total = 0
    for member in descendants(pid):
        fields = _stat_fields(member)
        if fields is not None:
            # utime, stime, cutime, cstime: a reaped child's time lands in its parent's c-fields.
            total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


def cpu_seconds_of_each(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each live process of `pids`, itself only."""
    used = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            used[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return used


def peak_rss_mb(pid: int) -> float:
    """The peak resident set (VmHWM) of one live process, in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


def machine_busy_seconds() -> float:
    """CPU seconds every core of this machine has spent busy (not idle or waiting on I/O) since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # user, nice, system, idle, iowait, irq, softirq; steal is the hypervisor's, guest is inside user
    return (sum(fields[:7]) - idle) / CLOCK_TICKS


@dataclass
class OtherLoad:
    """How much of the machine processes other than ours used during a `with` block (shared machines)."""

    own_cpu: Callable[[], float]
    share: float = 0.0
    _start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __enter__(self) -> OtherLoad:
        self._start = (time.monotonic(), machine_busy_seconds(), self.own_cpu())
        return self

    def __exit__(self, *_exc: object) -> None:
        wall, busy, own = self._start
        elapsed = time.monotonic() - wall
        others = (machine_busy_seconds() - busy) - (self.own_cpu() - own)
        self.share = max(0.0, others / (elapsed * (os.cpu_count() or 1))) if elapsed > 0 else 0.0


def self_peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB.

    Not getrusage's ru_maxrss: Linux carries that across exec, so a child started from a big
    parent would report the parent's peak as its own.
    """
    return peak_rss_mb(os.getpid())


def self_cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used."""
    times = os.times()
    return times.user + times.system


# --- timing -----------------------------------------------------------------------------------


@dataclass
class Stopwatch:
    """Wall-clock seconds of a `with` block."""

    seconds: float = 0.0
    _start: float = field(default=0.0, repr=False)

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def median_seconds(function: Callable[[], object], repeat: int = 5) -> tuple[float, list[float]]:
    """The median wall time of `repeat` calls of `function`, and every sample."""
    samples = []
    for _ in range(repeat):
        with Stopwatch() as watch:
            function()
        samples.append(watch.seconds)
    return statistics.median(samples), samples


# --- databases --------------------------------------------------------------------------------


class BenchPostgres:
    """A throwaway PostgreSQL cluster (tests.support.postgres) that also reports its CPU use."""

    def __init__(self) -> None:
        self.server = TempPostgres()
        self._count = 0
        self._databases: list[str] = []

    def start(self) -> BenchPostgres:
        """Start the cluster on a free port."""
        self.server.start()
        return self

    def new_database(self, prefix: str) -> str:
        """A fresh database, migrated to head; returns its URL."""
        from mailer.migrate import upgrade

        self._count += 1
        name = f"{prefix}_{self._count}"
        url = self.server.create_database(name)
        self._databases.append(name)
        upgrade(url)
        return url

    def cpu_seconds(self) -> float:
        """CPU seconds used by every PostgreSQL process so far (postmaster and backends)."""
        pid_file = self.server.data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0])
        return tree_cpu_seconds(pid)

    def settle(self, timeout: float = 300.0) -> float:
        """Drop the databases made so far, CHECKPOINT and wait until no autovacuum worker runs;
        returns the seconds it took.

        Every PostgreSQL process's CPU is counted, so a section that follows big writes (a 100k
        wave) would otherwise pay for vacuuming and flushing the previous section's tables. Waiting
        for the workers once does not keep them away (autovacuum comes back to each database in
        turn); a dropped database leaves them nothing to do.
        """
        import psycopg

        started = time.monotonic()
        dsn = f"host=127.0.0.1 port={self.server.port} user={self.server.user} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in self._databases:  # nothing reads a finished section's data again
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._databases.clear()
            conn.execute("CHECKPOINT")
            while time.monotonic() - started < timeout:
                busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'").fetchone()
                if not busy or not busy[0]:
                    break
                time.sleep(0.5)
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop the cluster and delete its files."""
        self.server.stop()


def new_sqlite_url(workdir: Path, name: str) -> str:
    """A fresh SQLite file in `workdir`, migrated to head; returns its URL."""
    from mailer.migrate import upgrade

    url = f"sqlite:///{workdir / name}.db"
    upgrade(url)
    return url


@contextlib.contextmanager
def workdir(prefix: str = "mailer-bench-") -> Iterator[Path]:
    """A temp directory removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- smtp-sink and redis-server ---------------------------------------------------------------


def find_smtp_sink() -> str:
    """The path of Postfix's smtp-sink, or RuntimeError telling how to install it."""
    for candidate in (shutil.which("smtp-sink"), "/usr/sbin/smtp-sink"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("smtp-sink not found: run scripts/bench-deps.sh (installs Debian's postfix)")


class SmtpSink:
    """Postfix's smtp-sink on a free loopback port: accepts every message and throws it away.

    `-c` prints a running count (`mesg=N`) to its log, which is how we check what arrived.
    """

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        self.log = logdir / f"smtp-sink-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """smtp://127.0.0.1:PORT for MAILER_SMTP_URL."""
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        """Start it and wait until it accepts connections."""
        argv = [find_smtp_sink(), "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "postfix"]  # it refuses to keep root privileges
        argv += [f"127.0.0.1:{self.port}", "1000"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: port_open(self.port), 10, f"smtp-sink on port {self.port}")
        return self

    def messages(self) -> int:
        """How many messages it has accepted so far."""
        try:
            with open(self.log, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 200))
                tail = log.read()
        except OSError:
            return 0
        counts = re.findall(rb"mesg=(\d+)", tail)
        return int(counts[-1]) if counts else 0

    def cpu_seconds(self) -> float:
        """CPU seconds smtp-sink has used."""
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None


class RedisServer:
    """redis-server on a free loopback port: no persistence, `noeviction` (what the workers require)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it accepts connections."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: run scripts/bench-deps.sh")
        with open(self.workdir / "redis.log", "wb") as log:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--maxmemory-policy", "noeviction", "--dir", str(self.workdir)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_until(lambda: port_open(self.port), 10, f"redis-server on port {self.port}")
        return self

    def cpu_seconds(self) -> float:
        """CPU seconds redis-server has used."""
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None
