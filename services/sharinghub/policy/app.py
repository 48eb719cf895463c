"""Policy service: consent-checked envelopes → decisions; review decisions → resumed pipeline."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial

from sharinghub.contracts import (
    URGENT_PURPOSES,
    Envelope,
    Outcome,
    ReviewCase,
    ReviewDecision,
    SharingRequest,
    Stage,
    topics,
)
from sharinghub.delivery.audit_build import audit_record_for, outcome_event_for
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.delivery.recorder import MARKS_FLUSH_S, DecisionRecorder, Effect
from sharinghub.policy import break_glass
from sharinghub.policy.engine import PolicyEngine
from sharinghub.policy.escalation import EscalationSweeper
from sharinghub.policy.reviews import CaseToOpen, FoundCase, ReviewStore, open_cases_on
from sharinghub.runtime import envelope_doc
from sharinghub.runtime.app import SERVICE_VERSION, StageService
from sharinghub.runtime.codec import InvalidMessage, decode, encode
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.metrics import review_queue_sampler
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item, Output, rejection, security_refusal, utcnow
from sharinghub.runtime.stamps import StageKeys, stamp, stamp_doc, verify_doc

log = logging.getLogger(__name__)


def create_app(settings: Settings, bootstrap_servers: str) -> StageService:
    """Wire the policy stage: Cedar packs parsed once, review store and audit ledger."""
    engine = create_engine_for(settings.database_url)
    policy = PolicyEngine.load()
    reviews = ReviewStore(engine)
    authorisations = break_glass.BreakGlassAuthorisations.load(settings.break_glass_file)
    recorder = DecisionRecorder(engine, AuditLedger(engine))
    keys = StageKeys.load(settings.resolved_keys_file())
    due = timedelta(hours=settings.review_due_hours)
    max_bytes = settings.max_message_bytes * 4

    def effect(
        item: Item,
        env: Envelope,
        outcome: Outcome,
        seq: int,
        extra: list[Output] | None = None,
        case_id: str | None = None,
    ) -> Effect:
        decision = env.policy
        assert decision is not None
        now = utcnow()
        event = outcome_event_for(
            env,
            stage=Stage.POLICY,
            outcome=outcome,
            reason_code=decision.reason_code,
            reason=decision.explanation,
            now=now,
            review_case_id=case_id,
        )
        record = audit_record_for(
            env,
            stage=Stage.POLICY,
            outcome=outcome,
            final=outcome is not Outcome.PENDING_REVIEW,
            reason_code=decision.reason_code,
            decision_seq=seq,
            subject_key=keys.subject_hash_key,
            now=now,
            trace_id=item.trace_id,
        )
        outputs = [*(extra or []), item.output(topics.OUTCOMES, encode(event), env.request_id)]
        return Effect(record=record, outputs=outputs)

    async def on_consent_checked(items: list[Item]) -> Batch:
        now = utcnow()
        out: list[Output] = []
        ready: list[tuple[Item, envelope_doc.Doc, Envelope, envelope_doc.ConsentSupportView]] = []
        for item in items:
            try:
                doc = envelope_doc.parse(item.value, max_bytes=max_bytes)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.POLICY, exc, now=now))
                continue
            problem = verify_doc(doc, keys, (Stage.CONSENT,))
            if problem:
                request_id = envelope_doc.request_id_of(doc)
                out.extend(security_refusal(item, Stage.POLICY, problem, request_id))
                continue
            try:
                env = Envelope.model_construct(
                    request=envelope_doc.section(doc, "request", SharingRequest),
                    received_at=envelope_doc.received_at(doc),
                    consent=None,  # what the decision needs of it is `support`
                    policy=None,
                    redaction=None,
                    stamps=[],
                )
                support = envelope_doc.section(doc, "consent", envelope_doc.ConsentSupportView)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.POLICY, exc, now=now))
                continue
            item.span.set_attribute("sharinghub.request_id", env.request_id)
            item.received_at = env.received_at
            ready.append((item, doc, env, support))
        refused = [r for r in ready if not authorisations.allows(r[2].request)]
        ready = [r for r in ready if authorisations.allows(r[2].request)]
        decisions = await asyncio.to_thread(
            policy.decide_many, [(e.request, support) for _, _, e, support in ready], now=now
        )
        ready += refused
        decisions += [
            break_glass.refusal(e.request, policy.pack(e.request.jurisdiction), now)
            for _, _, e, _ in refused
        ]
        effects: list[Effect] = []
        cases: list[CaseToOpen] = []
        for (item, doc, env, _), decision in zip(ready, decisions, strict=True):
            decided = env.model_copy(update={"policy": decision})
            item.span.set_attribute("sharinghub.outcome", decision.outcome.value)
            item.span.set_attribute("sharinghub.pack_version", decision.pack_version)
            item.span.set_attribute("sharinghub.reason_code", decision.reason_code)
            if decision.outcome is Outcome.DELIVERED:
                stamped = stamp_doc(
                    envelope_doc.with_section(doc, "policy", decision),
                    Stage.POLICY,
                    keys,
                    SERVICE_VERSION,
                )
                out.append(
                    item.output(
                        topics.lane(topics.POLICY_DECIDED, urgent(env)),
                        envelope_doc.serialise(stamped),
                        env.request.subject_id,
                    )
                )
            elif decision.outcome is Outcome.PENDING_REVIEW:
                case = review_case(decided, now, due)
                # The case keeps the envelope as received (consent stamp included), so an
                # approval resumes it with a policy stamp chained to that one.
                kept = envelope_doc.serialise(envelope_doc.with_section(doc, "policy", decision))
                cases.append((case, kept, item.trace_headers()))
                review_msg = item.output(topics.REVIEW, encode(case), env.request_id)
                effects.append(
                    effect(item, decided, Outcome.PENDING_REVIEW, 1, [review_msg], case.case_id)
                )
            else:
                effects.append(effect(item, decided, decision.outcome, 1))
        return await finish(out, effects, cases)

    async def finish(
        out: list[Output],
        effects: list[Effect],
        cases: list[CaseToOpen],
        decided: list[tuple[ReviewDecision, str]] | None = None,
    ) -> Batch:
        # Cases open in the same transaction as the audit records of their requests.
        writes = [partial(open_cases_on, cases=cases)] if cases else []
        prepared = (
            await asyncio.to_thread(recorder.prepare, effects, writes=writes) if effects else None
        )

        async def after_publish() -> None:
            # Only once the broker has the messages: a failed publish leaves cases open.
            if prepared is not None:
                recorder.mark_dispatched(prepared.keys)
            for review_decision, status in decided or []:
                await asyncio.to_thread(reviews.record_decision, review_decision, status)

        outputs = [*out, *(prepared.outputs if prepared else [])]
        release = partial(recorder.release, prepared.keys) if prepared is not None else None
        return Batch(outputs, after_publish=after_publish, on_abandon=release)

    async def on_review_decisions(items: list[Item]) -> Batch:
        now = utcnow()
        out: list[Output] = []
        effects: list[Effect] = []
        decided: list[tuple[ReviewDecision, str]] = []
        for item in items:
            try:
                decision = decode(ReviewDecision, item.value, max_bytes=settings.max_message_bytes)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.REVIEW, exc, now=now, outcome=False))
                continue
            found = await asyncio.to_thread(reviews.get, decision.case_id)
            if found is not None and found.decision == decision:
                continue  # this very decision, applied already (a replayed batch)
            refusal = review_refusal(decision, found)
            if refusal:
                out.extend(
                    rejection(item, Stage.REVIEW, InvalidMessage(*refusal), now=now, outcome=False)
                )
                continue
            assert found is not None
            env, headers = found.envelope, found.trace_headers
            item.received_at = env.received_at
            assert env.policy is not None and env.consent is not None
            if decision.decision == "request_facts":
                decided.append((decision, "awaiting_facts"))
                continue
            if decision.decision == "deny":
                denied = env.policy.model_copy(
                    update={
                        "outcome": Outcome.DENIED,
                        "reason_code": "review.denied",
                        "explanation": "A reviewer denied the disclosure.",
                        "decided_by": decision.reviewer_id,
                        "decided_at": now,
                    }
                )
                env2 = env.model_copy(update={"policy": denied})
                effects.append(effect(item, env2, Outcome.DENIED, 2))
                decided.append((decision, "decided"))
                continue
            try:
                approved = policy.decide_after_review(
                    env.request,
                    env.consent,
                    env.policy,
                    approved_categories=decision.categories,
                    reviewer_id=decision.reviewer_id,
                    now=now,
                )
            except ValueError as exc:
                out.extend(
                    rejection(
                        item,
                        Stage.REVIEW,
                        InvalidMessage("review_out_of_bounds", str(exc), decision.request_id),
                        now=now,
                        outcome=False,
                    )
                )
                continue
            stamped = stamp(
                env.model_copy(update={"policy": approved}), Stage.POLICY, keys, SERVICE_VERSION
            )
            # Resume the request's own trace: the case kept the context of its policy span.
            out.append(
                Output(
                    topics.lane(topics.POLICY_DECIDED, urgent(env)),
                    encode(stamped),
                    env.request.subject_id.encode(),
                    headers or item.trace_headers(),
                )
            )
            decided.append((decision, "decided"))
        return await finish(out, effects, [], decided)

    service = StageService(
        name="sharinghub-policy",
        stage=Stage.POLICY,
        settings=settings,
        bootstrap_servers=bootstrap_servers,
        subscriptions=[
            ([topics.CONSENT_CHECKED], on_consent_checked),
            ([topics.CONSENT_CHECKED_URGENT], on_consent_checked),
            ([topics.REVIEW_DECISIONS], on_review_decisions),
        ],
        group_id="sharinghub-policy",
    )
    service.sample("review-queue", review_queue_sampler(engine))
    service.on_drained(recorder.flush_in_thread, every_s=MARKS_FLUSH_S)
    escalation = EscalationSweeper(
        reviews, service.publish_all, interval_s=settings.review_escalation_interval_s
    )
    if service.runs_background_work:
        service.on_startup(escalation.start)
        service.on_shutdown(escalation.stop)
    return service


def urgent(env: Envelope) -> bool:
    """Urgent purposes travel the urgent lane."""
    return env.request.purpose in URGENT_PURPOSES


def review_case(env: Envelope, now, due: timedelta) -> ReviewCase:  # type: ignore[no-untyped-def]
    """The case a reviewer sees: what the law leaves to judgment, never the data itself."""
    decision = env.policy
    assert decision is not None and decision.review is not None
    request = env.request
    return ReviewCase(
        case_id=f"rc-{request.request_id}",
        request_id=request.request_id,
        kind="pending_review",
        requester_agency_id=request.requester.agency_id,
        recipient_agency_id=request.recipient.agency_id,
        purpose=request.purpose,
        jurisdiction=request.jurisdiction,
        requirement=decision.review,
        excluded_reviewer=None,
        opened_at=now,
        due_at=now + due,
    )


def review_refusal(
    decision: ReviewDecision, found: FoundCase | None
) -> tuple[str, str, str] | None:
    """Why a review decision cannot be applied (unknown case, closed, mismatched), or None."""
    if found is None:
        return ("unknown_case", "no review case with that id", decision.request_id)
    case, status = found.case, found.status
    if case.request_id != decision.request_id:
        return ("case_mismatch", "the case belongs to another request", decision.request_id)
    if status == "decided":
        return ("case_closed", "the case was already decided", decision.request_id)
    if case.kind != "pending_review":
        return (
            "wrong_case_kind",
            "retrospective reviews are closed in governance",
            decision.request_id,
        )
    return None
