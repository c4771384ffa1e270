"""Ingest: POST /api/v1/track, the open pixel and the click redirect under gunicorn, loaded by wrk on loopback."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, text

from bench.bare_wsgi import FLOOR_TABLE
from bench.common import (
    PYTHON,
    ROOT,
    BenchPostgres,
    bench_env,
    cpu_seconds_of_each,
    descendants,
    free_port,
    stop_process,
    tree_cpu_seconds,
    wait_until,
)
from bench.data import lapsed, new_store, plan_winback_wave
from bench.report import Table, rate, ratio
from mailer.clock import utcnow
from mailer.db import Database
from mailer.ingest.track_queue import drain
from mailer.models import QueuedTrack

# One worker per core: with PostgreSQL and the load on the same 2 cores, 3 or 4 sync workers
# measured slower (more CPU per request, and the same visitor's rows locked by each other), and
# so did threads (BENCH_GUNICORN_THREADS=4: gthread workers, half the single-event rate).
MAX_RATE = 20_000  # requests per second of a run at most (wrk stops at seconds × this): the load stays bounded
GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "2"))
GUNICORN_THREADS = int(os.environ.get("BENCH_GUNICORN_THREADS", "1"))  # over 1: gthread workers
GUNICORN_WORKER = os.environ.get("BENCH_GUNICORN_WORKER", "loop")  # loop (mailer's LoopWorker) or sync
WRK_THREADS = 1
WRK_CONNECTIONS = 8
STORES = 200  # the public API allows 50 req/s (burst 200) per key and process: spread the load over many keys
TRACKED_MESSAGES = 500
# The queue is applied for this long per second of load (bounded: the rate is what is measured).
DRAIN_SECONDS_PER_LOAD_SECOND = 1.0
SECRET = "bench-secret-key-0123456789abcdef"
BASE_URL = "https://mail.bench.example"


def gunicorn_missing() -> str | None:
    """Why the ingest benchmark cannot run (gunicorn or wrk missing), or None."""
    if importlib.util.find_spec("gunicorn") is None:
        return "gunicorn is not installed in this Python: `pip install gunicorn` (and add it to pyproject)"
    if shutil.which("wrk") is None:
        return "wrk is not installed: run scripts/bench-deps.sh"
    return None


def _worker_class(worker: str) -> list[str]:
    if GUNICORN_THREADS > 1:
        return ["-k", "gthread", "--threads", str(GUNICORN_THREADS)]
    return ["-k", "mailer.web.loop_worker.LoopWorker"] if worker == "loop" else ["-k", "sync"]


def _workers_kind(worker: str = GUNICORN_WORKER) -> str:
    if GUNICORN_THREADS > 1:
        return f"gthread ×{GUNICORN_THREADS}"
    return "LoopWorker" if worker == "loop" else "sync"


class Gunicorn:
    """gunicorn on a free loopback port, serving `app_spec` (module:callable) with `worker` workers (loop or sync)."""

    def __init__(self, app_spec: str, env: dict[str, str], logdir: Path, worker: str = GUNICORN_WORKER) -> None:
        self.app_spec = app_spec
        self.worker = worker
        self.env = env
        self.port = free_port()
        self.log = logdir / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str) -> Gunicorn:
        """Start it and wait until a worker answers GET `ready_path`."""
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "gunicorn", "-w", str(GUNICORN_WORKERS), *_worker_class(self.worker), "-b", f"127.0.0.1:{self.port}",
                 "--backlog", "2048", "--log-level", "warning", self.app_spec],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_until(lambda: self._answers(ready_path), 60, f"gunicorn serving {self.app_spec}")
        return self

    def _answers(self, path: str) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as answer:
                return bool(answer.status < 500)
        except (urllib.error.URLError, OSError):
            return False

    def cpu_seconds(self) -> float:
        """CPU seconds used by the master and its workers."""
        return tree_cpu_seconds(self.process.pid) if self.process else 0.0

    def workers_cpu_seconds(self) -> dict[int, float]:
        """CPU seconds used so far by each worker process (the master's children)."""
        if self.process is None:
            return {}
        return cpu_seconds_of_each([pid for pid in descendants(self.process.pid) if pid != self.process.pid])

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@dataclass
class Load:
    """What one wrk run measured (only 2xx/3xx answers count as served)."""

    name: str
    requests: int
    ok: int
    limited: int
    failed: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    events_per_request: int = 1
    app_cpu_ms: float = 0.0
    postgres_cpu_ms: float = 0.0
    wrk_cpu_s: float = 0.0
    busiest_worker_share: float = 0.0  # of the workers' CPU during the run: 50 % when 2 workers share it evenly

    @property
    def per_second(self) -> float:
        """Served requests per second."""
        return self.ok / self.seconds

    @property
    def events_per_second(self) -> float:
        """Events per second (requests × batch size)."""
        return self.per_second * self.events_per_request


def wrk(url: str, script: str, env: dict[str, str], seconds: float, max_requests: int) -> dict[str, float]:
    """Run wrk for at most `seconds` and `max_requests` requests; returns its BENCH_JSON summary and CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        ["wrk", "-t", str(WRK_THREADS), "-c", str(WRK_CONNECTIONS), "-d", f"{seconds:g}s", "--timeout", "5s",
         "-s", str(ROOT / "bench" / script), url],
        env={**os.environ, **env, "BENCH_MAX": str(max_requests // WRK_THREADS)},
        capture_output=True, text=True, check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    figures = dict(json.loads(line.removeprefix("BENCH_JSON ")))
    figures["wrk_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return figures


def measure(name: str, server: Gunicorn, path: str, script: str, env: dict[str, str], seconds: float,
            postgres: BenchPostgres | None, batch: int = 1) -> Load:
    """One bounded wrk run against `server`, with the CPU the server and PostgreSQL used meanwhile."""
    app_cpu = server.cpu_seconds()
    workers_before = server.workers_cpu_seconds()
    pg_cpu = postgres.cpu_seconds() if postgres else 0.0
    figures = wrk(server.url + path, script, env, seconds, max_requests=int(seconds * MAX_RATE))
    app_cpu = server.cpu_seconds() - app_cpu
    workers = {pid: used - workers_before.get(pid, 0.0) for pid, used in server.workers_cpu_seconds().items()}
    pg_cpu = (postgres.cpu_seconds() - pg_cpu) if postgres else 0.0
    ok = int(figures["ok"]) or 1
    return Load(
        name=name, requests=int(figures["requests"]), ok=int(figures["ok"]), limited=int(figures["limited"]),
        failed=int(figures["failed"]), socket_errors=int(figures["socket_errors"]),
        seconds=figures["duration_us"] / 1e6, p50_ms=figures["p50_us"] / 1000, p99_ms=figures["p99_us"] / 1000,
        events_per_request=batch, app_cpu_ms=1000 * app_cpu / ok, postgres_cpu_ms=1000 * pg_cpu / ok,
        wrk_cpu_s=figures["wrk_cpu_s"],
        busiest_worker_share=max(workers.values()) / (sum(workers.values()) or 1.0) if workers else 0.0,
    )


def tracking_paths(database: Database, workdir: Path) -> tuple[Path, Path]:
    """Send TRACKED_MESSAGES win-back emails (capture transport) and write their pixel and click paths to files."""
    from mailer.config import load_settings
    from mailer.delivery import CaptureTransport
    from mailer.engine import tick
    from mailer.models import Link
    from mailer.tracking.tokens import make_token

    now = utcnow() - timedelta(hours=1)  # sent an hour ago: clicks are not "within 5 s of delivery"
    store = new_store(database, now)
    plan_winback_wave(database, store.id, TRACKED_MESSAGES, due=now - timedelta(minutes=1), ordered_at=lapsed(now), batch="tracked")
    settings = load_settings({"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(workdir / "instance")},
                             database_url=_url(database), secret_key=SECRET, base_url=BASE_URL)
    tick(database, CaptureTransport(database), settings, now)
    with database.transaction() as session:
        links = session.execute(
            select(Link.message_id, func.min(Link.position)).where(Link.store_id == store.id, Link.kind == "content")
            .group_by(Link.message_id)
        ).all()
    if not links:
        raise RuntimeError("the tracked emails have no links")
    opens, clicks = workdir / "open-paths.txt", workdir / "click-paths.txt"
    opens.write_text("".join(f"/t/o/{make_token(SECRET, 'open', m)}\n" for m, _p in links))
    clicks.write_text("".join(f"/t/c/{make_token(SECRET, 'click', m, p)}\n" for m, p in links))
    return opens, clicks


def _url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)  # type: ignore[union-attr]


def _events(database: Database) -> int:
    from mailer.models import Event

    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def _empty_queue(database: Database) -> None:
    with database.transaction() as session:
        session.execute(delete(QueuedTrack))


def _vacuum(database: Database) -> None:
    # Each phase starts without the previous one's clean-up: VACUUM, waited for, outside the runs.
    with database.engine.connect() as connection:  # type: ignore[union-attr]
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _queued(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(QueuedTrack)) or 0)


@dataclass
class Drain:
    """What one bounded drain of the track queue applied, and the CPU it cost."""

    events: int
    seconds: float
    app_cpu_ms: float
    postgres_cpu_ms: float

    @property
    def per_second(self) -> float:
        """Events applied per second."""
        return self.events / self.seconds if self.seconds else 0.0


def measure_drain(database: Database, postgres: BenchPostgres, max_seconds: float) -> Drain:
    """Apply the queued bodies in this process for at most `max_seconds` (between groups), as a worker does."""
    before, pg_before, started = resource.getrusage(resource.RUSAGE_SELF), postgres.cpu_seconds(), time.perf_counter()
    report = drain(database, max_seconds=max_seconds)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    events = report.accepted + report.duplicates + report.rejected or 1
    app_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Drain(events, seconds, 1000 * app_cpu / events, 1000 * (postgres.cpu_seconds() - pg_before) / events)


def _times(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else "n/a"


def run(quick: bool, workdir: Path, postgres: BenchPostgres) -> Table:
    """Every ingest figure: the mailer app and the bare ceiling on the same gunicorn, same wrk load."""
    seconds = 5.0 if quick else 15.0
    table = Table(
        title=f"Ingest: gunicorn ({GUNICORN_WORKERS} {_workers_kind()} workers) on PostgreSQL, wrk {WRK_CONNECTIONS} connections, "
              f"{seconds:g} s per run",
        headers=["endpoint", "req/s", "events/s", "p50", "p99", "of ceiling", "CPU ms/req (app / PG)", "non-2xx"],
    )
    missing = gunicorn_missing()
    if missing:
        table.notes.append(f"skipped: {missing}")
        return table

    url = postgres.new_database("ingest")
    database = Database.from_url(url)
    now = utcnow()
    keys = [new_store(database, now) for _ in range(STORES)]
    keys_file = workdir / "keys.txt"
    keys_file.write_text("".join(f"{k.public_key} {k.domain}\n" for k in keys))
    opens, clicks = tracking_paths(database, workdir)
    tag = now.strftime("%H%M%S")

    def post_env(batch: int, label: str) -> dict[str, str]:
        return {"BENCH_KEYS": str(keys_file), "BENCH_BATCH": str(batch), "BENCH_TAG": f"{tag}{label}"}

    loads: dict[str, Load] = {}
    with database.transaction() as session:
        session.execute(text(f"CREATE TABLE {FLOOR_TABLE} (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)"))
    floor_dsn = _url(database).replace("postgresql+psycopg://", "postgresql://")
    bare = Gunicorn("bench.bare_wsgi:app", bench_env(BENCH_FLOOR_DSN=floor_dsn), workdir).start("/")
    try:
        loads["ceiling 1"] = measure("ceiling: bare WSGI, JSON parse, batch of 1", bare, "/", "wrk_track.lua",
                                     post_env(1, "c1"), seconds, None)
        loads["floor 1"] = measure("floor: bare WSGI + one INSERT and commit (psycopg), batch of 1", bare, "/insert",
                                   "wrk_track.lua", {**post_env(1, "f1"), "BENCH_PATH": "/insert"}, seconds, postgres)
        loads["ceiling 10"] = measure("ceiling: bare WSGI, JSON parse, batch of 10", bare, "/", "wrk_track.lua",
                                      post_env(10, "c10"), seconds, None, batch=10)
        loads["ceiling get"] = measure("ceiling: bare WSGI, GET pixel", bare, "/", "wrk_get.lua",
                                       {"BENCH_PATHS": str(opens)}, seconds, None)
    finally:
        bare.stop()

    env = bench_env(MAILER_ENV="production", MAILER_DATABASE_URL=url, MAILER_SECRET_KEY=SECRET,
                    MAILER_BASE_URL=BASE_URL, MAILER_INSTANCE_DIR=str(workdir / "instance"))
    # The track rows run in the queued ingest mode (the 202 once the body is validated and kept;
    # applied by a worker in bulk); the inline rows below are the same load applied before the 202.
    server = Gunicorn("wsgi:app", {**env, "MAILER_INGEST_MODE": "queued"}, workdir).start("/healthz")
    try:
        wrk(server.url + "/api/v1/track", "wrk_track.lua", post_env(1, "warm"), 1, 2_000)  # warm both workers
        _empty_queue(database)  # not applied: the writes would leave autovacuum work to the measured runs
        _vacuum(database)
        loads["track 1"] = measure("POST /api/v1/track, batch of 1 (queued)", server, "/api/v1/track", "wrk_track.lua",
                                   post_env(1, "t1"), seconds, postgres)
        loads["track 10"] = measure("POST /api/v1/track, batch of 10 (queued)", server, "/api/v1/track", "wrk_track.lua",
                                    post_env(10, "t10"), seconds, postgres, batch=10)
        queued = _queued(database)
        loads["open"] = measure("GET /t/o/<token> (open pixel)", server, "/", "wrk_get.lua",
                                {"BENCH_PATHS": str(opens)}, seconds, postgres)
        loads["click"] = measure("GET /t/c/<token> (click redirect)", server, "/", "wrk_get.lua",
                                 {"BENCH_PATHS": str(clicks)}, seconds, postgres)
    finally:
        server.stop()
    applied = measure_drain(database, postgres, seconds * DRAIN_SECONDS_PER_LOAD_SECOND)
    _empty_queue(database)  # what the bounded drain left: the inline runs start from an empty queue
    _vacuum(database)  # and without the drain's dead rows for autovacuum to clean up during them
    inline = Gunicorn("wsgi:app", env, workdir).start("/healthz")
    try:
        events_before = _events(database)
        loads["inline track 1"] = measure("POST /api/v1/track, batch of 1 (inline: applied before the 202)", inline,
                                          "/api/v1/track", "wrk_track.lua", post_env(1, "i1"), seconds, postgres)
        loads["inline track 10"] = measure("POST /api/v1/track, batch of 10 (inline)", inline, "/api/v1/track",
                                           "wrk_track.lua", post_env(10, "i10"), seconds, postgres, batch=10)
        stored = _events(database) - events_before
    finally:
        inline.stop()
    try:
        if GUNICORN_WORKER == "loop" and GUNICORN_THREADS == 1:  # the baseline: what gunicorn's default worker makes of it
            sync = Gunicorn("wsgi:app", env, workdir, worker="sync").start("/healthz")
            try:
                loads["sync track 1"] = measure("baseline: POST /api/v1/track, batch of 1, gunicorn's sync workers",
                                                sync, "/api/v1/track", "wrk_track.lua", post_env(1, "s1"), seconds, postgres)
                loads["sync open"] = measure("baseline: GET /t/o/<token>, gunicorn's sync workers", sync, "/",
                                             "wrk_get.lua", {"BENCH_PATHS": str(opens)}, seconds, postgres)
            finally:
                sync.stop()
    finally:
        database.dispose()

    ceilings = {"ceiling 1": "ceiling 1", "floor 1": "ceiling 1", "ceiling 10": "ceiling 10", "ceiling get": "ceiling get",
                "track 1": "ceiling 1", "track 10": "ceiling 10", "open": "ceiling get", "click": "ceiling get",
                "inline track 1": "ceiling 1", "inline track 10": "ceiling 10",
                "sync track 1": "ceiling 1", "sync open": "ceiling get"}
    for key, load in loads.items():
        ceiling = loads[ceilings[key]]
        cpu = f"{load.app_cpu_ms:.2f} / {load.postgres_cpu_ms:.2f}" if not key.startswith("ceiling") else "-"
        table.add(load.name, rate(load.per_second), rate(load.events_per_second), f"{load.p50_ms:.1f} ms",
                  f"{load.p99_ms:.1f} ms", ratio(load.per_second, ceiling.per_second), cpu,
                  load.limited + load.failed + load.socket_errors)
    answered = loads["track 1"].ok + loads["track 10"].ok
    expected = loads["inline track 1"].ok * 1 + loads["inline track 10"].ok * 10
    table.notes.append(f"queued: bodies kept by the two queued runs {queued:,} (their 202 answers: {answered:,}); "
                       f"events stored by the two inline runs {stored:,} (202 answers × batch = {expected:,})")
    per_event = (loads["track 10"].app_cpu_ms + loads["track 10"].postgres_cpu_ms) / 10
    table.notes.append(
        f"applying the queue (mailer.ingest.track_queue.drain, one process, as a worker runs it): {applied.events:,} events "
        f"in {applied.seconds:.1f} s, {rate(applied.per_second)} events/s, {applied.app_cpu_ms:.3f} ms app + "
        f"{applied.postgres_cpu_ms:.3f} ms PostgreSQL per event; accepting one in a batch of 10 costs {per_event:.3f} ms, "
        f"so one 2-core machine doing both has the CPU for at most {rate(2000 / (per_event + applied.app_cpu_ms + applied.postgres_cpu_ms))} "
        "events/s (the scale model adds the efficiency measured); workers on other machines take the applying off it")
    table.notes.append(
        f"queued against inline (same LoopWorkers, same load): track batch of 1 "
        f"{_times(loads['track 1'].per_second, loads['inline track 1'].per_second)}, batch of 10 "
        f"{_times(loads['track 10'].per_second, loads['inline track 10'].per_second)}")
    table.notes.append(f"load: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} on the same 2 cores (it used "
                       f"{sum(x.wrk_cpu_s for x in loads.values()) / sum(x.seconds for x in loads.values()):.0%} "
                       "of a core); each visitor sends the snippet's 10 events: 3 views while anonymous, identify, then 2 cart "
                       "updates and 4 views that carry the email (as the snippet does once it knows it)")
    table.notes.append("floor: what any endpoint that answers only once its data is durable pays per request on these "
                       "2 cores (HTTP, parse, one INSERT, commit); going past it takes batching writes across requests")
    if "sync open" in loads:
        table.notes.append(
            f"{_workers_kind()} against gunicorn's sync workers (the baseline rows, same app and load): track batch of 1 "
            f"{_times(loads['track 1'].per_second, loads['sync track 1'].per_second)}, pixel "
            f"{_times(loads['open'].per_second, loads['sync open'].per_second)}; the bare rows ran on {_workers_kind()} too")
    capped = [load.name for load in loads.values() if load.per_second >= 0.99 * MAX_RATE]
    if capped:
        table.notes.append(f"reached the load's bound of {MAX_RATE:,} req/s (so the true figure is higher): " + "; ".join(capped))
    table.notes.append("the busiest worker's share of the workers' CPU, per run: " + ", ".join(
        f"{key} {load.busiest_worker_share:.0%}" for key, load in loads.items()))
    table.notes.append(f"{STORES} stores' public keys in turn: the per-key limit (50/s, burst 200) is never reached")
    table.data = {"loads": {key: dict(load.__dict__, per_second=load.per_second, events_per_second=load.events_per_second)
                            for key, load in loads.items()}, "stored_events": stored, "expected_events": expected,
                  "queued_bodies": queued, "queued_answers": answered, "drain": dict(applied.__dict__, per_second=applied.per_second)}
    return table
