"""SQLAlchemy 2 engine/session factory. SQLite file by default, PostgreSQL via DATABASE_URL.

No engine is created at import time: `create_engine_for(url)` is called by each service's
factory (and by tests with their own URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every sharinghub table (consent registry, audit ledger, …)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def stored_utc(moment: datetime) -> datetime:
    """A datetime read back from the database, aware: SQLite hands back naive UTC values."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (audit ledger) through orjson: the stdlib encoder was a tenth of a ledger
# append's CPU. Both forms read back as the same values.
_JSON = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def create_engine_for(url: str) -> Engine:
    """Create an engine; SQLite gets WAL + a busy timeout so several processes can share it."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **_JSON)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, **_JSON)


class UnitOfWork:
    """Owns one transaction: explicit `commit()`, rollback by default on exit."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    @contextmanager
    def begin(self) -> Iterator[Session]:
        session = self._factory()
        try:
            yield session
        finally:
            session.rollback()
            session.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker that does not expire objects on commit (handlers read after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


def insert_new(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows`, skipping any whose primary key is already there (one statement, no
    read first: idempotent effects are re-written on redelivery)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
    elif dialect == "postgresql":
        conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - only the two supported backends
        raise ValueError(f"sharinghub supports SQLite and PostgreSQL, not {dialect}")
