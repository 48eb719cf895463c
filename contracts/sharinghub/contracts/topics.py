"""Kafka topic names (ARCHITECTURE.md §1). Versioned: a breaking contract change is a new topic."""

from __future__ import annotations

REQUESTS = "sharinghub.requests.v1"
CONSENT_DIRECTIVES = "sharinghub.consent.directives.v1"
CONSENT_CHECKED = "sharinghub.stage.consent-checked.v1"
POLICY_DECIDED = "sharinghub.stage.policy-decided.v1"
REDACTED = "sharinghub.stage.redacted.v1"
REVIEW = "sharinghub.review.v1"
REVIEW_DECISIONS = "sharinghub.review.decisions.v1"
REVIEW_ESCALATIONS = "sharinghub.review.escalations.v1"
OUTCOMES = "sharinghub.outcomes.v1"
DLQ = "sharinghub.dlq.v1"
NOTIFICATIONS = "sharinghub.notifications.v1"
RETRACTION_ACKS = "sharinghub.retractions.acks.v1"

# The urgent lane: the same stages on their own topics and consumer groups, so requests with
# urgent purposes never wait behind a bulk backlog (agencies publish them to REQUESTS_URGENT;
# urgent ones that arrive on REQUESTS join the lane at the next hop).
_URGENT_SUFFIX = ".urgent.v1"
REQUESTS_URGENT = "sharinghub.requests.urgent.v1"
CONSENT_CHECKED_URGENT = "sharinghub.stage.consent-checked.urgent.v1"
POLICY_DECIDED_URGENT = "sharinghub.stage.policy-decided.urgent.v1"
REDACTED_URGENT = "sharinghub.stage.redacted.urgent.v1"
_URGENT_OF = {
    REQUESTS: REQUESTS_URGENT,
    CONSENT_CHECKED: CONSENT_CHECKED_URGENT,
    POLICY_DECIDED: POLICY_DECIDED_URGENT,
    REDACTED: REDACTED_URGENT,
}


def lane(topic: str, urgent: bool) -> str:
    """`topic`, or its urgent-lane twin when the request's purpose is urgent."""
    return _URGENT_OF[topic] if urgent else topic


def is_urgent(topic: str) -> bool:
    """True for the urgent-lane topics."""
    return topic.endswith(_URGENT_SUFFIX)


PIPELINE_TOPICS: tuple[str, ...] = (
    REQUESTS,
    CONSENT_DIRECTIVES,
    CONSENT_CHECKED,
    POLICY_DECIDED,
    REDACTED,
    REVIEW,
    REVIEW_DECISIONS,
    REVIEW_ESCALATIONS,
    OUTCOMES,
    DLQ,
    NOTIFICATIONS,
    RETRACTION_ACKS,
    REQUESTS_URGENT,
    CONSENT_CHECKED_URGENT,
    POLICY_DECIDED_URGENT,
    REDACTED_URGENT,
)

_INBOX_PREFIX = "agency."
_INBOX_SUFFIX = ".inbox.v1"


def inbox_topic(agency_id: str) -> str:
    """The receiving agency's own inbox topic: ``agency.<agency_id>.inbox.v1``.

    Kafka topic names cannot hold ':'; agency ids cannot hold '_', so mapping ':' to '_'
    keeps the topic name unique per agency.
    """
    return f"{_INBOX_PREFIX}{agency_id.replace(':', '_')}{_INBOX_SUFFIX}"
