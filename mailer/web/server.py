"""`mailer run`: the web app plus an in-process scheduler that ticks the engine, in one process."""

from __future__ import annotations

import logging
import signal
import threading
import time

from werkzeug.serving import make_server

from mailer import create_app
from mailer.clock import utcnow
from mailer.config import Settings
from mailer.db import Database
from mailer.delivery import transport_from_settings
from mailer.engine import tick
from mailer.ingest.track_queue import QUEUE_INTERVAL_SECONDS, drain

log = logging.getLogger(__name__)


class Scheduler(threading.Thread):
    """Ticks the engine every `interval` seconds (and applies queued snippet events between); one thread, so two ticks never overlap."""

    def __init__(self, settings: Settings, database: Database) -> None:
        super().__init__(name="mailer-scheduler", daemon=True)
        self.settings = settings
        self.database = database
        self.stopping = threading.Event()
        self.ticks = 0  # ticks run so far (for the logs and tests)

    def run(self) -> None:
        transport = transport_from_settings(self.settings, self.database)
        interval = self.settings.tick_interval_seconds
        # Queued snippet events are applied every second between ticks (each tick applies them first).
        pause = min(interval, QUEUE_INTERVAL_SECONDS) if self.settings.queues_tracking else interval
        next_tick = time.monotonic()
        try:
            while not self.stopping.is_set():
                try:
                    if time.monotonic() >= next_tick:
                        next_tick = time.monotonic() + interval
                        tick(self.database, transport, self.settings, utcnow(), clock=utcnow)
                        self.ticks += 1
                    else:
                        drain(self.database)
                except Exception:  # keep ticking: one bad pass must not stop the engine
                    log.exception("engine tick failed")
                self.stopping.wait(pause)
        finally:
            transport.close()

    def stop(self) -> None:
        """Finish the current tick and stop."""
        self.stopping.set()


def serve(settings: Settings, database: Database, *, host: str, port: int) -> None:
    """Serve the app on host:port and run the scheduler beside it until interrupted."""
    app = create_app(settings, database)
    scheduler = Scheduler(settings, database)
    server = make_server(host, port, app, threaded=True)
    print(f"mailer is running at http://{host}:{port}  (Ctrl-C to stop)", flush=True)

    def shutdown(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    scheduler.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.stop()
        scheduler.join(timeout=30)
        database.dispose()
