"""Time appending audit records to the ledger (and verifying them) on SQLite and PostgreSQL.

    python bench/audit_append.py                     # SQLite temp file + local PostgreSQL
    python bench/audit_append.py --records 10000 --batch 100
    python bench/audit_append.py --pg-url postgresql://postgres@db:5432/test

PostgreSQL runs in a throw-away database ``sharinghub_bench_<random>`` created next to the
one in ``--pg-url`` and dropped afterwards; it is skipped (with a note) when unreachable.
Records are fictional.
"""

# ruff: noqa: T201 - a benchmark reports by printing
from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from sharinghub.contracts import (
    AgencyType,
    ConsentRef,
    DataCategory,
    Jurisdiction,
    ManifestEntry,
    Obligation,
    Outcome,
    Purpose,
    Stage,
)
from sharinghub.delivery.audit_record import AuditRecord, subject_ref_hash
from sharinghub.delivery.ledger import AuditLedger, create_ledger_table
from sharinghub.runtime.db import create_engine_for, normalise_url


def records(n: int) -> list[AuditRecord]:
    """``n`` fictional delivered-decision records of realistic size."""
    start = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        subject = f"subj-bench-{i % 97:04d}"
        out.append(
            AuditRecord(
                request_id=f"bench-{i:08d}",
                decision_seq=1,
                recorded_at=start + timedelta(milliseconds=i),
                stage=Stage.DELIVERY,
                outcome=Outcome.DELIVERED,
                final=True,
                reason_code="P.consent_based_sharing.consented",
                requester_agency_id="ag-eastmere-social-services",
                requester_agency_type=AgencyType.SOCIAL_SERVICES,
                recipient_agency_id="ag-eastmere-homes-association",
                recipient_agency_type=AgencyType.HOUSING,
                purpose=Purpose.CONSENT_BASED_SHARING,
                jurisdiction=Jurisdiction.UK_ENGLAND,
                subject_id=subject,
                subject_ref_hash=subject_ref_hash(subject, b"bench-key"),
                pack_id="uk_england",
                pack_version="1.0.0+sha256:bench",
                consents_used=[ConsentRef(consent_id=f"cd-{i}", version=1)],
                facts={"threat_imminent": None, "subject_is_minor": False},
                allowed_categories=[DataCategory.IDENTITY, DataCategory.HOUSING],
                withheld_categories=[DataCategory.MENTAL_HEALTH],
                withheld_field_names=["diagnosis"],
                delivered_field_names=["full_name", "tenancy_status"],
                obligations=[Obligation.NOTIFY_CLIENT],
                payload_digest=f"{i:064x}",
                manifest=[
                    ManifestEntry(
                        field_name="diagnosis",
                        category=DataCategory.MENTAL_HEALTH,
                        action="removed",
                        rule="S1.not_allowed",
                    )
                ],
                trace_id=f"{i:032x}",
            )
        )
    return out


def run(label: str, url: str, n: int, batch: int) -> None:
    """Append ``n`` records in batches of ``batch``, replay them once, then verify."""
    engine = create_engine_for(url)
    try:
        create_ledger_table(engine)
        ledger = AuditLedger(engine)
        recs = records(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            ledger.append(recs[i : i + batch])
        append_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            ledger.append(recs[i : i + batch])
        replay_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = ledger.verify()
        verify_s = time.perf_counter() - t0
        if not report.ok or report.rows_checked != n:
            raise SystemExit(f"{label}: ledger did not verify: {report}")
        print(
            f"{label:<10} append {n} in batches of {batch}: {append_s:6.3f} s "
            f"({n / append_s:8.0f} rec/s, {append_s / (n / batch) * 1000:6.1f} ms/batch) | "
            f"replay (all skipped): {replay_s:6.3f} s | verify: {verify_s:6.3f} s "
            f"({n / verify_s:8.0f} rows/s)"
        )
    finally:
        engine.dispose()


def run_postgres(pg_url: str, n: int, batch: int) -> None:
    """Run the benchmark in a temporary database beside ``pg_url``."""
    base = normalise_url(pg_url).rsplit("/", 1)[0]
    admin = create_engine(
        base + "/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"sharinghub_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # report and carry on with the other backend
        print(f"postgres   skipped: unreachable ({type(exc).__name__})")
        admin.dispose()
        return
    try:
        run("postgres", f"{base}/{name}", n, batch)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    """Parse arguments and run both backends."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'ledger.db'}", args.records, args.batch)
    run_postgres(args.pg_url, args.records, args.batch)


if __name__ == "__main__":
    main()
