"""Content of one audit-ledger row, and the pure hashing the ledger's chain is built from.

Everything here is free of SQLAlchemy so that an outside verifier (a governance board, an
auditor holding a checkpoint) can recompute hashes from an export with nothing but this
module.

An audit record describes a decision, never the data: it names categories and field names,
rule ids, consent ids and versions, and the digest of what was delivered, but no field value,
no person's name and no stated reason.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import AwareDatetime, Field, JsonValue, StringConstraints, field_validator

from sharinghub.contracts import (
    AgencyType,
    ConsentRef,
    DataCategory,
    DeliveryPayload,
    Jurisdiction,
    ManifestEntry,
    Obligation,
    Outcome,
    Purpose,
    Stage,
)
from sharinghub.contracts.base import AgencyId, Contract, RequestId, SubjectId

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first row: the chain starts from a fixed, well-known value."""

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AuditRecord(Contract):
    """One decision about one request, as the governance board will read it.

    ``(request_id, decision_seq)`` identifies a record: 1 is the first decision on a request,
    2 a later one (e.g. a reviewer's decision after ``pending_review``). The ledger stores
    each record at most once, so redelivered events cannot duplicate it.
    """

    request_id: RequestId
    decision_seq: int = Field(ge=1, description="1 for the first decision on a request, 2 …")
    recorded_at: AwareDatetime = Field(description="When the decision was recorded (UTC).")
    stage: Stage = Field(description="Stage that made the decision.")
    outcome: Outcome
    final: bool = Field(description="This is the request's final outcome.")
    reason_code: str = Field(max_length=200, examples=["P.consent.none"])
    requester_agency_id: AgencyId
    requester_agency_type: AgencyType
    recipient_agency_id: AgencyId
    recipient_agency_type: AgencyType
    purpose: Purpose
    jurisdiction: Jurisdiction
    subject_id: SubjectId = Field(
        description="Pseudonymous subject id; stored so the board can account per subject."
    )
    subject_ref_hash: Sha256Hex = Field(
        description="Keyed hash of the subject id (see `subject_ref_hash`) for exports."
    )
    pack_id: str | None = Field(
        default=None, description="Policy pack id; null only if no policy decision exists."
    )
    pack_version: str | None = Field(default=None, description="Pack version and content hash.")
    consents_used: list[ConsentRef] = Field(default_factory=list)
    facts: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="The request's structured facts (booleans, category lists) — no values.",
    )
    allowed_categories: list[DataCategory] = Field(default_factory=list)
    withheld_categories: list[DataCategory] = Field(default_factory=list)
    withheld_field_names: list[str] = Field(default_factory=list)
    delivered_field_names: list[str] = Field(default_factory=list)
    obligations: list[Obligation] = Field(default_factory=list)
    reviewer_id: str | None = Field(default=None, max_length=100)
    break_glass: bool = False
    break_glass_declared_by: str | None = Field(default=None, max_length=100)
    pseudonym: str | None = Field(default=None, description="One-time pseudonym, if issued.")
    payload_digest: Sha256Hex | None = Field(
        default=None, description="SHA-256 of the delivered payload (see `payload_digest`)."
    )
    manifest: list[ManifestEntry] = Field(default_factory=list)
    trace_id: str | None = Field(default=None, max_length=64)

    @field_validator("recorded_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        # One instant must have one canonical text, whatever offset the caller used.
        return value.astimezone(UTC)

    def content(self) -> dict[str, Any]:
        """JSON-ready content of the record (enums as strings, timestamp as UTC ISO)."""
        return self.model_dump(mode="json")


def canonical_json(content: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace: the same content always gives the same bytes."""
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def row_hash(prev_hash: str, seq: int, record: AuditRecord) -> str:
    """``sha256(prev_hash || canonical JSON of the record content incl. seq)`` as hex."""
    return content_hash(prev_hash, seq, record.content())


def content_hash(prev_hash: str, seq: int, content: dict[str, Any]) -> str:
    """`row_hash` of a record whose `AuditRecord.content` is already at hand."""
    body = canonical_json({**content, "seq": seq})
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def subject_ref_hash(subject_id: str, key: bytes) -> str:
    """Keyed hash of a subject id: links one subject's records without naming the subject."""
    return hmac.new(key, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()


def payload_digest(payload: DeliveryPayload) -> str:
    """SHA-256 of the canonical JSON of exactly what the recipient received."""
    return hashlib.sha256(canonical_json(payload.model_dump(mode="json"))).hexdigest()


class Checkpoint(Contract):
    """A signed statement "the ledger's head was `head_hash` at `seq`", held by an outsider.

    Whoever holds it can later show that the ledger still contains that exact prefix: a
    rewrite of any row up to ``seq`` changes the hash at ``seq``.
    """

    seq: int = Field(ge=0, description="Seq of the head; 0 for an empty ledger.")
    head_hash: Sha256Hex
    created_at: AwareDatetime
    key_id: str = Field(min_length=1, max_length=100)
    hmac: Sha256Hex = Field(description="HMAC-SHA256 over the other fields' canonical JSON.")


def _checkpoint_mac(key: bytes, seq: int, head_hash: str, created_at: datetime, key_id: str) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "head_hash": head_hash,
            "created_at": created_at.astimezone(UTC).isoformat(),
            "key_id": key_id,
        }
    )
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def sign_checkpoint(seq: int, head_hash: str, key: bytes, key_id: str) -> Checkpoint:
    """Sign ``(seq, head_hash)`` now with ``key``."""
    created_at = datetime.now(UTC)
    mac = _checkpoint_mac(key, seq, head_hash, created_at, key_id)
    return Checkpoint(seq=seq, head_hash=head_hash, created_at=created_at, key_id=key_id, hmac=mac)


def verify_checkpoint(checkpoint: Checkpoint, key: bytes) -> bool:
    """True if the checkpoint was signed with ``key`` and not altered since."""
    expected = _checkpoint_mac(
        key, checkpoint.seq, checkpoint.head_hash, checkpoint.created_at, checkpoint.key_id
    )
    return hmac.compare_digest(expected, checkpoint.hmac)
