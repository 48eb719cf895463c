"""`sharinghub run SERVICE`: one stage in this process (what `up` starts four of)."""

from __future__ import annotations

import importlib
import os
import sys

from sharinghub.runtime import event_loop
from sharinghub.runtime.schema import upgrade
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.telemetry import setup_logging, setup_tracing

APPS = {
    "consent": "sharinghub.consent.app",
    "policy": "sharinghub.policy.app",
    "redaction": "sharinghub.redaction.app",
    "delivery": "sharinghub.delivery.app",
}


def run_service(name: str, settings: Settings | None = None) -> int:
    settings = settings or Settings()
    event_loop.loop_name(settings.event_loop)  # uvloop asked for and missing: stops here
    setup_logging(settings.log_level)
    if not settings.kafka_bootstrap_servers:
        sys.stderr.write(
            "error: KAFKA_BOOTSTRAP_SERVERS is not set. A single service joins a running hub; "
            "use `sharinghub up` to start a broker and all services together.\n"
        )
        return 2
    if settings.nice:
        os.nice(settings.nice)  # only ever lowers priority: no privilege needed
    provider = setup_tracing(f"sharinghub-{name}", settings)
    upgrade(settings.database_url, lock_dir=settings.data_dir)
    module = importlib.import_module(APPS[name])
    service = module.create_app(settings, settings.kafka_bootstrap_servers)
    try:
        event_loop.run(service.app.run(), settings.event_loop)
    finally:
        if provider is not None:
            provider.shutdown()
    return 0
