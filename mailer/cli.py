"""The `mailer` command: database, stores, users, the engine tick, test sends, and running it all."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property, wraps
from typing import Any, TypeVar

import click

from mailer.clock import parse_instant, utcnow
from mailer.config import Settings, load_settings
from mailer.db import Database
from mailer.errors import MailerError
from mailer.logs import configure_logging

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Runtime:
    """Settings, database and transport, built on first use so `--help` needs none of them."""

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def database(self) -> Database:
        return Database.from_url(self.settings.database_url)

    @cached_property
    def transport(self):  # type: ignore[no-untyped-def]
        from mailer.delivery import transport_from_settings

        return transport_from_settings(self.settings, self.database)


def _runtime() -> Runtime:
    return click.get_current_context().ensure_object(Runtime)


def _emit(as_json: bool, data: dict[str, Any], human: str) -> None:
    click.echo(json.dumps(data, default=str, sort_keys=False) if as_json else human)


def _instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def domain_errors(func: F) -> F:
    """Turn domain errors into a clear one-line message and exit status 1, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MailerError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
now_option = click.option("--now", callback=_instant, help="The time to act at (ISO 8601; default: now).")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
def main(verbose: bool) -> None:
    """mailer: trigger email that wins back an online store's lost customers."""
    configure_logging(verbose)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@domain_errors
def db_upgrade() -> None:
    """Apply all migrations."""
    from mailer.migrate import upgrade

    upgrade(_runtime().settings.database_url)
    click.echo("database is up to date", err=True)


@main.group()
def store() -> None:
    """Stores (tenants)."""


@store.command("create")
@click.option("--name", required=True)
@click.option("--domain", required=True)
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--currency", default="USD", show_default=True)
@click.option("--postal-address", default="", help="Shown in every marketing email (required by law in most places).")
@json_option
@domain_errors
def store_create(name: str, domain: str, timezone: str, currency: str, postal_address: str, as_json: bool) -> None:
    """Create a store and print its keys (the secret key is shown only now)."""
    from mailer.campaigns.sync import sync_campaigns
    from mailer.stores import create_store

    now = utcnow()
    with _runtime().database.transaction() as session:
        created, secret_key = create_store(session, name=name, domain=domain, timezone=timezone, currency=currency, now=now)
        created.postal_address = postal_address.strip()
        sync_campaigns(session, created, now)
        data = {"id": created.id, "public_key": created.public_key, "secret_key": secret_key}
    _emit(as_json, data, f"store {data['id']} created\npublic key: {data['public_key']}\nsecret key: {secret_key}  (shown once)")


@main.group()
def user() -> None:
    """Dashboard logins."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice(["owner", "marketer"]), required=True)
@click.option("--store", "store_id", type=int, required=True)
@json_option
@domain_errors
def user_create(email: str, password: str, role: str, store_id: int, as_json: bool) -> None:
    """Create a login for the dashboard of one store."""
    from mailer.stores import create_user

    with _runtime().database.transaction() as session:
        created = create_user(session, store_id=store_id, email=email, password=password, role=role, now=utcnow())
        data = {"id": created.id, "email": created.email, "role": created.role, "store": store_id}
    _emit(as_json, data, f"user {data['email']} ({role}) created for store {store_id}")


@main.group("import")
def import_group() -> None:
    """Bulk imports of a store's history."""


@import_group.command("orders")
@click.option("--store", "store_id", type=int, required=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@json_option
@domain_errors
def import_orders_command(store_id: int, file: str, as_json: bool) -> None:
    """Import past orders from FILE.csv: order_id,email,placed_at,total[,currency,first_name,last_name,coupon].

    Idempotent by order_id; bad rows are reported by line number and skipped, good rows kept.
    """
    from pathlib import Path

    from mailer.ingest.csv_import import import_orders

    database, path = _runtime().database, Path(file)
    if as_json or not sys.stderr.isatty():  # a bar is only for a person watching a terminal
        result = import_orders(database, store_id, path, now=utcnow())
    else:
        with click.progressbar(length=path.stat().st_size, label="importing", file=sys.stderr) as bar:
            result = import_orders(database, store_id, path, now=utcnow(),
                                   progress=lambda done, _total: bar.update(done - bar.pos))
    data = result.as_dict()
    listed = [f"  line {row['line']}: {row['error']}" for row in result.rejected[:20]]
    if result.rejected_count > len(listed):
        listed.append(f"  … and {result.rejected_count - len(listed)} more (--json lists up to 1000)")
    human = f"imported {result.imported}, duplicates {result.duplicates}, rejected {result.rejected_count}"
    _emit(as_json, data, "\n".join([human, *listed]))


@main.command()
@now_option
@json_option
@domain_errors
def tick(now: datetime | None, as_json: bool) -> None:
    """One pass of the engine: plan what is due and send it (inline, or via the workers)."""
    from mailer.engine import tick as run_tick

    runtime = _runtime()
    dispatch, max_claims = None, None
    if runtime.settings.distributed:
        from functools import partial

        from mailer.tasks.app import celery_app
        from mailer.tasks.dispatch import dispatch_budget_for, dispatch_claim

        # `--now T` reaches the workers (rules and sent_at use T); without it they use their clock.
        dispatch = partial(dispatch_claim, now=now)
        max_claims = dispatch_budget_for(celery_app())
    try:
        report = run_tick(
            runtime.database, runtime.transport, runtime.settings, now or utcnow(),
            dispatch=dispatch, max_claims=max_claims, clock=None if now else utcnow,
        )
    finally:
        runtime.transport.close()
    data = report.as_dict()
    _emit(as_json, data, " ".join(f"{k}={v}" for k, v in data.items()))


@main.command()
@click.option("--store", "store_id", type=int, required=True)
@now_option
@json_option
@domain_errors
def segment(store_id: int, now: datetime | None, as_json: bool) -> None:
    """Contacts per audience and lifecycle tier at `--now`."""
    from mailer.errors import NotFound
    from mailer.models import Store
    from mailer.segments.queries import segment_counts

    with _runtime().database.transaction() as session:
        found = session.get(Store, store_id)
        if found is None:
            raise NotFound(f"no store with id {store_id}")
        counts = segment_counts(session, found, now or utcnow())
    human = "\n".join(
        f"{audience:10} " + "  ".join(f"{tier}: {n}" for tier, n in tiers.items())
        for audience, tiers in counts.items() if isinstance(tiers, dict)
    ) + f"\nprospects  {counts['prospects']}"
    _emit(as_json, counts, human)


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not a date (YYYY-MM-DD): {value!r}") from exc


@main.command()
@click.option("--store", "store_id", type=int, required=True)
@click.option("--from", "start", callback=_date, help="First day (YYYY-MM-DD, store time zone; default: 30 days ago).")
@click.option("--to", "end", callback=_date, help="Last day, inclusive (default: today).")
@json_option
@domain_errors
def report(store_id: int, start: date | None, end: date | None, as_json: bool) -> None:
    """What was sent, who came back, what it cost and earned (ROI, lift against the holdout)."""
    from mailer.errors import NotFound, ValidationError
    from mailer.models import Store
    from mailer.reports.queries import build_report, default_range

    default_start, default_end = default_range(utcnow())
    start, end = start or default_start, end or default_end
    if start > end:
        raise ValidationError(f"--from {start} is after --to {end}")
    with _runtime().database.transaction() as session:
        found = session.get(Store, store_id)
        if found is None:
            raise NotFound(f"no store with id {store_id}")
        data = build_report(session, found, start, end)
    totals = data["totals"]
    assert isinstance(totals, dict)
    human = (
        f"{data['from']} to {data['to']} (attribution window {data['window_days']} days)\n"
        + "  ".join(f"{k}={v}" for k, v in totals.items())
    )
    _emit(as_json, data, human)


@main.command("send-test")
@click.option("--store", "store_id", type=int, required=True)
@click.option("--template", "template_name", required=True, help="e.g. cart/step1, winback/tier2, test")
@click.option("--to", "to_email", required=True)
@click.option("--subject", default=None, help="Subject template (default: the campaign step's, else a sample).")
@json_option
@domain_errors
def send_test(store_id: int, template_name: str, to_email: str, subject: str | None, as_json: bool) -> None:
    """Render a template with sample data and send it (what the dashboard's "send test" does)."""
    from mailer.outbox.test_send import compose_test_email, deliver_test_email

    runtime = _runtime()
    with runtime.database.transaction() as session:
        email = compose_test_email(
            session, runtime.settings, store_id=store_id, template_name=template_name,
            to_email=to_email, subject=subject, now=utcnow(),
        )
    result = deliver_test_email(runtime.transport, email)
    runtime.transport.close()
    _emit(as_json, result, f"sent {template_name!r} to {result['to']} ({result['message_id']})")


@main.command()
@click.option("-c", "--concurrency", type=int, default=None, help="Processes, each sending one batch at a time (default: one per CPU).")
@click.option("-Q", "--queues", default="send,periodic", show_default=True, help="Queues to take tasks from, comma-separated.")
@domain_errors
def worker(concurrency: int | None, queues: str) -> None:
    """Run a Celery worker (distributed mode): sends what the ticks queue. Run any number, anywhere."""
    from mailer.tasks.cli_entry import run_worker

    sys.exit(run_worker(_runtime().settings, concurrency, queues))


@main.command()
@domain_errors
def beat() -> None:
    """Run the scheduler that queues the engine tick, the daily housekeeping and (queued ingest mode) the track queue. Run exactly one."""
    from mailer.tasks.cli_entry import run_beat

    run_beat(_runtime().settings)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
@domain_errors
def run(host: str, port: int) -> None:
    """Web, worker and scheduler in one process tree, on the embedded defaults."""
    from mailer.web.server import serve

    serve(_runtime().settings, _runtime().database, host=host, port=port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
@click.option("--seed-only", is_flag=True, help="Create the demo store and data, then exit.")
@domain_errors
def demo(host: str, port: int, seed_only: bool) -> None:
    """Migrate, seed a demo store with history, carts and traffic, then `run`."""
    from mailer.demo import seed_demo
    from mailer.migrate import upgrade

    runtime = _runtime()
    upgrade(runtime.settings.database_url)
    summary = seed_demo(runtime.database, runtime.transport, runtime.settings, now=utcnow())
    for line in summary:
        click.echo(line)
    if not seed_only:
        from mailer.web.server import serve

        serve(runtime.settings, runtime.database, host=host, port=port)


if __name__ == "__main__":  # pragma: no cover
    main()
