"""`python -m bench.run [--quick] [--only send,ingest,segment] [--json out.json] [--profile]`: every figure, printed."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import BenchPostgres, OtherLoad, tree_cpu_seconds, workdir
from bench.report import Table, render

BENCHMARKS = ("send", "ingest", "segment")


def _machine() -> str:
    """One line about where the figures come from."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks on a throwaway PostgreSQL cluster and print their tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs (under 3 minutes)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated: send, ingest, segment")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--profile", action="store_true", help="cProfile one embedded send and print the top costs")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})")
    logging.basicConfig(level=logging.WARNING)

    started = time.monotonic()
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# {command.strip()}  ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n# {_machine()}\n", flush=True)
    tables: dict[str, Table] = {}
    with workdir() as directory:
        postgres = BenchPostgres().start()
        try:
            runners: dict[str, Callable[[], Table]] = {
                "send": lambda: _send(args.quick, directory, postgres, args.profile),
                "ingest": lambda: _ingest(args.quick, directory, postgres),
                "segment": lambda: _segment(args.quick, directory, postgres),
            }
            def own_cpu() -> float:
                return tree_cpu_seconds(os.getpid()) + postgres.cpu_seconds()

            for name in BENCHMARKS:
                if name in chosen:
                    settled = postgres.settle()  # the previous section's data and autovacuum are not this one's cost
                    if settled >= 1:
                        print(f"  (waited {settled:.0f} s for PostgreSQL's autovacuum of the previous section)", flush=True)
                    begun = time.monotonic()
                    with OtherLoad(own_cpu) as others:
                        tables[name] = runners[name]()
                    tables[name].data["other_load_share"] = others.share
                    print(render(tables[name]), flush=True)
                    if tables[name].data.get("profile_top"):
                        print("  cProfile of one embedded send (PostgreSQL), top own time:")
                        print("\n".join(f"    {line}" for line in tables[name].data["profile_top"]))
                    print(f"  ({time.monotonic() - begun:.0f} s; other processes on this machine used "
                          f"{others.share:.0%} of its CPU meanwhile)\n", flush=True)
        finally:
            postgres.stop()
    if "send" in tables or "ingest" in tables:
        from bench.scale import scale_table

        scale = scale_table(tables["send"].data if "send" in tables else None,
                            tables["ingest"].data if "ingest" in tables else None)
        tables["scale"] = scale
        print(render(scale) + "\n")
    print(f"# total {time.monotonic() - started:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({name: {"title": t.title, "headers": t.headers, "rows": t.rows, "notes": t.notes,
                                                "data": t.data} for name, t in tables.items()}, indent=2, default=str))
    return 0


def _send(quick: bool, directory: Path, postgres: BenchPostgres, profile: bool) -> Table:
    from bench import send

    return send.run(quick, directory, postgres, profile)


def _ingest(quick: bool, directory: Path, postgres: BenchPostgres) -> Table:
    from bench import ingest

    return ingest.run(quick, directory, postgres)


def _segment(quick: bool, directory: Path, postgres: BenchPostgres) -> Table:
    from bench import segment

    return segment.run(quick, directory, postgres)


if __name__ == "__main__":
    sys.exit(main())
