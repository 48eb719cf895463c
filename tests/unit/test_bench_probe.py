"""The bench's live probe: how long it waits for outcomes (it never talks to a broker here)."""

from __future__ import annotations

import asyncio
import time

from sharinghub.tools.bench.probe import Probe


def _probe() -> Probe:
    return Probe("127.0.0.1:9", [], lambda topic, value, headers: None)


async def test_waiting_ends_when_every_id_was_seen() -> None:
    probe = _probe()
    probe.seen.first.update({"a": 1.0, "b": 2.0})
    assert await probe.wait_for(["a", "b"], timeout_s=30, stall_s=30)


async def test_waiting_gives_up_once_nothing_new_arrives_for_the_stall_time() -> None:
    probe = _probe()
    probe.seen.first["a"] = 1.0
    # "b" never comes; the wait ends after the stall time, well before its timeout
    waiting = asyncio.create_task(probe.wait_for(["a", "b"], timeout_s=600, stall_s=0.2))
    assert await asyncio.wait_for(waiting, timeout=30) is False


async def test_an_arrival_restarts_the_stall_time() -> None:
    probe = _probe()
    waiting = asyncio.create_task(probe.wait_for(["a", "b"], timeout_s=600, stall_s=5.0))
    # each arrives before the stall time since the one before, the last after it in all
    for rid in ("a", "b"):
        await asyncio.sleep(3.0)
        probe.seen.first[rid] = probe.seen.last_new = time.monotonic()
    assert await asyncio.wait_for(waiting, timeout=30) is True
