"""Stage stamps: each stage MACs a digest of what it vouches for, chained to the previous stamp.

The first stamp's digest covers the immutable request and the stage's own result; every
later one covers its stage's result and the previous stamp's MAC (and so, transitively, the
request). The delivery gate recomputes the chain from the envelope content and refuses anything
injected into a stage topic, reordered, or changed after a stage vouched for it (invariant 1).

What is hashed is the canonical form of a section: `orjson.dumps` of its parsed JSON value
(keys in the order they arrived, no whitespace). A stage computes it from the document it is
about to send and a verifier from the document it received, so no stage re-serialises a
section through pydantic to check a stamp, and what is verified is exactly what is then used.
The work is on parsed envelope documents (`envelope_doc`); `stamp` and `verify_chain` do the
same for `Envelope` models.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sharinghub.contracts import Envelope, Stage

STAMPED_STAGES: tuple[Stage, ...] = (Stage.CONSENT, Stage.POLICY, Stage.REDACTION)
_SECTION = {Stage.CONSENT: "consent", Stage.POLICY: "policy", Stage.REDACTION: "redaction"}
_STAMP_KEYS = ("stage", "service_version", "key_id", "digest", "mac")


def request_digest(request: Any) -> str:
    """SHA-256 hex of the canonical form of the request section (the first stamp's anchor)."""
    return hashlib.sha256(b"\x00j" + orjson.dumps(request)).hexdigest()


def section_digest(anchor: str, content: Any) -> str:
    """SHA-256 hex over what one stamp vouches for: its anchor and its section's content."""
    return hashlib.sha256(b"\x00s" + anchor.encode() + b"\x00j" + orjson.dumps(content)).hexdigest()


def _mac(key: bytes, digest: str) -> str:
    return hmac.digest(key, digest.encode(), "sha256").hex()


@dataclass(frozen=True)
class StageKeys:
    """MAC keys per stage, loaded from configuration; key ids make rotation visible."""

    keys: dict[Stage, tuple[str, bytes]]
    subject_hash_key: bytes

    @classmethod
    def load(cls, path: Path) -> StageKeys:
        """Read `{"consent": {"key_id": ..., "key_hex": ...}, ...}`; a clear error if absent."""
        if not path.exists():
            raise FileNotFoundError(
                f"stage keys file {path} does not exist; run `sharinghub keys init` or set "
                "SHARINGHUB_KEYS_FILE"
            )
        data = json.loads(path.read_text())
        keys = {}
        for stage in STAMPED_STAGES:
            entry = data.get(stage.value)
            if not entry:
                raise ValueError(f"stage keys file {path} has no key for stage {stage.value}")
            keys[stage] = (str(entry["key_id"]), bytes.fromhex(entry["key_hex"]))
        subject = data.get("subject_hash")
        if not subject:
            raise ValueError(f"stage keys file {path} has no subject_hash key")
        return cls(keys, bytes.fromhex(subject["key_hex"]))

    @staticmethod
    def generate(path: Path) -> None:
        """Write fresh random keys (owner-readable only) unless the file already exists."""
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            s.value: {
                "key_id": f"{s.value}-{secrets.token_hex(4)}",
                "key_hex": secrets.token_hex(32),
            }
            for s in STAMPED_STAGES
        }
        data["subject_hash"] = {
            "key_id": f"subject-{secrets.token_hex(4)}",
            "key_hex": secrets.token_hex(32),
        }
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o600)


def stamp_doc(doc: dict[str, Any], stage: Stage, keys: StageKeys, version: str) -> dict[str, Any]:
    """A copy of the envelope document with `stage`'s stamp appended (its section must be set)."""
    key_id, key = keys.keys[stage]
    stamps = doc.get("stamps") or []
    anchor = stamps[-1]["mac"] if stamps else request_digest(doc["request"])
    digest = section_digest(anchor, doc[_SECTION[stage]])
    new = {
        "stage": stage.value,
        "service_version": version,
        "key_id": key_id,
        "digest": digest,
        "mac": _mac(key, digest),
    }
    return {**doc, "stamps": [*stamps, new]}


def verify_doc(doc: dict[str, Any], keys: StageKeys, expected: tuple[Stage, ...]) -> str | None:
    """None if the stamps are exactly `expected`, in order, each matching the content; else why
    (no value is ever quoted)."""
    stamps = doc.get("stamps")
    if not isinstance(stamps, list) or not all(
        isinstance(st, dict)
        and st.keys() == set(_STAMP_KEYS)
        and all(isinstance(st[k], str) for k in _STAMP_KEYS)
        for st in stamps
    ):
        return "stamps are not a list of well-formed stamps"
    stages = [st["stage"] for st in stamps]
    wanted = [s.value for s in expected]
    if stages != wanted:
        shown = [s if s in wanted else "?" for s in stages]
        return f"stamp chain is {shown}, expected {wanted}"
    anchor = request_digest(doc.get("request"))
    for st, stage in zip(stamps, expected, strict=True):
        key_id, key = keys.keys[stage]
        if st["key_id"] != key_id:
            return f"{stage.value} stamp uses unknown key id"
        digest = section_digest(anchor, doc.get(_SECTION[stage]))
        if not hmac.compare_digest(digest, st["digest"]):
            return f"{stage.value} stamp does not match the envelope content"
        if not hmac.compare_digest(_mac(key, digest), st["mac"]):
            return f"{stage.value} stamp MAC is invalid"
        anchor = st["mac"]
    return None


def stamp(envelope: Envelope, stage: Stage, keys: StageKeys, service_version: str) -> Envelope:
    """Return the envelope with `stage`'s stamp appended (the stage's result must be set)."""
    doc = stamp_doc(envelope.model_dump(mode="json"), stage, keys, service_version)
    return Envelope.model_validate(doc)


def verify_chain(envelope: Envelope, keys: StageKeys, expected: tuple[Stage, ...]) -> str | None:
    """`verify_doc` for an `Envelope` model."""
    return verify_doc(envelope.model_dump(mode="json"), keys, expected)
