"""Redaction service: approved envelopes → minimum-necessary payload + manifest → `redacted`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sharinghub.contracts import URGENT_PURPOSES, Envelope, Outcome, Stage, topics
from sharinghub.redaction.pseudonyms import new_pseudonym
from sharinghub.redaction.rules import delivered_fields, redact
from sharinghub.runtime.app import SERVICE_VERSION, StageService
from sharinghub.runtime.codec import InvalidMessage, decode, encode
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item, Output, rejection, security_refusal, utcnow
from sharinghub.runtime.stamps import StageKeys, stamp, verify_chain

if TYPE_CHECKING:  # Presidio (and spaCy under it) take ~2 s to import: only when needed
    from sharinghub.redaction.free_text import FreeTextScrubber


def redact_all(  # type: ignore[no-untyped-def]
    envelopes: list[Envelope], now, scrubber: FreeTextScrubber | None = None
) -> list[Envelope]:
    """Pure work for a whole batch (run in a worker thread: regexes hold the GIL).

    ``scrubber`` runs the S4 free-text pass; by default the process-wide one.
    """
    if scrubber is None:
        from sharinghub.redaction.free_text import default_scrubber

        scrubber = default_scrubber()
    out = []
    for env in envelopes:
        decision = env.policy
        assert decision is not None
        withheld = [f for f, _ in delivered_fields(env.request, decision)[1]]
        # Always offer a fresh pseudonym: redaction may withhold identity even when policy
        # allowed it (e.g. de-identified consultation); `result.pseudonym` says if it was used.
        result = redact(
            env.request,
            decision,
            pseudonym=new_pseudonym(),
            now=now,
            free_text=scrubber.scrub_pass(env.request, withheld),
        )
        out.append(env.model_copy(update={"redaction": result}))
    return out


def create_app(settings: Settings, bootstrap_servers: str) -> StageService:
    """Wire the redaction stage (stateless: nothing but keys to load)."""
    from sharinghub.redaction.free_text import FreeTextScrubber

    keys = StageKeys.load(settings.resolved_keys_file())
    scrubber = FreeTextScrubber()  # once per process: builds Presidio and its patterns

    async def on_policy_decided(items: list[Item]) -> Batch:
        now = utcnow()
        out: list[Output] = []
        ready: list[tuple[Item, Envelope]] = []
        for item in items:
            try:
                env = decode(Envelope, item.value, max_bytes=settings.max_message_bytes * 4)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.REDACTION, exc, now=now))
                continue
            problem = verify_chain(env, keys, (Stage.CONSENT, Stage.POLICY))
            if not problem and (env.policy is None or env.policy.outcome is not Outcome.DELIVERED):
                problem = "policy did not approve this envelope"
            if problem:
                out.extend(security_refusal(item, Stage.REDACTION, problem, env.request_id))
                continue
            item.span.set_attribute("sharinghub.request_id", env.request_id)
            ready.append((item, env))
        redacted = await asyncio.to_thread(redact_all, [e for _, e in ready], now, scrubber)
        for (item, _), env in zip(ready, redacted, strict=True):
            assert env.redaction is not None
            item.span.set_attribute(
                "sharinghub.fields_delivered", len(env.redaction.payload.fields)
            )
            stamped = stamp(env, Stage.REDACTION, keys, SERVICE_VERSION)
            out.append(
                item.output(
                    topics.lane(topics.REDACTED, env.request.purpose in URGENT_PURPOSES),
                    encode(stamped),
                    env.request.subject_id,
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
