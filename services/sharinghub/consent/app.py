"""Consent service: requests → consent assessment → `consent-checked`; directives → registry."""

from __future__ import annotations

from sharinghub.consent.cache import DirectiveCache
from sharinghub.consent.domain import assess_consent
from sharinghub.consent.materializer import DirectiveMaterializer
from sharinghub.consent.retraction_service import RetractionSweeper, ack_processor
from sharinghub.consent.retractions import RetractionStore
from sharinghub.consent.store import ConsentRegistry
from sharinghub.contracts import URGENT_PURPOSES, SharingRequest, Stage, topics
from sharinghub.runtime import envelope_doc
from sharinghub.runtime.app import SERVICE_VERSION, StageService
from sharinghub.runtime.codec import InvalidMessage, decode
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item, rejection, utcnow
from sharinghub.runtime.stamps import StageKeys, stamp_doc

CATCH_UP_TIMEOUT_S = 10.0


def create_app(settings: Settings, bootstrap_servers: str) -> StageService:
    """Wire the consent stage: registry on the configured database, directive reader, stage."""
    engine = create_engine_for(settings.database_url)
    registry = ConsentRegistry(engine)
    retractions = RetractionStore(engine)
    cache = DirectiveCache(registry.current_for_subjects, settings.consent_cache_subjects)
    keys = StageKeys.load(settings.resolved_keys_file())
    service: StageService
    materializer: DirectiveMaterializer | None = None

    async def on_requests(items: list[Item]) -> Batch:
        assert materializer is not None
        now = utcnow()
        out = []
        good: list[tuple[Item, SharingRequest]] = []
        for item in items:
            try:
                request = decode(SharingRequest, item.value, max_bytes=settings.max_message_bytes)
            except InvalidMessage as exc:
                out.extend(rejection(item, Stage.CONSENT, exc, now=now))
                continue
            item.span.set_attribute("sharinghub.request_id", request.request_id)
            item.span.set_attribute("sharinghub.purpose", request.purpose.value)
            item.span.set_attribute("sharinghub.jurisdiction", request.jurisdiction.value)
            good.append((item, request))
        if good:
            if not await materializer.wait_caught_up(CATCH_UP_TIMEOUT_S):
                raise TimeoutError("consent directives not caught up; batch will be retried")
            directives = await cache.get({r.subject_id for _, r in good})
            for item, request in good:
                assessment = assess_consent(
                    request, directives.get(request.subject_id, []), assessed_at=now
                )
                item.span.set_attribute(
                    "sharinghub.consents_considered", len(assessment.directives_considered)
                )
                doc = stamp_doc(
                    envelope_doc.new(request, now, assessment), Stage.CONSENT, keys, SERVICE_VERSION
                )
                out.append(
                    item.output(
                        topics.lane(topics.CONSENT_CHECKED, request.purpose in URGENT_PURPOSES),
                        envelope_doc.serialise(doc),
                        request.subject_id,
                    )
                )
        return Batch(out)

    service = StageService(
        name="sharinghub-consent",
        stage=Stage.CONSENT,
        settings=settings,
        bootstrap_servers=bootstrap_servers,
        subscriptions=[
            ([topics.REQUESTS], on_requests),
            ([topics.REQUESTS_URGENT], on_requests),
            ([topics.RETRACTION_ACKS], ack_processor(retractions, settings.max_message_bytes)),
        ],
        group_id="sharinghub-consent",
    )

    async def start_materializer() -> None:
        nonlocal materializer
        materializer = DirectiveMaterializer(
            bootstrap_servers,
            registry,
            service.publish_one,
            max_bytes=settings.max_message_bytes,
            fetch_max_wait_ms=settings.directive_fetch_max_wait_ms,
            on_change=cache.invalidate,
        )
        await materializer.start()

    sweeper = RetractionSweeper(retractions, service.publish_all)

    async def stop_materializer() -> None:
        await sweeper.stop()
        if materializer is not None:
            await materializer.stop()
        engine.dispose()

    service.on_startup(start_materializer)
    if service.runs_background_work:
        service.on_startup(sweeper.start)
    service.on_shutdown(stop_materializer)
    return service
