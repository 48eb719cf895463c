"""Overdue review cases are escalated once, as an event, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from sharinghub.contracts import (
    ConsentAssessment,
    Envelope,
    ReviewCase,
    ReviewEscalated,
    ReviewRequirement,
    topics,
)
from sharinghub.policy.escalation import EscalationSweeper
from sharinghub.policy.reviews import ReviewStore
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.schema import upgrade
from sharinghub.runtime.stage import Output
from tests.support.examples import request_of

pytestmark = pytest.mark.integration


async def test_overdue_cases_escalate_once(database_url: str, examples) -> None:  # type: ignore[no-untyped-def]
    upgrade(database_url)
    engine = create_engine_for(database_url)
    store = ReviewStore(engine)
    now = datetime.now(UTC)
    request = request_of(examples[11])
    env = Envelope(request=request, received_at=now, consent=ConsentAssessment(assessed_at=now))

    def case(cid: str, due: datetime) -> ReviewCase:
        return ReviewCase(
            case_id=cid,
            request_id=request.request_id,
            kind="pending_review",
            requester_agency_id=request.requester.agency_id,
            recipient_agency_id=request.recipient.agency_id,
            purpose=request.purpose,
            jurisdiction=request.jurisdiction,
            requirement=ReviewRequirement(question="Is the threat imminent?"),
            opened_at=due - timedelta(hours=72),
            due_at=due,
        )

    store.open_cases(
        [
            (case("rc-late", now - timedelta(hours=5)), env, {}),
            (case("rc-on-time", now + timedelta(hours=5)), env, {}),
        ]
    )
    published: list[Output] = []

    async def publish_all(outputs: Sequence[Output]) -> None:
        published.extend(outputs)

    sweeper = EscalationSweeper(store, publish_all)
    assert await sweeper.sweep_once() == 1
    assert await sweeper.sweep_once() == 0  # escalated once, not every sweep
    [out] = published
    assert out.topic == topics.REVIEW_ESCALATIONS
    event = ReviewEscalated.model_validate_json(out.value)
    assert event.case_id == "rc-late" and event.hours_overdue >= 5
    engine.dispose()
