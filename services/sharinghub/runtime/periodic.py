"""A background job run every few seconds, whose failures are logged and retried, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


class PeriodicTask:
    """Runs `job` every `interval_s` (first run after `first_delay_s`). A failing run is logged
    by exception type only (its text may hold data) and the next tick tries again."""

    def __init__(
        self, name: str, job: Job, interval_s: float, *, first_delay_s: float = 0.0
    ) -> None:
        self._name = name
        self._job = job
        self._interval = interval_s
        self._first_delay = first_delay_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"periodic-{self._name}")

    async def stop(self) -> None:
        """Cancel the background task and wait for it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self._first_delay)
        while True:
            try:
                await self._job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "periodic task failed; retrying next tick",
                    extra={"task": self._name, "error_type": type(exc).__name__},
                )
            await asyncio.sleep(self._interval)
