"""Consent service side of retractions: a sweeper that sends owed notices, and the ack handler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from sharinghub.consent.retractions import RetractionStore
from sharinghub.contracts import RetractionAck, Stage, topics
from sharinghub.runtime.codec import InvalidMessage, decode, encode
from sharinghub.runtime.periodic import PeriodicTask
from sharinghub.runtime.stage import Batch, Item, Output, rejection, utcnow

log = logging.getLogger(__name__)

PublishAll = Callable[[Sequence[Output]], Awaitable[None]]


class RetractionSweeper:
    """Every `interval_s`, publish the retraction notices owed to recipients (idempotent: a
    notice is marked published only after the broker acknowledged it)."""

    def __init__(self, store: RetractionStore, publish_all: PublishAll, interval_s: float = 1.0):
        self._store = store
        self._publish_all = publish_all
        self._periodic = PeriodicTask("retraction-sweeper", self.sweep_once, interval_s)
        self.start = self._periodic.start
        self.stop = self._periodic.stop

    async def sweep_once(self) -> int:
        now = utcnow()
        due = await asyncio.to_thread(self._store.due, now)
        if not due:
            return 0
        outputs = [
            Output(
                topics.inbox_topic(p.recipient_agency_id),
                encode(p.notice),
                p.notice.consent_id.encode(),
            )
            for p in due
        ]
        await self._publish_all(outputs)
        await asyncio.to_thread(
            self._store.mark_published, [p.notice.retraction_id for p in due], now
        )
        log.info("retraction notices sent", extra={"count": len(due)})
        return len(due)


def ack_processor(
    store: RetractionStore, max_bytes: int
) -> Callable[[list[Item]], Awaitable[Batch]]:
    """Batch processor for ``sharinghub.retractions.acks.v1``."""

    async def on_acks(items: list[Item]) -> Batch:
        out: list[Output] = []
        for item in items:
            try:
                ack = decode(RetractionAck, item.value, max_bytes=max_bytes)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.CONSENT, exc, outcome=False))
                continue
            status = await asyncio.to_thread(store.acknowledge, ack)
            if status not in ("acknowledged", "duplicate"):
                reason = {
                    "unknown_retraction": "no retraction notice with that id",
                    "not_the_recipient": "the notice was sent to another agency",
                }[status]
                out.extend(
                    rejection(item, Stage.CONSENT, InvalidMessage(status, reason), outcome=False)
                )
        return Batch(out)

    return on_acks
