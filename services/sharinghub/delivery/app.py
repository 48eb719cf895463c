"""Delivery gate: verify every stamp, re-check consent, audit, deliver exactly once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from functools import partial

from sharinghub.consent.domain import withdrawn_categories
from sharinghub.consent.retractions import record_deliveries_on
from sharinghub.consent.store import ConsentRegistry
from sharinghub.contracts import (
    DataCategory,
    Envelope,
    Outcome,
    PolicyDecision,
    RedactionResult,
    SharingRequest,
    Stage,
    topics,
)
from sharinghub.delivery.audit_build import audit_record_for, outcome_event_for
from sharinghub.delivery.gate import delivery_messages, payload_problem, retrospective_case
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.delivery.recorder import MARKS_FLUSH_S, DecisionRecorder, Effect
from sharinghub.policy.reviews import CaseToOpen, open_cases_on
from sharinghub.runtime import envelope_doc
from sharinghub.runtime.app import StageService
from sharinghub.runtime.codec import InvalidMessage, encode
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item, Output, rejection, security_refusal, utcnow
from sharinghub.runtime.stamps import StageKeys, verify_doc

log = logging.getLogger(__name__)
Support = envelope_doc.ConsentSupportView
FULL_CHAIN = (Stage.CONSENT, Stage.POLICY, Stage.REDACTION)


def create_app(settings: Settings, bootstrap_servers: str) -> StageService:
    """Wire the gate: keys, consent registry (re-check), audit ledger and the writes that join
    its transaction (consent deliveries, retrospective review cases)."""
    engine = create_engine_for(settings.database_url)
    registry = ConsentRegistry(engine)
    recorder = DecisionRecorder(engine, AuditLedger(engine))
    keys = StageKeys.load(settings.resolved_keys_file())
    due = timedelta(hours=settings.review_due_hours)
    max_bytes = settings.max_message_bytes * 4

    async def on_redacted(items: list[Item]) -> Batch:
        now = utcnow()
        out: list[Output] = []
        ready: list[tuple[Item, envelope_doc.Doc, Envelope, Support | None]] = []
        for item in items:
            try:
                doc = envelope_doc.parse(item.value, max_bytes=max_bytes)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.DELIVERY, exc, now=now))
                continue
            request_id = envelope_doc.request_id_of(doc)
            problem = verify_doc(doc, keys, FULL_CHAIN)
            if problem:
                out.extend(security_refusal(item, Stage.DELIVERY, problem, request_id))
                continue
            try:
                env, support = verified_envelope(doc)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.DELIVERY, exc, now=now))
                continue
            problem = payload_problem(env)
            if problem:
                out.extend(security_refusal(item, Stage.DELIVERY, problem, request_id))
                continue
            item.span.set_attribute("sharinghub.request_id", env.request_id)
            item.received_at = env.received_at
            ready.append((item, doc, env, support))
        needs_recheck = {
            e.request.subject_id for _, _, e, _ in ready if e.policy and e.policy.consent_based
        }
        current = (
            await asyncio.to_thread(registry.current_for_subjects, needs_recheck)
            if needs_recheck
            else {}
        )
        effects: list[Effect] = []
        cases: list[CaseToOpen] = []
        consent_deliveries: list[tuple[str, str, str, datetime]] = []
        for item, doc, env, support in ready:
            decision = env.policy
            assert decision is not None
            seq = 2 if decision.decided_by else 1
            withdrawn: list[DataCategory] = []
            if decision.consent_based:
                assert support is not None  # loaded for consent-based decisions
                # only what rested on consent and had a consent's support when decided
                consent_cats = [c for c in decision.consent_categories if c in support.supported]
                withdrawn = withdrawn_categories(
                    env.request, consent_cats, current.get(env.request.subject_id, []), now=now
                )
            if withdrawn:
                item.span.set_attribute("sharinghub.outcome", Outcome.DENIED.value)
                reason = "Consent relied on was withdrawn before delivery; nothing was delivered."
                event = outcome_event_for(
                    env,
                    stage=Stage.DELIVERY,
                    outcome=Outcome.DENIED,
                    reason_code="consent_withdrawn",
                    reason=reason,
                    now=now,
                )
                record = audit_record_for(
                    env,
                    stage=Stage.DELIVERY,
                    outcome=Outcome.DENIED,
                    final=True,
                    reason_code="consent_withdrawn",
                    decision_seq=seq,
                    subject_key=keys.subject_hash_key,
                    now=now,
                    trace_id=item.trace_id,
                )
                effects.append(
                    Effect(record, [item.output(topics.OUTCOMES, encode(event), env.request_id)])
                )
                continue
            item.span.set_attribute("sharinghub.outcome", Outcome.DELIVERED.value)
            record = audit_record_for(
                env,
                stage=Stage.DELIVERY,
                outcome=Outcome.DELIVERED,
                final=True,
                reason_code=decision.reason_code,
                decision_seq=seq,
                subject_key=keys.subject_hash_key,
                now=now,
                trace_id=item.trace_id,
            )
            case = retrospective_case(env, now, due)
            messages = delivery_messages(env, now, case)
            outputs = [item.output(topic, value, key) for topic, value, key in messages]
            if case is not None:  # the case keeps the whole envelope as verified
                cases.append((case, envelope_doc.serialise(doc), item.trace_headers()))
            effects.append(Effect(record, outputs))
            consent_deliveries += [
                (ref.consent_id, env.request_id, env.request.recipient.agency_id, now)
                for ref in decision.consents_used
            ]
        # On file before anything is published (one transaction with the audit records), so
        # a later revocation finds every recipient and every case is open.
        writes = [partial(record_deliveries_on, rows=consent_deliveries)]
        if cases:
            writes.append(partial(open_cases_on, cases=cases))
        prepared = (
            await asyncio.to_thread(recorder.prepare, effects, writes=writes) if effects else None
        )
        if prepared and prepared.replays:
            log.info("replayed envelopes ignored", extra={"count": prepared.replays})

        if prepared is None:
            return Batch(out)
        dispatched = prepared.keys

        async def mark() -> None:
            recorder.mark_dispatched(dispatched)

        release = partial(recorder.release, dispatched)
        return Batch([*out, *prepared.outputs], after_publish=mark, on_abandon=release)

    service = StageService(
        name="sharinghub-delivery",
        stage=Stage.DELIVERY,
        settings=settings,
        bootstrap_servers=bootstrap_servers,
        subscriptions=[
            ([topics.REDACTED], on_redacted),
            ([topics.REDACTED_URGENT], on_redacted),
        ],
        group_id="sharinghub-delivery",
    )
    service.on_drained(recorder.flush_in_thread, every_s=MARKS_FLUSH_S)
    return service


def verified_envelope(doc: envelope_doc.Doc) -> tuple[Envelope, Support | None]:
    """The sections the gate uses, validated (their stamps were verified first), and what the
    consent re-check needs of the consent assessment where the delivery rests on consent."""
    policy = envelope_doc.section(doc, "policy", PolicyDecision)
    envelope = Envelope.model_construct(
        request=envelope_doc.section(doc, "request", SharingRequest),
        received_at=envelope_doc.received_at(doc),
        consent=None,
        policy=policy,
        redaction=envelope_doc.section(doc, "redaction", RedactionResult),
        stamps=[],
    )
    support = (
        envelope_doc.section(doc, "consent", envelope_doc.ConsentSupportView)
        if policy.consent_based
        else None
    )
    return envelope, support
