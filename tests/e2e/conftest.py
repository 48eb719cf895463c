"""One hub for the e2e session: embedded broker, SQLite ledger and the four services, each as a
bulk process (at lower CPU priority) plus an urgent-lane process (`up --urgent-processes`).

The default one-process-per-stage layout is exercised by `test_cli.py`, which starts its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sharinghub.runtime.settings import Settings
from sharinghub.tools.hub import Hub


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data: Path = tmp_path_factory.mktemp("hub")
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'hub.db'}",
        kafka_bootstrap_servers=None,
        broker="embedded",
        session_timeout_ms=6000,
        partitions=3,
    )
    authorised = data / "break-glass.json"
    authorised.write_text('{"*": ["pr-recovery-0042", "pr-lakeshore-0007"]}')
    h = Hub(
        settings,
        urgent_processes=True,
        extra_env={
            "SHARINGHUB_SESSION_TIMEOUT_MS": "6000",
            # small enough that the oversize test stays under the broker's own message limit
            "SHARINGHUB_MAX_MESSAGE_BYTES": "300000",
            "SHARINGHUB_BREAK_GLASS_FILE": str(authorised),
        },
    )
    h.start()
    try:
        late = h.wait_ready(timeout_s=180)
        assert not late, f"services not ready after 180 s: {late}"
        yield h
    finally:
        dead = h.check_alive()
        h.stop()
        assert not dead, f"services died during the session: {dead}"


@pytest.fixture
def settings_of(hub: Hub) -> Settings:
    return hub.settings
