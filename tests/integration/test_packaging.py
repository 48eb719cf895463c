"""Packaging: the wheel carries both namespace roots and their data; migrations match models."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.schema import metadata, upgrade

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_wheel_holds_contracts_services_packs_migrations_and_demo(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    [wheel] = tmp_path.glob("sharinghub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "sharinghub/contracts/__init__.py",
        "sharinghub/consent/app.py",
        "sharinghub/policy/packs/us_baseline/manifest.json",
        "sharinghub/runtime/migrations/env.py",
        "sharinghub/tools/demo_scenarios.jsonl",
        "sharinghub/cli.py",
    ):
        assert required in names, required
    # PEP 420: neither root may ship a sharinghub/__init__.py that would hide the other
    assert "sharinghub/__init__.py" not in names


def test_migrations_create_exactly_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine_for(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
