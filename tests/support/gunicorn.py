"""A real gunicorn master with mailer's LoopWorker on a free 127.0.0.1 port, for tests of the web server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER = "mailer.web.loop_worker.LoopWorker"


class Gunicorn:
    """`gunicorn -k LoopWorker` serving `app_spec`; its output goes to `log`."""

    def __init__(self, app_spec: str, log: Path, *args: str, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        self.command = [sys.executable, "-m", "gunicorn", "-c", "/dev/null", "-k", WORKER, "-w", str(workers),
                        "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "10", *args, app_spec]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        """Start it and wait until a connection is accepted and answered."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    probe.sendall(b"GET /ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    if probe.recv(16).startswith(b"HTTP/1.1"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not answer:\n{self.log.read_text(errors='replace')[-3000:]}")

    def connect(self, timeout: float = 10) -> socket.socket:
        """A raw client socket to it."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def stop(self) -> int | None:
        """SIGTERM the master (a graceful stop) and wait for it; its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self.process = None
