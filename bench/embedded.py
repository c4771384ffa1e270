"""The embedded send in a process of its own (so its peak RSS is its own): one inline engine tick to SMTP."""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
from datetime import datetime
from pathlib import Path

from bench.common import Stopwatch, self_cpu_seconds, self_peak_rss_mb


def run_tick(database_url: str, smtp_url: str, now: datetime, instance_dir: Path,
             profile_path: str | None = None) -> dict[str, object]:
    """One tick at `now`, inline through SMTPTransport, timed in its two halves; then the next tick's planning.

    `engine.tick` is `plan()` then `send_due_inline()`: calling them in turn reports the send rate
    apart from the planning stages, whose cost depends on what the other stages find to do.
    """
    from mailer.config import load_settings
    from mailer.db import Database
    from mailer.delivery import SMTPTransport
    from mailer.engine import TickReport, plan, send_due_inline

    settings = load_settings(
        {"MAILER_ENV": "test", "MAILER_INSTANCE_DIR": str(instance_dir)},
        database_url=database_url, smtp_url=smtp_url, base_url="https://mail.bench.example",
    )
    database = Database.from_url(database_url)
    transport = SMTPTransport(smtp_url, timeout=settings.smtp_timeout)
    report = TickReport(now=now.isoformat())
    rss_start = self_peak_rss_mb()
    with Stopwatch() as planning:
        report.planned = plan(database, now)
    rss_planned = self_peak_rss_mb()
    cpu_before = self_cpu_seconds()
    profiler = cProfile.Profile() if profile_path else None
    with Stopwatch() as sending:
        if profiler is not None:
            profiler.enable()
        send_due_inline(database, transport, settings, now, report)
        if profiler is not None:
            profiler.disable()
    cpu = self_cpu_seconds() - cpu_before
    rss_sent = self_peak_rss_mb()
    with Stopwatch() as replanning:
        plan(database, now)
    transport.close()
    database.dispose()
    if profiler is not None and profile_path:
        profiler.dump_stats(profile_path)
    return {
        "seconds": sending.seconds,
        "plan_seconds": planning.seconds,
        "next_plan_seconds": replanning.seconds,
        "cpu_seconds": cpu,
        "rss_start_mb": rss_start,
        "rss_after_plan_mb": rss_planned,
        "peak_rss_mb": rss_sent,
        "report": report.as_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.embedded DATABASE_URL SMTP_URL NOW INSTANCE_DIR [--profile FILE]`: prints one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.embedded")
    parser.add_argument("database_url")
    parser.add_argument("smtp_url")
    parser.add_argument("now", type=datetime.fromisoformat)
    parser.add_argument("instance_dir", type=Path)
    parser.add_argument("--profile", help="write cProfile stats of the send half to this file")
    args = parser.parse_args(argv)
    print(json.dumps(run_tick(args.database_url, args.smtp_url, args.now, args.instance_dir, args.profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
