"""All tables of the hub in one metadata (imports every ORM module) + migration entry points."""

from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config

import sharinghub.consent.retractions
import sharinghub.consent.store
import sharinghub.delivery.ledger
import sharinghub.delivery.recorder
import sharinghub.policy.reviews  # noqa: F401 - registers the tables on Base.metadata
from sharinghub.runtime.db import Base, normalise_url

metadata = Base.metadata
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, lock_dir: Path | None = None) -> None:
    """Bring the database to the newest schema. A file lock serialises processes started
    together on one machine (`sharinghub up`); Alembic's version table makes it idempotent."""
    if lock_dir is None:
        command.upgrade(alembic_config(database_url), "head")
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "migrate.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(database_url), "head")
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
