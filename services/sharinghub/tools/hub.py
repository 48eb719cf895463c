"""Run the whole hub: broker, database schema, keys and the four services as child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sharinghub.contracts import topics
from sharinghub.runtime import event_loop
from sharinghub.runtime.broker import Broker, free_loopback_port, resolve_broker
from sharinghub.runtime.lifetime import end_with_parent
from sharinghub.runtime.schema import upgrade
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stamps import StageKeys
from sharinghub.runtime.topics import ensure_topics

SERVICES = ("consent", "policy", "redaction", "delivery")
# CPU priority of bulk processes when the urgent lane has its own (CFS weight ~2.4x below
# nice 0). Measured on 2 cores: 10 starves bulk (p50 at 200/s x2.4), 0 leaves urgent p99 at
# 2.4x its idle figure under a bulk backlog, 4 keeps it under 2x.
BULK_NICE = 4


class ServiceExited(RuntimeError):
    """A service process exited while the hub waited for it."""

    def __init__(self, services: list[str], log_dir: Path) -> None:
        super().__init__(f"service exited: {', '.join(services)}; see {log_dir}/")
        self.services = services


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            return bool(response.status == 200)
    except (OSError, ValueError):  # not listening yet, 503 (HTTPError), timeout
        return False


@dataclass
class Hub:
    """Starts what the hub needs and stops exactly what it started (by PID)."""

    settings: Settings
    services: tuple[str, ...] = SERVICES
    processes_per_stage: int = 1
    # Besides each stage's bulk processes (run at lower CPU priority), one urgent-lane process
    # per stage: urgent requests then do not share a process or the CPU with a bulk backlog.
    urgent_processes: bool = False
    bulk_nice: int = BULK_NICE
    extra_env: dict[str, str] = field(default_factory=dict)
    metrics: bool = True  # each child serves /metrics on its own free loopback port
    metrics_ports: dict[str, int] = field(default_factory=dict)  # process label → port
    broker: Broker | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    # services that had already exited when `stop_services` was called, for `check_alive`
    exited_before_stop: list[str] = field(default_factory=list)

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap_servers

    def log_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    def start(self, *, spawn_services: bool = True) -> None:
        """Broker, schema, keys and topics; then the services unless `spawn_services=False`
        (the bench publishes its consent directives before the services start)."""
        s = self.settings
        event_loop.loop_name(s.event_loop)  # uvloop asked for and missing: before anything
        s.data_dir.mkdir(parents=True, exist_ok=True)
        StageKeys.generate(s.resolved_keys_file())
        upgrade(s.database_url, lock_dir=s.data_dir)
        self.broker = resolve_broker(s)
        try:
            event_loop.run(
                ensure_topics(
                    self.bootstrap_servers, topics.PIPELINE_TOPICS, partitions=s.partitions
                ),
                s.event_loop,
            )
            if spawn_services:
                self.spawn_services()
        except BaseException:
            self.stop()
            raise

    def spawn_services(self) -> None:
        """Start every service's processes (after `start(spawn_services=False)`)."""
        self.log_dir().mkdir(parents=True, exist_ok=True)
        try:
            for name in self.services:
                for n in range(self.processes_per_stage):
                    if self.urgent_processes:
                        self._spawn(name, n, lane="bulk", nice=self.bulk_nice)
                    else:
                        self._spawn(name, n)
                if self.urgent_processes:
                    self._spawn(name, 0, lane="urgent")
        except BaseException:
            self.stop()
            raise

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
        env["SHARINGHUB_DATABASE_URL"] = self.settings.database_url
        env["SHARINGHUB_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["SHARINGHUB_KEYS_FILE"] = str(self.settings.resolved_keys_file().resolve())
        env["SHARINGHUB_TRACING"] = "true" if self.settings.tracing else "false"
        env["SHARINGHUB_EVENT_LOOP"] = self.settings.event_loop
        env.pop("DATABASE_URL", None)
        return env

    def metrics_urls(self) -> dict[str, str]:
        """The /metrics URL of every child process, by label ("policy-0", or "policy-bulk-0"
        and "policy-urgent-0" with urgent-lane processes)."""
        return {k: f"http://127.0.0.1:{p}/metrics" for k, p in self.metrics_ports.items()}

    def _spawn(self, name: str, n: int, lane: str = "all", nice: int = 0) -> None:
        label = f"{name}-{n}" if lane == "all" else f"{name}-{lane}-{n}"
        log_path = self.log_dir() / f"{label}.log"
        env = self.child_env()
        env.update(SHARINGHUB_LANE=lane, SHARINGHUB_NICE=str(nice))
        if self.metrics:
            port = free_loopback_port()
            self.metrics_ports[label] = port
            env.update(SHARINGHUB_METRICS_PORT=str(port), SHARINGHUB_METRICS_HOST="127.0.0.1")
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sharinghub.cli", "run", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=end_with_parent(),  # ends it should this process be killed
            )
        self.children.append((label, proc))

    def wait_ready(
        self,
        timeout_s: float = 120.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Wait until every service process answers 200 on /ready (its consumers joined their
        groups and have partitions); return the labels still not ready after `timeout_s`
        (empty: all ready). `on_progress(ready, total)` is called on every poll (~5 a second),
        so a caller can show the count as it grows or print a line now and then.

        Raises `ServiceExited` if a service exits meanwhile. Without metrics endpoints
        (`metrics=False`) there is nothing to ask, and it returns at once.
        """
        waiting = dict(self.metrics_urls())
        total = len(waiting)
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            dead = self.check_alive()
            if dead:
                raise ServiceExited(dead, self.log_dir())
            for label, url in list(waiting.items()):
                if _answers_ok(url.removesuffix("/metrics") + "/ready"):
                    del waiting[label]
            if on_progress is not None:
                on_progress(total - len(waiting), total)
            if waiting:
                time.sleep(0.2)
        return sorted(waiting)

    def check_alive(self) -> list[str]:
        """Names of services that exited unexpectedly."""
        return self.exited_before_stop + [
            f"{name} (exit {p.returncode})" for name, p in self.children if p.poll() is not None
        ]

    def stop_services(self, timeout_s: float = 20.0) -> None:
        """Stop the services (SIGTERM, then kill after `timeout_s`), keeping the broker and
        what its topics hold."""
        self.exited_before_stop = self.check_alive()
        for _, proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for _, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.children.clear()
        self.metrics_ports.clear()

    def stop(self, timeout_s: float = 20.0) -> None:
        self.stop_services(timeout_s)
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def __enter__(self) -> Hub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
