"""Bytes ⇄ contract models, with validation errors that never echo an input value."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)


class InvalidMessage(ValueError):
    """A message that cannot become a contract. `reason` is safe to log: paths and rules only."""

    def __init__(self, reason_code: str, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason
        self.request_id = request_id


def encode(model: BaseModel) -> bytes:
    """Serialise a contract to JSON bytes (pydantic's Rust serializer)."""
    return model.model_dump_json().encode()


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """`path: message` per error. pydantic messages name the rule, not the input; the input
    value (`input_value` in str(exc)) is deliberately left out — it may be confidential."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"… and {more} more")
    return "; ".join(parts)


_SANE_ASCII_ID = re.compile(r"[A-Za-z0-9._:-]+")
_REQUEST_ID = re.compile(rb'"request_id"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._:-]{0,127})"')


def recover_request_id(raw: bytes) -> str | None:
    """Best effort: the request id of a message that failed validation, if it has a sane one.

    Broken or truncated JSON (an oversize message is only looked at in its first kilobytes)
    is searched for a well-formed `"request_id": "…"` pair instead.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return find_request_id(raw)
    return sane_request_id(data.get("request_id")) if isinstance(data, dict) else None


def find_request_id(raw: bytes) -> str | None:
    """The first well-formed ``"request_id": "…"`` pair in the first kilobytes of `raw`, at
    any depth (an envelope's is inside its request), without parsing the JSON."""
    match = _REQUEST_ID.search(raw[:4096])
    return match.group(1).decode() if match else None


def sane_request_id(candidate: object) -> str | None:
    """`candidate` if it is shaped like a request id (safe to log and to key by), else None."""
    if not isinstance(candidate, str) or not 0 < len(candidate) <= 128:
        return None
    # Called for every envelope a stage reads: one regex match instead of a Python-level
    # loop over the characters (~10x less); other alphabets take the loop.
    if _SANE_ASCII_ID.fullmatch(candidate) or (
        not candidate.isascii() and all(c.isalnum() or c in "._:-" for c in candidate)
    ):
        return candidate
    return None


def decode(model: type[M], raw: bytes, *, max_bytes: int) -> M:
    """Parse and validate `raw` as `model`, raising InvalidMessage with a value-free reason."""
    result: M = _decode_with(model.model_validate_json, raw, max_bytes=max_bytes)
    return result


def decode_adapter(adapter: TypeAdapter[Any], raw: bytes, *, max_bytes: int) -> Any:
    """Like `decode` for union types (e.g. the consent directive event)."""
    return _decode_with(adapter.validate_json, raw, max_bytes=max_bytes)


def check_size(raw: bytes | None, *, max_bytes: int, nested_id: bool = False) -> bytes:
    """`raw` if it is a message within the size limit, else InvalidMessage. With
    `nested_id` the request id of an oversize message is looked for at any depth."""
    if raw is None:
        raise InvalidMessage("empty_message", "message has no value")
    if len(raw) > max_bytes:
        raise InvalidMessage(
            "oversize",
            f"message is {len(raw)} bytes, above the limit of {max_bytes}",
            find_request_id(raw) if nested_id else recover_request_id(raw[:4096]),
        )
    return raw


def _decode_with(validate: Any, raw: bytes | None, *, max_bytes: int) -> Any:
    raw = check_size(raw, max_bytes=max_bytes)
    try:
        return validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        code = "malformed_json" if first["type"] == "json_invalid" else "schema_violation"
        if code == "malformed_json":
            raise InvalidMessage(
                code, "message is not valid JSON", recover_request_id(raw)
            ) from None
        raise InvalidMessage(
            code, describe_validation_error(exc), recover_request_id(raw)
        ) from None
