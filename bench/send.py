"""Send: a win-back wave rendered, built and delivered to smtp-sink, embedded and distributed, beside raw smtplib."""

from __future__ import annotations

import json
import pstats
import smtplib
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bench.common import (
    PYTHON,
    ROOT,
    BenchPostgres,
    RedisServer,
    SmtpSink,
    Stopwatch,
    bench_env,
    descendants,
    new_sqlite_url,
    peak_rss_mb,
    self_cpu_seconds,
    stop_process,
    tree_cpu_seconds,
    wait_until,
)
from bench.data import lapsed, new_store, plan_winback_wave, status_counts
from bench.report import Table, megabytes, rate, ratio, seconds
from mailer.clock import utcnow
from mailer.db import Database

BASE_URL = "https://mail.bench.example"
WORKERS = 2
TICK_EVERY_SECONDS = 0.5
POLL_SECONDS = 0.02


@dataclass
class SendRun:
    """One wave: how long it took, what arrived, and what it cost in CPU and memory."""

    mode: str
    n: int
    seconds: float
    sent: int
    arrived: int
    peak_rss_mb: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    plan_seconds: float = 0.0
    next_plan_seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Emails per second, end to end."""
        return self.n / self.seconds


def _wave(database: Database, n: int, batch: str) -> datetime:
    """Plan `n` win-back emails due a minute ago in a new store; returns the `now` to send at."""
    now = utcnow()
    store = new_store(database, now)
    plan_winback_wave(database, store.id, n, due=now - timedelta(minutes=1), ordered_at=lapsed(now), batch=batch)
    return now


def sample_email(workdir: Path) -> tuple[str, bytes]:
    """The envelope sender and exact bytes of one real win-back email, made by the engine (capture transport)."""
    from mailer.config import load_settings
    from mailer.delivery import CaptureTransport
    from mailer.engine import tick
    from mailer.models import CapturedEmail

    url = new_sqlite_url(workdir, "sample")
    database = Database.from_url(url)
    now = _wave(database, 1, "sample")
    settings = load_settings(
        {"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(workdir / "instance")}, database_url=url, base_url=BASE_URL,
    )
    tick(database, CaptureTransport(database), settings, now)
    with database.transaction() as session:
        captured = session.query(CapturedEmail).one()
        sender, raw = captured.sender, bytes(captured.raw)
    database.dispose()
    return sender, raw


def smtplib_ceiling(sink: SmtpSink, sender: str, data: bytes, count: int) -> dict[str, float]:
    """Raw smtplib: `count` copies of a pre-built email over one reused connection (MAIL, RCPT, DATA each)."""
    before = sink.messages()
    smtp = smtplib.SMTP("127.0.0.1", sink.port)
    smtp.ehlo()
    cpu = self_cpu_seconds()
    sink_cpu = sink.cpu_seconds()
    with Stopwatch() as watch:
        for index in range(count):
            smtp.mail(sender)
            smtp.rcpt(f"ceiling-{index}@example.com")
            smtp.data(data)
    cpu = self_cpu_seconds() - cpu
    sink_cpu = sink.cpu_seconds() - sink_cpu
    smtp.quit()
    wait_until(lambda: sink.messages() - before >= count, 10, "smtp-sink to count the ceiling's messages")
    return {"per_second": count / watch.seconds, "seconds": watch.seconds, "count": count, "bytes": len(data),
            "client_cpu_ms_per_email": 1000 * cpu / count, "sink_cpu_ms_per_email": 1000 * sink_cpu / count}


def embedded(url: str, n: int, sink: SmtpSink, postgres: BenchPostgres | None, instance_dir: Path,
             profile: Path | None = None) -> SendRun:
    """Plan the wave, then one inline engine tick in a child process (python -m bench.embedded)."""
    database = Database.from_url(url)
    now = _wave(database, n, "embedded")
    database.dispose()
    before = sink.messages()
    pg_cpu = postgres.cpu_seconds() if postgres else 0.0
    argv = [PYTHON, "-m", "bench.embedded", url, sink.url, now.isoformat(), str(instance_dir)]
    if profile is not None:
        argv += ["--profile", str(profile)]
    done = subprocess.run(argv, cwd=ROOT, env=bench_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.embedded failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout)
    cpu = {"app": figures["cpu_seconds"], "sink": 0.0}
    if postgres:
        cpu["postgres"] = postgres.cpu_seconds() - pg_cpu
    database = Database.from_url(url)
    sent = status_counts(database).get("sent", 0)
    database.dispose()
    return SendRun(
        mode=f"embedded, {'PostgreSQL' if postgres else 'SQLite'}", n=n, seconds=figures["seconds"], sent=sent,
        arrived=sink.messages() - before, peak_rss_mb=figures["peak_rss_mb"], cpu_seconds=cpu,
        plan_seconds=figures["plan_seconds"], next_plan_seconds=figures["next_plan_seconds"],
        extra={"rss_start_mb": figures["rss_start_mb"], "rss_after_plan_mb": figures["rss_after_plan_mb"],
               "report": figures["report"]},
    )


def _worker(env: dict[str, str], name: str, logdir: Path) -> subprocess.Popen[bytes]:
    """One Celery worker process (one prefork child), consuming the `send` queue."""
    with open(logdir / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "mailer.tasks.main", "worker", "-Q", "send", "-c", "1", "--pool", "prefork",
             "--loglevel", "INFO", "-n", f"{name}@%h", "--without-mingle", "--without-gossip"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def distributed(postgres: BenchPostgres, n: int, sink: SmtpSink, workdir: Path) -> SendRun:
    """Plan the wave on PostgreSQL, start 2 Celery workers on redis-server, dispatch every 0.5 s until all is sent.

    The bench process plays the periodic tick: one `engine.plan()` (timed apart), then
    `engine.send_due_distributed()` with the dispatch budget, which claims due rows and queues
    one send task per claim, as `run_tick` does after planning.
    """
    from mailer.config import load_settings
    from mailer.engine import TickReport, plan, send_due_distributed
    from mailer.tasks.app import make_celery
    from mailer.tasks.dispatch import dispatch_budget_for, make_dispatcher

    url = postgres.new_database("distributed")
    database = Database.from_url(url)
    now = _wave(database, n, "distributed")
    redis = RedisServer(workdir).start()
    env = bench_env(
        MAILER_ENV="test", MAILER_INSTANCE_DIR=str(workdir / "instance"), MAILER_DATABASE_URL=url,
        MAILER_REDIS_URL=redis.url, MAILER_SMTP_URL=sink.url, MAILER_BASE_URL=BASE_URL,
    )
    workers = [_worker(env, f"bench{index}", workdir) for index in range(1, WORKERS + 1)]
    app = None
    try:
        for index, worker in enumerate(workers, start=1):
            log = workdir / f"bench{index}.log"
            wait_until(lambda w=worker, log=log: w.poll() is None and " ready." in log.read_text(errors="replace"),
                       60, f"worker bench{index} to be ready")
        settings = load_settings({"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(workdir / "instance")},
                                 database_url=url, redis_url=redis.url, smtp_url=sink.url, base_url=BASE_URL)
        app = make_celery(settings)
        with Stopwatch() as planning:
            plan(database, now)
        dispatch = make_dispatcher(app)
        before = sink.messages()
        cpu_before = {"app": sum(tree_cpu_seconds(w.pid) for w in workers), "postgres": postgres.cpu_seconds(),
                      "redis": redis.cpu_seconds(), "dispatcher": self_cpu_seconds(), "sink": sink.cpu_seconds()}
        rounds, sent = 0, 0
        deadline = time.monotonic() + 3600
        next_tick = 0.0
        with Stopwatch() as watch:
            while sent < n:
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_EVERY_SECONDS
                    report = TickReport(now=utcnow().isoformat())
                    send_due_distributed(database, settings, utcnow(), report, dispatch, max_claims=dispatch_budget_for(app))
                    rounds += 1
                # The end is seen within POLL_SECONDS rather than at the next tick: the sink's count
                # (a file tail) is cheap to poll; the database is asked once everything arrived.
                time.sleep(POLL_SECONDS)
                if sink.messages() - before >= n:
                    sent = status_counts(database).get("sent", 0)
                if any(w.poll() is not None for w in workers):
                    raise RuntimeError(f"a worker died; see {workdir}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the distributed wave did not finish within an hour")
        cpu = {"app": sum(tree_cpu_seconds(w.pid) for w in workers) - cpu_before["app"],
               "postgres": postgres.cpu_seconds() - cpu_before["postgres"],
               "redis": redis.cpu_seconds() - cpu_before["redis"],
               "dispatcher": self_cpu_seconds() - cpu_before["dispatcher"],
               "sink": sink.cpu_seconds() - cpu_before["sink"]}
        # The pool children send; their peak RSS is what grows if anything accumulates.
        children = [pid for w in workers for pid in descendants(w.pid) if pid != w.pid]
        rss = max((peak_rss_mb(pid) for pid in children), default=0.0)
        mains = max(peak_rss_mb(w.pid) for w in workers)
        with Stopwatch() as replanning:
            plan(database, utcnow())
        return SendRun(
            mode=f"distributed, {WORKERS} workers, PostgreSQL", n=n, seconds=watch.seconds, sent=sent,
            arrived=sink.messages() - before, peak_rss_mb=rss, cpu_seconds=cpu, plan_seconds=planning.seconds,
            next_plan_seconds=replanning.seconds, extra={"dispatch_rounds": rounds, "worker_main_peak_rss_mb": mains},
        )
    finally:
        if app is not None:
            app.resources.close()
            app.close()
        for worker in workers:
            stop_process(worker, grace=20)
        redis.stop()
        database.dispose()


def top_costs(profile: Path, limit: int = 12) -> list[str]:
    """The functions with the most own time in a cProfile dump, as `share  calls  function`."""
    stats = pstats.Stats(str(profile))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, calls, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1].split("lib/python3.11/")[-1]
        rows.append((own, calls, f"{short}:{line}({name})"))
    rows.sort(reverse=True)
    return [f"{100 * own / total:4.1f} %  {calls:>8}  {where}" for own, calls, where in rows[:limit]]


def run(quick: bool, workdir: Path, postgres: BenchPostgres, profile: bool = False) -> Table:
    """Every send figure: for each N, embedded (PostgreSQL, SQLite) and distributed, beside the smtplib ceiling."""
    sizes = [2_000, 10_000] if quick else [10_000, 100_000]
    table = Table(
        title="Send: win-back wave rendered, built and delivered to Postfix smtp-sink",
        headers=["mode", "N", "emails/s", "of ceiling", "peak RSS", "CPU ms/email (app / PG)", "sent / arrived",
                 "tick planning (wave / next)"],
    )
    sink = SmtpSink(workdir).start()
    try:
        sender, data = sample_email(workdir)
        # The ceiling waits on four replies per email, so how busy the machine is at that moment moves
        # it a lot (1.7k to 5.2k/s in one day): it is measured before, between and after the runs,
        # and the ratios use the median.
        count = 5_000 if quick else 20_000
        ceilings = [smtplib_ceiling(sink, sender, data, count)]
        runs: list[SendRun] = []
        instance = workdir / "instance"
        for n in sizes:
            runs.append(embedded(postgres.new_database("embedded"), n, sink, postgres, instance))
            runs.append(embedded(new_sqlite_url(workdir, f"embedded-{n}"), n, sink, None, instance))
            runs.append(distributed(postgres, n, sink, workdir))
            ceilings.append(smtplib_ceiling(sink, sender, data, count))
        ceiling = sorted(ceilings, key=lambda c: c["per_second"])[len(ceilings) // 2]
        table.add(f"ceiling: raw smtplib, 1 connection (median of {len(ceilings)})", count, rate(ceiling["per_second"]), "100 %", "",
                  f"{ceiling['client_cpu_ms_per_email']:.2f} (client)", "")
        if profile:  # a run of its own: the profiler slows the code it watches
            prof = workdir / "send.prof"
            embedded(postgres.new_database("profiled"), sizes[0], sink, postgres, instance, prof)
            table.data["profile_top"] = top_costs(prof)
        for mode in dict.fromkeys(r.mode for r in runs):
            for r in (r for r in runs if r.mode == mode):
                pg = r.cpu_seconds.get("postgres")
                cpu = f"{1000 * r.cpu_seconds['app'] / r.n:.2f} / " + (f"{1000 * pg / r.n:.2f}" if pg is not None else "-")
                table.add(mode, f"{r.n:,}", rate(r.per_second), ratio(r.per_second, ceiling["per_second"]),
                          megabytes(r.peak_rss_mb), cpu, f"{r.sent:,} / {r.arrived:,}",
                          f"{seconds(r.plan_seconds)} / {seconds(r.next_plan_seconds)}")
        table.notes.append(
            f"email size {len(data):,} bytes; ceiling = the same bytes pushed with smtplib (MAIL, RCPT, DATA) "
            f"over one connection; smtp-sink uses {ceiling['sink_cpu_ms_per_email']:.2f} ms CPU/email"
        )
        table.notes.append("ceiling before, between and after the runs: "
                           + ", ".join(rate(c["per_second"]) for c in ceilings) + "; the ratios use the median")
        table.notes.append("emails/s = N ÷ the send half of the tick (claim, prepare, render, build, SMTP, record); "
                           "the tick's planning stages are timed apart: for the wave, then for the next tick")
        table.notes.append("embedded = `engine.plan()` then `engine.send_due_inline()` (what `engine.tick` runs) in a "
                           "child process, peak RSS its VmHWM; distributed = peak RSS of the busier Celery pool child")
        table.notes.append(f"distributed: {WORKERS} `celery worker -c 1` + redis-server; the bench process dispatches "
                           f"(`send_due_distributed` with the dispatch budget) every {TICK_EVERY_SECONDS} s "
                           f"and sees the end of the wave within {POLL_SECONDS * 1000:.0f} ms")
        for r in runs:
            if "rss_after_plan_mb" in r.extra:
                table.notes.append(f"{r.mode}, N={r.n:,}: RSS {r.extra['rss_start_mb']:.0f} MB at start, "
                                   f"{r.extra['rss_after_plan_mb']:.0f} MB after planning, {r.peak_rss_mb:.0f} MB after sending")
        table.data |= {"ceiling": ceiling, "ceilings": ceilings, "runs": [dict(r.__dict__, per_second=r.per_second) for r in runs]}
    finally:
        sink.stop()
    return table
