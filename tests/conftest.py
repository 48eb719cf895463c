"""Shared fixtures: the examples, database URLs (SQLite and the local PostgreSQL), hubs."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO.parent / "shared" / "domain" / "examples.jsonl"
PACKAGED_EXAMPLES = REPO / "services" / "sharinghub" / "tools" / "demo_scenarios.jsonl"
PG_HOST, PG_PORT = "127.0.0.1", 5432
IN_CI = os.environ.get("CI", "").lower() == "true"

# CI explores the same examples every run (a red CI then means a change broke something);
# local runs keep exploring new ones, and any failure found is kept in .hypothesis/.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


def load_examples() -> list[dict[str, Any]]:
    path = EXAMPLES if EXAMPLES.exists() else PACKAGED_EXAMPLES
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def examples() -> list[dict[str, Any]]:
    """Every scenario of shared/domain/examples.jsonl (the packaged copy if shared/ is absent)."""
    return load_examples()


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Skips with a reason where no PostgreSQL is reachable — except in CI, where it must run.
    """
    if not postgres_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI but is not reachable")
        pytest.skip("no PostgreSQL reachable at 127.0.0.1:5432")
    import sqlalchemy as sa

    name = f"sharinghub_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same storage test on SQLite and on PostgreSQL (STYLE.md: one suite, two backends)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
