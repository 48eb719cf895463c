"""Topic provisioning: create the hub's topics (and agency inboxes) if they are missing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

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
