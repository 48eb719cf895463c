"""Integration fixtures: a real embedded broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sharinghub.runtime.broker import EmbeddedBroker


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """Bootstrap address of an embedded broker (Tansu) started for one test module."""
    broker = EmbeddedBroker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
