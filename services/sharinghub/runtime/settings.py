"""Settings for every sharinghub process, from the environment (pydantic-settings).

Every variable is listed in the README's configuration table; `sharinghub config` prints them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by the services, the CLI and the tests."""

    model_config = SettingsConfigDict(env_prefix="SHARINGHUB_", extra="ignore")

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "SHARINGHUB_KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="External Kafka (host:port,...); unset: testcontainers if asked, else "
        "the embedded broker.",
    )
    broker: Literal["auto", "external", "testcontainers", "embedded"] = Field(
        default="auto",
        description="Which broker `up` uses: auto = external if KAFKA_BOOTSTRAP_SERVERS is set, "
        "else embedded; testcontainers needs a Docker engine.",
    )
    database_url: str = Field(
        default="sqlite:///.sharinghub/sharinghub.db",
        validation_alias=AliasChoices("DATABASE_URL", "SHARINGHUB_DATABASE_URL"),
        description="SQLAlchemy URL of the consent registry, review cases and audit ledger.",
    )
    data_dir: Path = Field(default=Path(".sharinghub"), description="Local state: keys, traces.")
    keys_file: Path | None = Field(
        default=None,
        description="JSON file of stage MAC keys; default <data_dir>/keys.json (created by `up`).",
    )
    partitions: int = Field(default=3, ge=1, le=1000, description="Partitions per hub topic.")
    batch_max_records: int = Field(default=200, ge=1, le=10_000, description="Max batch size.")
    consent_cache_subjects: int = Field(
        default=5_000,
        ge=0,
        description="Clients whose directives the consent stage keeps in memory (LRU).",
    )
    bulk_chunk_records: int = Field(
        default=100,
        ge=1,
        description="In a process serving both lanes, bulk batches are processed and published "
        "in chunks of this size, so the urgent lane waits at most one chunk.",
    )
    pipeline_depth: int = Field(
        default=8,
        ge=1,
        le=16,
        description="Batches a subscription has in flight: the next is processed while the "
        "earlier ones are acknowledged and committed (1: one batch at a time).",
    )
    batch_timeout_ms: int = Field(
        default=200,
        ge=1,
        description="How long one poll of a stage's subscriber waits for a record; it returns "
        "as soon as any is fetched, so this only sets how often an idle subscriber loops.",
    )
    # Every idle consumer polls the broker once per fetch wait, and the embedded broker answers
    # a waiting fetch only part of the way through it (bench/fetch_wait.py: at 50 ms a message
    # arrives in 10 ms median, at 10 ms in 4 ms). The whole hub idled at ~1 core with 10 ms on
    # every lane and at ~0.6 with these defaults; latency at 20–100 requests/s did not change.
    fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        description="Broker fetch wait of the bulk request lanes (idle CPU against the time "
        "a request takes to be noticed after a quiet spell).",
    )
    urgent_fetch_max_wait_ms: int = Field(
        default=25, ge=1, description="Broker fetch wait of the urgent request lanes."
    )
    directive_fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        description="Fetch wait of the consent directive reader (how long a new directive can "
        "take to reach the consent stage when the topic was idle).",
    )
    control_fetch_max_wait_ms: int = Field(
        default=250,
        ge=1,
        description="Fetch wait for human-paced topics (review decisions, retraction acks).",
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Consumer session timeout."
    )
    max_message_bytes: int = Field(
        default=1_000_000, ge=1024, description="Requests larger than this are rejected_invalid."
    )
    producer_max_batch_bytes: int = Field(default=1_048_576, ge=16_384)
    compression: Literal["none", "zstd", "lz4", "gzip", "snappy"] = Field(
        default="zstd",
        description="Compression of the record batches the services produce. Envelopes are "
        "JSON that zstd shrinks ~5x; measured on the embedded broker, that cut its CPU per "
        "message ~5x for ~10 µs per 4 KB message in the client (aiokafka's lz4 runs at "
        "level 9, ~3x slower than its zstd); `none` to switch it off.",
    )
    review_due_hours: float = Field(default=72.0, gt=0, description="Review escalation deadline.")
    review_escalation_interval_s: float = Field(
        default=30.0, gt=0, description="How often overdue review cases are looked for."
    )
    tracing: bool = Field(default=True, description="Record OpenTelemetry spans.")
    trace_file: Path | None = Field(
        default=None,
        description="Local span export (JSON lines) when no OTLP endpoint; default "
        "<data_dir>/traces.jsonl.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "SHARINGHUB_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector endpoint; unset → local JSON-lines exporter.",
    )
    break_glass_file: Path | None = Field(
        default=None,
        description="JSON {agency_id: [practitioner ids]} allowed to declare break-glass "
        "('*' for any agency); unset: nobody may.",
    )
    log_level: str = Field(default="INFO", description="Python log level of the services.")
    lane: Literal["all", "bulk", "urgent"] = Field(
        default="all",
        description="Which request lane a service process serves: `all`, `bulk` (with reviews, "
        "retraction acks and background sweeps) or `urgent` (the urgent topics only).",
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description="Event loop of the services (and of the bench's relay and harness): "
        "`auto` = uvloop where installed, else asyncio's; `uvloop` fails if it is missing.",
    )
    nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description="Lower this process's CPU priority (`up --urgent-processes` gives bulk "
        "processes 4, so urgent-lane processes win the CPU when both have work).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve Prometheus /metrics, and the /ready and /healthz probes, on this "
        "port; unset → no endpoint.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the /metrics endpoint binds (0.0.0.0 inside a container).",
    )

    def resolved_keys_file(self) -> Path:
        """Where the stage MAC keys live."""
        return self.keys_file or self.data_dir / "keys.json"

    def resolved_trace_file(self) -> Path:
        """Where the local span exporter writes."""
        return self.trace_file or self.data_dir / "traces.jsonl"


def env_names(field: str) -> list[str]:
    """The environment variables that set `field`, in the order they are looked up."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"SHARINGHUB_{field.upper()}"]


def describe_invalid(exc: ValidationError) -> list[str]:
    """One line per invalid setting: the variable and what is wrong. The value itself is not
    repeated (a database URL can hold a password)."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        lines.append(f"{' or '.join(env_names(field))}: {error['msg']}")
    return lines
