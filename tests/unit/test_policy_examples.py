"""B1: every scenario of examples.jsonl yields its expected outcome, categories and obligations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sharinghub.consent.domain import assess_consent
from sharinghub.contracts import (
    ConsentDirective,
    ConsentScope,
    DataCategory,
    Outcome,
    PolicyDecision,
    SharingRequest,
)
from sharinghub.policy.engine import PolicyEngine
from tests.conftest import load_examples

NOW = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
EXAMPLES = load_examples()
_SCOPE_KEYS = (
    "recipient_agency_ids",
    "recipient_agency_types",
    "purposes",
    "categories_included",
    "categories_excluded",
    "valid_from",
    "expires_at",
)


def request_of(example: dict[str, Any]) -> SharingRequest:
    body = {k: v for k, v in example.items() if k not in ("id", "title", "consents", "expected")}
    return SharingRequest.model_validate({**body, "request_id": example["id"]})


def directives_of(example: dict[str, Any], request: SharingRequest) -> list[ConsentDirective]:
    return [
        ConsentDirective(
            consent_id=c["consent_id"],
            version=1,
            subject_id=request.record.subject_id,
            granted_by=c["granted_by"],
            scope=ConsentScope.model_validate({k: c[k] for k in _SCOPE_KEYS}),
            revoked_at=c["revoked_at"],
        )
        for c in example["consents"]
    ]


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.load()


def decide(engine: PolicyEngine, example: dict[str, Any]) -> PolicyDecision:
    request = request_of(example)
    consent = assess_consent(request, directives_of(example, request), assessed_at=NOW)
    return engine.decide(request, consent, now=NOW)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["id"] for e in EXAMPLES])
def test_example_outcome_categories_and_obligations(
    engine: PolicyEngine, example: dict[str, Any]
) -> None:
    """B1: outcome, allowed categories and obligations match the example (as sets)."""
    expected = example["expected"]
    decision = decide(engine, example)
    assert decision.outcome == Outcome(expected["outcome"])
    assert set(decision.allowed_categories) == set(expected["allowed_categories"])
    assert set(decision.obligations) == set(expected["obligations"])


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["id"] for e in EXAMPLES])
def test_example_decision_is_complete_and_leaks_nothing(
    engine: PolicyEngine, example: dict[str, Any]
) -> None:
    """B1/B12: non-delivered outcomes carry nothing; no value or stated_reason in the text."""
    request = request_of(example)
    decision = decide(engine, example)
    requested = list(dict.fromkeys(request.requested_categories))
    assert [d.category for d in decision.category_decisions] == requested
    assert set(decision.withheld_categories) == set(requested) - set(decision.allowed_categories)
    assert decision.pack_id == request.jurisdiction.value
    assert decision.pack_version == engine.pack(request.jurisdiction).version
    assert decision.decided_at == NOW
    if decision.outcome is not Outcome.DELIVERED:
        assert decision.allowed_categories == []
        assert decision.obligations == []
        assert all(d.decision == "forbid" for d in decision.category_decisions)
    else:
        permitted = {d.category for d in decision.category_decisions if d.decision == "permit"}
        assert permitted == set(decision.allowed_categories)
    assert all(d.policy_ids for d in decision.category_decisions)
    text = decision.explanation + decision.reason_code
    for field in request.record.fields:
        assert field.value not in text
        if field.name not in {k.value for k in DataCategory}:  # category ids may be named
            assert field.name not in text
    assert request.stated_reason not in text
    for needle in example["expected"]["must_not_contain"]:
        assert needle not in text
