"""Generate the committed JSON Schemas and AsyncAPI document from the contract models.

`python -m sharinghub.contracts.schemas` rewrites `contracts/schemas/` and
`contracts/asyncapi.json`; a test fails when the committed files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from sharinghub.contracts import topics
from sharinghub.contracts.consent import ConsentDirectiveEvent
from sharinghub.contracts.envelope import Envelope
from sharinghub.contracts.events import (
    ClientNotificationTask,
    DeadLetter,
    InboxMessage,
    OutcomeEvent,
    RetractionAck,
    RetractionNotice,
    ReviewCase,
    ReviewDecision,
    ReviewEscalated,
)
from sharinghub.contracts.request import SharingRequest

CONTRACTS_DIR = Path(__file__).resolve().parents[2]

# message name → (schema source, channel address, description, key)
MESSAGES: dict[str, tuple[type[BaseModel] | Any, str, str, str]] = {
    "SharingRequest": (
        SharingRequest,
        topics.REQUESTS,
        "An agency's request to share part of a client's record.",
        "subject id",
    ),
    "ConsentDirectiveEvent": (
        ConsentDirectiveEvent,
        topics.CONSENT_DIRECTIVES,
        "Consent granted, amended or revoked (compacted).",
        "consent id",
    ),
    "ConsentCheckedEnvelope": (
        Envelope,
        topics.CONSENT_CHECKED,
        "Envelope with the consent assessment and stamp.",
        "subject id",
    ),
    "PolicyDecidedEnvelope": (
        Envelope,
        topics.POLICY_DECIDED,
        "Envelope approved by policy, with its stamp.",
        "subject id",
    ),
    "RedactedEnvelope": (
        Envelope,
        topics.REDACTED,
        "Envelope with the reduced payload, manifest and stamp.",
        "subject id",
    ),
    "ReviewCase": (ReviewCase, topics.REVIEW, "A case for a human reviewer.", "request id"),
    "ReviewDecision": (
        ReviewDecision,
        topics.REVIEW_DECISIONS,
        "A reviewer's decision.",
        "request id",
    ),
    "OutcomeEvent": (OutcomeEvent, topics.OUTCOMES, "The outcome of a request.", "request id"),
    "DeadLetter": (DeadLetter, topics.DLQ, "A message a stage could not process.", "request id"),
    "ClientNotificationTask": (
        ClientNotificationTask,
        topics.NOTIFICATIONS,
        "Tell the client what was shared.",
        "request id",
    ),
    "InboxMessage": (
        InboxMessage,
        "agency.{agency_id}.inbox.v1",
        "What a recipient agency receives.",
        "request id",
    ),
    "RetractionNotice": (
        RetractionNotice,
        "agency.{agency_id}.inbox.v1",
        "Consent behind earlier deliveries was withdrawn (also on the inbox).",
        "consent id",
    ),
    "ReviewEscalated": (
        ReviewEscalated,
        topics.REVIEW_ESCALATIONS,
        "A review case passed its due time undecided.",
        "request id",
    ),
    "RetractionAck": (
        RetractionAck,
        topics.RETRACTION_ACKS,
        "A recipient acknowledges a retraction notice.",
        "retraction id",
    ),
}


def json_schema(source: type[BaseModel] | Any) -> dict[str, Any]:
    if isinstance(source, type) and issubclass(source, BaseModel):
        return source.model_json_schema(mode="validation")
    return TypeAdapter(source).json_schema(mode="validation")


def build() -> dict[Path, str]:
    """Every generated file's path and content."""
    files: dict[Path, str] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for name, (source, _, _, _) in MESSAGES.items():
        schema = json_schema(source)
        schemas[name] = schema
        files[CONTRACTS_DIR / "schemas" / f"{name}.json"] = json.dumps(schema, indent=2) + "\n"
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, (_, address, description, key) in MESSAGES.items():
        channel = address.replace(".", "_").replace("{agency_id}", "agency")
        params = {"agency_id": {"description": "Receiving agency id"}} if "{" in address else {}
        entry = channels.setdefault(
            channel,
            {"address": address, "messages": {}, **({"parameters": params} if params else {})},
        )
        entry["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        operations[f"receive{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
            "summary": f"{description} Kafka key: {key}.",
        }
    doc = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "sharinghub",
            "version": "1",
            "description": "Event contracts of sharinghub: lawful, minimum-necessary sharing of "
            "client case data between partner agencies.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {
                name: {
                    "name": name,
                    "summary": MESSAGES[name][2],
                    "payload": {"$ref": f"schemas/{name}.json"},
                }
                for name in MESSAGES
            }
        },
    }
    files[CONTRACTS_DIR / "asyncapi.json"] = json.dumps(doc, indent=2) + "\n"
    return files


def main() -> int:
    for path, content in build().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
