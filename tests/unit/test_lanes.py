"""Which topics a service process consumes, by lane (`Settings.lane`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharinghub.contracts import Stage, topics
from sharinghub.runtime.app import StageService
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item


async def _noop(items: list[Item]) -> Batch:
    return Batch()


def _service(lane: str, tmp_path: Path) -> StageService:
    settings = Settings(data_dir=tmp_path, lane=lane, tracing=False)  # type: ignore[arg-type]
    return StageService(
        name="sharinghub-policy",
        stage=Stage.POLICY,
        settings=settings,
        bootstrap_servers="127.0.0.1:9",
        subscriptions=[
            ([topics.CONSENT_CHECKED], _noop),
            ([topics.CONSENT_CHECKED_URGENT], _noop),
            ([topics.REVIEW_DECISIONS], _noop),
        ],
        group_id="sharinghub-policy",
    )


@pytest.mark.parametrize(
    ("lane", "bulk", "urgent", "reviews", "background"),
    [
        ("all", True, True, True, True),
        ("bulk", True, False, True, True),
        ("urgent", False, True, False, False),
    ],
)
def test_a_lane_consumes_only_its_topics(
    lane: str, bulk: bool, urgent: bool, reviews: bool, background: bool, tmp_path: Path
) -> None:
    service = _service(lane, tmp_path)
    assert service.serves([topics.CONSENT_CHECKED]) is bulk
    assert service.serves([topics.CONSENT_CHECKED_URGENT]) is urgent
    assert service.serves([topics.REVIEW_DECISIONS]) is reviews
    assert service.runs_background_work is background
    groups = {sub.group_id for sub in service.broker.subscribers}  # what FastStream will join
    assert ("sharinghub-policy" in groups) is bulk
    assert ("sharinghub-policy-urgent" in groups) is urgent
    # review decisions have a group of their own: its members never rebalance the lanes
    assert ("sharinghub-policy-control" in groups) is reviews


def test_an_unknown_lane_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"all.*bulk.*urgent"):
        Settings(data_dir=tmp_path, lane="fast")  # type: ignore[arg-type]
