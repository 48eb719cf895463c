"""Stage stamps: each stage MACs a digest of what it vouches for, chained to the previous stamp.

The first stamp's digest covers the immutable request and the stage's own result; every
later one covers its stage's result and the previous stamp's MAC (and so, transitively, the
request). The delivery gate recomputes the chain from the envelope content and refuses anything
injected into a stage topic, reordered, or changed after a stage vouched for it (invariant 1).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from sharinghub.contracts import Envelope, Stage, StageStamp

STAMPED_STAGES: tuple[Stage, ...] = (Stage.CONSENT, Stage.POLICY, Stage.REDACTION)


def canonical_digest(*parts: BaseModel | str | None) -> str:
    """SHA-256 hex over the JSON of the parts.

    pydantic serialises fields in declaration order and keeps dict order through a JSON round
    trip, so the bytes a stage hashed are the bytes the gate recomputes from the same envelope.
    """
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            h.update(b"\x00null")
        elif isinstance(part, str):
            h.update(b"\x00s" + part.encode())
        else:
            h.update(b"\x00m" + part.model_dump_json().encode())
    return h.hexdigest()


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


def _stage_content(envelope: Envelope, stage: Stage) -> BaseModel | None:
    return {
        Stage.CONSENT: envelope.consent,
        Stage.POLICY: envelope.policy,
        Stage.REDACTION: envelope.redaction,
    }[stage]


def _anchor(envelope: Envelope, previous: str | None) -> str:
    """What a stamp chains to: the request for the first stamp, else the previous MAC (which
    already covers the request), so later stages do not serialise the request again."""
    return previous if previous is not None else canonical_digest(envelope.request)


def stamp(envelope: Envelope, stage: Stage, keys: StageKeys, service_version: str) -> Envelope:
    """Return the envelope with `stage`'s stamp appended (the stage's result must be set)."""
    key_id, key = keys.keys[stage]
    previous = envelope.stamps[-1].mac if envelope.stamps else None
    digest = canonical_digest(_anchor(envelope, previous), _stage_content(envelope, stage))
    mac = hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()
    new = StageStamp(
        stage=stage, service_version=service_version, key_id=key_id, digest=digest, mac=mac
    )
    return envelope.model_copy(update={"stamps": [*envelope.stamps, new]})


def verify_chain(envelope: Envelope, keys: StageKeys, expected: tuple[Stage, ...]) -> str | None:
    """None if the stamps are exactly `expected`, in order, each matching the content; else why."""
    stages = tuple(s.stage for s in envelope.stamps)
    if stages != expected:
        return f"stamp chain is {[s.value for s in stages]}, expected {[s.value for s in expected]}"
    previous: str | None = None
    for st in envelope.stamps:
        key_id, key = keys.keys[st.stage]
        if st.key_id != key_id:
            return f"{st.stage.value} stamp uses unknown key id"
        digest = canonical_digest(_anchor(envelope, previous), _stage_content(envelope, st.stage))
        if not hmac.compare_digest(digest, st.digest):
            return f"{st.stage.value} stamp does not match the envelope content"
        mac = hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, st.mac):
            return f"{st.stage.value} stamp MAC is invalid"
        previous = st.mac
    return None
