"""Escalate review cases nobody decided in time (an event governance boards see)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from sharinghub.contracts import ReviewEscalated, topics
from sharinghub.policy.reviews import ReviewStore
from sharinghub.runtime.codec import encode
from sharinghub.runtime.periodic import PeriodicTask
from sharinghub.runtime.stage import Output, utcnow

log = logging.getLogger(__name__)


class EscalationSweeper:
    """Every `interval_s`: publish an escalation for each overdue case, then mark it (so a
    crash between the two repeats the event rather than losing it)."""

    def __init__(
        self,
        store: ReviewStore,
        publish_all: Callable[[Sequence[Output]], Awaitable[None]],
        interval_s: float = 30.0,
    ) -> None:
        self._store = store
        self._publish_all = publish_all
        self._periodic = PeriodicTask(
            "review-escalation", self.sweep_once, interval_s, first_delay_s=interval_s
        )
        self.start = self._periodic.start
        self.stop = self._periodic.stop

    async def sweep_once(self) -> int:
        now = utcnow()
        cases = await asyncio.to_thread(self._store.overdue, now)
        if not cases:
            return 0
        events = [
            ReviewEscalated(
                case_id=c.case_id,
                request_id=c.request_id,
                kind=c.kind,
                purpose=c.purpose,
                jurisdiction=c.jurisdiction,
                opened_at=c.opened_at,
                due_at=c.due_at,
                escalated_at=now,
                hours_overdue=round((now - c.due_at).total_seconds() / 3600, 2),
            )
            for c in cases
        ]
        await self._publish_all(
            [Output(topics.REVIEW_ESCALATIONS, encode(e), e.request_id.encode()) for e in events]
        )
        await asyncio.to_thread(self._store.mark_escalated, [c.case_id for c in cases], now)
        log.warning("review cases escalated", extra={"count": len(events)})
        return len(events)
