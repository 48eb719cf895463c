"""Envelopes as parsed JSON documents: what each stage does with one on the hot path.

A stage parses the bytes once (orjson), verifies the stamps over the canonical form of the
sections (`sharinghub.runtime.stamps`), validates into contract models only the sections it
uses, and appends its own section and stamp to the same document before serialising it
again. The wire format is exactly the `Envelope` contract's JSON; only the work is cheaper
than validating and re-serialising the whole envelope with pydantic in every stage (measured:
~55 µs to validate and ~30 µs to serialise a 8 KB envelope, against ~15 µs and ~4 µs here).

A document that is not even shaped like an envelope is refused with the same value-free
`InvalidMessage` reasons as `codec.decode`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sharinghub.contracts import ConsentAssessment, ConsentRef, DataCategory, SharingRequest
from sharinghub.runtime.codec import (
    InvalidMessage,
    check_size,
    describe_validation_error,
    find_request_id,
    sane_request_id,
)

Doc = dict[str, Any]
M = TypeVar("M", bound=BaseModel)

SECTIONS = ("request", "consent", "policy", "redaction")
_KEYS = frozenset({"schema_version", "received_at", "stamps", *SECTIONS})


class ConsentSupportView(BaseModel):
    """What later stages use of the consent assessment: the supported categories (with the
    directives behind them) and the minors flag. Validating only these skips the
    per-directive findings (measured: 18 µs → 1.5 µs); the stamps still cover the whole
    section."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    supported: dict[DataCategory, list[ConsentRef]] = Field(default_factory=dict)
    minor_self_consent: bool = False


def parse(raw: bytes | None, *, max_bytes: int) -> Doc:
    """The envelope document in `raw`, or InvalidMessage (empty, oversize, not JSON, not an
    envelope's shape). Sections are left as plain JSON values: see `section`."""
    raw = check_size(raw, max_bytes=max_bytes, nested_id=True)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidMessage(
            "malformed_json", "message is not valid JSON", find_request_id(raw)
        ) from None
    if not isinstance(doc, dict):
        raise InvalidMessage("schema_violation", "(message): an envelope is a JSON object")
    request = doc.get("request")
    request_id = request_id_of(doc)
    if not isinstance(request, dict):
        raise InvalidMessage("schema_violation", "request: field required", request_id)
    unknown = doc.keys() - _KEYS
    if unknown:
        names = ", ".join(sorted(k[:40] for k in unknown)[:5])
        raise InvalidMessage(
            "schema_violation", f"{names}: extra inputs are not permitted", request_id
        )
    if doc.get("schema_version", "1") != "1":
        raise InvalidMessage("schema_violation", "schema_version: input should be '1'", request_id)
    if not isinstance(doc.get("stamps", []), list):
        raise InvalidMessage("schema_violation", "stamps: input should be a list", request_id)
    return doc


def request_id_of(doc: Doc) -> str | None:
    """The request id of a parsed envelope, if it has a well-formed one (for DLQ entries)."""
    request = doc.get("request")
    return sane_request_id(request.get("request_id")) if isinstance(request, dict) else None


def section(doc: Doc, name: str, model: type[M]) -> M:
    """Validate one section into its contract model; InvalidMessage names the path."""
    value = doc.get(name)
    if value is None:
        raise InvalidMessage("schema_violation", f"{name}: field required", request_id_of(doc))
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        reason = describe_validation_error(exc)
        raise InvalidMessage(
            "schema_violation",
            "; ".join(f"{name}.{part}" for part in reason.split("; ")),
            request_id_of(doc),
        ) from None


def received_at(doc: Doc) -> datetime:
    """When the hub accepted the request (aware datetime)."""
    value = doc.get("received_at")
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InvalidMessage(
            "schema_violation",
            "received_at: input should be a datetime with a time zone",
            request_id_of(doc),
        )
    return when


def dump(model: BaseModel) -> Any:
    """A contract model as the JSON value it is in an envelope (what stamps cover)."""
    return model.model_dump(mode="json")


def new(request: SharingRequest, received: datetime, consent: ConsentAssessment) -> Doc:
    """The document the consent stage starts an envelope with (before its stamp)."""
    return {
        "schema_version": "1",
        "request": dump(request),
        "received_at": received.isoformat().replace("+00:00", "Z"),
        "consent": dump(consent),
        "policy": None,
        "redaction": None,
        "stamps": [],
    }


def with_section(doc: Doc, name: str, model: BaseModel) -> Doc:
    """A copy of `doc` with `name` set to `model` (the input document is left unchanged)."""
    return {**doc, name: dump(model)}


def serialise(doc: Doc) -> bytes:
    """The envelope's bytes on the wire."""
    return orjson.dumps(doc)
