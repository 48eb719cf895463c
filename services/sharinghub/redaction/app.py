"""Redaction service: approved envelopes → minimum-necessary payload + manifest → `redacted`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sharinghub.contracts import (
    URGENT_PURPOSES,
    Outcome,
    PolicyDecision,
    RedactionResult,
    SharingRequest,
    Stage,
    topics,
)
from sharinghub.redaction.pseudonyms import new_pseudonym
from sharinghub.redaction.rules import delivered_fields, redact
from sharinghub.runtime import envelope_doc
from sharinghub.runtime.app import SERVICE_VERSION, StageService
from sharinghub.runtime.codec import InvalidMessage
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item, Output, rejection, security_refusal, utcnow
from sharinghub.runtime.stamps import StageKeys, stamp_doc, verify_doc

if TYPE_CHECKING:  # Presidio (and spaCy under it) take ~2 s to import: only when needed
    from sharinghub.redaction.free_text import FreeTextScrubber


def redact_all(  # type: ignore[no-untyped-def]
    approved: list[tuple[SharingRequest, PolicyDecision]],
    now,
    scrubber: FreeTextScrubber | None = None,
) -> list[RedactionResult]:
    """Pure work for a whole batch (run in a worker thread: regexes hold the GIL).

    ``scrubber`` runs the S4 free-text pass; by default the process-wide one.
    """
    if scrubber is None:
        from sharinghub.redaction.free_text import default_scrubber

        scrubber = default_scrubber()
    out = []
    for request, decision in approved:
        withheld = [f for f, _ in delivered_fields(request, decision)[1]]
        # Always offer a fresh pseudonym: redaction may withhold identity even when policy
        # allowed it (e.g. de-identified consultation); `result.pseudonym` says if it was used.
        out.append(
            redact(
                request,
                decision,
                pseudonym=new_pseudonym(),
                now=now,
                free_text=scrubber.scrub_pass(request, withheld),
            )
        )
    return out


def create_app(settings: Settings, bootstrap_servers: str) -> StageService:
    """Wire the redaction stage (stateless: nothing but keys to load)."""
    from sharinghub.redaction.free_text import FreeTextScrubber

    keys = StageKeys.load(settings.resolved_keys_file())
    scrubber = FreeTextScrubber()  # once per process: builds Presidio and its patterns
    max_bytes = settings.max_message_bytes * 4

    async def on_policy_decided(items: list[Item]) -> Batch:
        now = utcnow()
        out: list[Output] = []
        ready: list[tuple[Item, envelope_doc.Doc, SharingRequest, PolicyDecision]] = []
        for item in items:
            try:
                doc = envelope_doc.parse(item.value, max_bytes=max_bytes)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.REDACTION, exc, now=now))
                continue
            request_id = envelope_doc.request_id_of(doc)
            problem = verify_doc(doc, keys, (Stage.CONSENT, Stage.POLICY))
            if problem:
                out.extend(security_refusal(item, Stage.REDACTION, problem, request_id))
                continue
            try:
                request = envelope_doc.section(doc, "request", SharingRequest)
                decision = envelope_doc.section(doc, "policy", PolicyDecision)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.REDACTION, exc, now=now))
                continue
            if decision.outcome is not Outcome.DELIVERED:
                problem = "policy did not approve this envelope"
                out.extend(security_refusal(item, Stage.REDACTION, problem, request_id))
                continue
            item.span.set_attribute("sharinghub.request_id", request.request_id)
            ready.append((item, doc, request, decision))
        results = await asyncio.to_thread(
            redact_all, [(r, d) for _, _, r, d in ready], now, scrubber
        )
        for (item, doc, request, _), result in zip(ready, results, strict=True):
            item.span.set_attribute("sharinghub.fields_delivered", len(result.payload.fields))
            stamped = stamp_doc(
                envelope_doc.with_section(doc, "redaction", result),
                Stage.REDACTION,
                keys,
                SERVICE_VERSION,
            )
            out.append(
                item.output(
                    topics.lane(topics.REDACTED, request.purpose in URGENT_PURPOSES),
                    envelope_doc.serialise(stamped),
                    request.subject_id,
                )
            )
        return Batch(out)

    return StageService(
        name="sharinghub-redaction",
        stage=Stage.REDACTION,
        settings=settings,
        bootstrap_servers=bootstrap_servers,
        subscriptions=[
            ([topics.POLICY_DECIDED], on_policy_decided),
            ([topics.POLICY_DECIDED_URGENT], on_policy_decided),
        ],
        group_id="sharinghub-redaction",
    )
