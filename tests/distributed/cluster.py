"""Real processes for the distributed tests: redis-server, Celery workers, beat and `mailer tick`, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from tests.support.ports import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent.parent


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children of a dead leader may linger
    process.wait(timeout=grace)


class RedisServer:
    """redis-server without persistence, so a restart loses every queued task (the worst case)."""

    def __init__(self, workdir: Path, policy: str = "noeviction", extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.policy = policy
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start on the same port every time, and wait until it answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "redis.log", "ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--maxmemory-policy", self.policy, "--dir", str(self.workdir), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_until(self._answers, 10, f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop it (SIGTERM; without persistence nothing is saved)."""
        if self.process is not None:
            _stop(self.process)
            self.process = None


class Cluster:
    """Starts mailer processes with one MAILER_* environment; `close()` kills any left running."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # A session of its own: killing the group reaches the worker's pool children too.
        with open(self.logdir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        """What the process wrote so far."""
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def celery_worker(self, name: str, queues: str = "send", concurrency: int = 1) -> subprocess.Popen[bytes]:
        """A worker through Celery's own CLI (`celery -A mailer.tasks.main worker`); waits until ready."""
        process = self._spawn(name, [
            sys.executable, "-m", "celery", "-A", "mailer.tasks.main", "worker", "-Q", queues,
            "-c", str(concurrency), "--pool", "prefork", "--loglevel", "INFO", "-n", f"{name}@%h",
            "--without-mingle", "--without-gossip",
        ])
        self._wait_ready(name, process)
        return process

    def mailer_worker(self, name: str, queues: str = "send", concurrency: int = 1, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """A worker through run_worker (what `mailer worker` calls); waits until ready unless told not to."""
        code = (
            "import sys; from mailer.config import load_settings; from mailer.tasks.cli_entry import run_worker; "
            f"sys.exit(run_worker(load_settings(), {concurrency}, {queues!r}))"
        )
        process = self._spawn(name, [sys.executable, "-c", code])
        if wait:
            self._wait_ready(name, process)
        return process

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        """The beat scheduler through run_beat (what `mailer beat` calls)."""
        code = "from mailer.config import load_settings; from mailer.tasks.cli_entry import run_beat; run_beat(load_settings())"
        return self._spawn(name, [sys.executable, "-c", code])

    def _wait_ready(self, name: str, process: subprocess.Popen[bytes]) -> None:
        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log(name)[-4000:]}")
            return " ready." in self.log(name)

        wait_until(ready, 60, f"{name} to be ready")

    def assert_no_task_errors(self) -> None:
        """Fail at once if a task raised in any process, rather than wait for a timeout."""
        for name in self.processes:
            text = self.log(name)
            at = text.find(" raised unexpected: ")
            if at >= 0:
                raise AssertionError(f"a task raised in {name}:\n{text[max(0, at - 300):at + 3000]}")

    def kill(self, name: str) -> None:
        """SIGKILL the process and its pool children at once, as a machine dying would."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, name: str) -> None:
        """Stop one process politely (warm shutdown), killing it if it hangs."""
        _stop(self.processes[name], grace=30)

    def tick(self, now: datetime | None = None, timeout: float = 120) -> dict[str, object]:
        """Run `mailer tick --json [--now]` once and return its report."""
        argv = [sys.executable, "-m", "mailer.cli", "tick", "--json"]
        if now is not None:
            argv += ["--now", now.isoformat()]
        done = subprocess.run(argv, env=self.env, cwd=ROOT, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise TickFailed(done.stderr.decode(errors="replace")[-3000:])
        return dict(json.loads(done.stdout))

    def close(self) -> None:
        """Stop everything still running (also after a failed test)."""
        for process in self.processes.values():
            _stop(process, grace=5)


class TickFailed(AssertionError):
    """`mailer tick` exited with an error (e.g. Redis was down while it dispatched)."""
