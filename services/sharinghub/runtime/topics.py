"""Topic provisioning: create the hub's topics (and agency inboxes) if they are missing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sharinghub.contracts import topics

log = logging.getLogger(__name__)

COMPACTED = {topics.CONSENT_DIRECTIVES: {"cleanup.policy": "compact"}}


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str] = topics.PIPELINE_TOPICS,
    *,
    partitions: int = 3,
    attempts: int = 20,
) -> None:
    """Create any of `names` that do not exist yet (idempotent, retried while the broker starts)."""
    wanted = list(dict.fromkeys(names))
    last_error: Exception | None = None
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in wanted if n not in existing]
            if missing:
                new = [
                    NewTopic(n, partitions, 1, topic_configs=COMPACTED.get(n, {})) for n in missing
                ]
                with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                    await admin.create_topics(new)
            return
        except TopicAlreadyExistsError:
            return
        except Exception as exc:  # broker still starting: retry, bounded
            last_error = exc
            await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
        finally:
            await admin.close()
    raise RuntimeError(f"could not provision topics after {attempts} attempts") from last_error


async def partitions_of(
    consumer: AIOKafkaConsumer, names: Sequence[str], *, wait_s: float = 5.0
) -> list[TopicPartition]:
    """Every partition of the topics `names`, waiting up to `wait_s` per topic for the
    metadata of one created moments ago (a topic the broker does not know yet has none)."""
    parts: list[TopicPartition] = []
    for name in names:
        found: set[int] | None = None
        for _ in range(max(1, int(wait_s / 0.05))):
            found = consumer.partitions_for_topic(name)
            if found:
                break
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.05)
        parts += [TopicPartition(name, p) for p in sorted(found or [])]
    return parts
