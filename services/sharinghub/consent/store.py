"""Consent registry (SQL): every version of every directive, never updated in place."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from sharinghub.contracts import ConsentDirective, ConsentGranted, ConsentRevoked
from sharinghub.runtime.db import Base, session_factory


class ConsentVersionRow(Base):
    """One version of one consent directive (append-only; PK forbids rewriting a version)."""

    __tablename__ = "consent_directive_versions"

    consent_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(128), index=True)
    # indexed: the retraction sweep looks up revocations every second
    action: Mapped[str] = mapped_column(String(16), index=True)
    directive_json: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def latest_per_consent(rows: Iterable[Any]) -> dict[str, Any]:
    """The newest stored version of each consent among `rows` (ORM rows or result rows)."""
    latest: dict[str, Any] = {}
    for row in rows:
        if row.consent_id not in latest or row.version > latest[row.consent_id].version:
            latest[row.consent_id] = row
    return latest


@dataclass(frozen=True)
class ApplyResult:
    """What happened to one directive event: recorded, duplicate (no-op) or refused (why)."""

    status: str  # "recorded" | "duplicate" | "refused"
    reason_code: str = ""
    reason: str = ""


ConsentEvent = ConsentGranted | ConsentRevoked


class ConsentRegistry:
    """Append-only store of consent directive versions with the queries the stages need."""

    def __init__(self, engine: Engine, *, parsed_cache: int = 10_000) -> None:
        self._sessions = session_factory(engine)
        # A directive version never changes once stored, so its parsed form can be reused:
        # the delivery gate re-reads a client's directives for every consent-based delivery.
        self._parsed: OrderedDict[tuple[str, int], ConsentDirective] = OrderedDict()
        self._parsed_cap = parsed_cache
        self._parsed_lock = threading.Lock()

    def apply(self, events: Sequence[ConsentEvent], *, now: datetime) -> list[ApplyResult]:
        """Record a batch of directive events in one transaction, in order.

        Versioning rules: a grant is version 1 of a new id; an amendment or revocation is
        exactly one more than the latest version of the same subject's directive. Replaying an
        identical event is a no-op; anything else out of order is refused with a reason.
        """
        results: list[ApplyResult] = []
        with self._sessions() as session, session.begin():
            latest = self._latest_rows(session, {self._consent_id(e) for e in events})
            for event in events:
                result, row = self._check(event, latest, now)
                results.append(result)
                if row is not None:
                    session.add(row)
                    latest[row.consent_id] = row
        return results

    @staticmethod
    def _consent_id(event: ConsentEvent) -> str:
        return event.directive.consent_id if isinstance(event, ConsentGranted) else event.consent_id

    def _check(
        self, event: ConsentEvent, latest: dict[str, ConsentVersionRow], now: datetime
    ) -> tuple[ApplyResult, ConsentVersionRow | None]:
        consent_id = self._consent_id(event)
        previous = latest.get(consent_id)
        if isinstance(event, ConsentGranted):
            directive = event.directive
        else:
            if previous is None:
                return ApplyResult(
                    "refused",
                    "unknown_consent",
                    "revocation of a consent the registry has never seen",
                ), None
            before = ConsentDirective.model_validate_json(previous.directive_json)
            directive = before.model_copy(
                update={
                    "version": event.version,
                    "revoked_at": event.revoked_at,
                    "recorded_by": event.recorded_by or before.recorded_by,
                }
            )
        if previous is not None and directive.version <= previous.version:
            same = self._stored_version(previous, directive.version, consent_id)
            if same is not None and same == directive.model_dump_json():
                return ApplyResult("duplicate"), None
            return ApplyResult(
                "refused",
                "version_conflict",
                f"version {directive.version} of this consent already exists with other content",
            ), None
        expected = 1 if previous is None else previous.version + 1
        if directive.version != expected:
            return ApplyResult(
                "refused", "version_gap", f"expected version {expected}, got {directive.version}"
            ), None
        if isinstance(event, ConsentGranted) and (event.action == "grant") != (expected == 1):
            return ApplyResult(
                "refused",
                "wrong_action",
                "a grant must be version 1 and an amendment a later version",
            ), None
        if previous is not None and previous.subject_id != directive.subject_id:
            return ApplyResult(
                "refused", "subject_mismatch", "a consent cannot move to another subject"
            ), None
        row = ConsentVersionRow(
            consent_id=consent_id,
            version=directive.version,
            subject_id=directive.subject_id,
            action=event.action,
            directive_json=directive.model_dump_json(),
            recorded_at=now,
        )
        return ApplyResult("recorded"), row

    def _stored_version(
        self, latest: ConsentVersionRow, version: int, consent_id: str
    ) -> str | None:
        if latest.version == version:
            return latest.directive_json
        with self._sessions() as session:
            row = session.get(ConsentVersionRow, (consent_id, version))
            return row.directive_json if row else None

    @staticmethod
    def _latest_rows(session: Session, consent_ids: Iterable[str]) -> dict[str, ConsentVersionRow]:
        ids = list(consent_ids)
        if not ids:
            return {}
        rows = session.scalars(
            select(ConsentVersionRow).where(ConsentVersionRow.consent_id.in_(ids))
        ).all()
        return latest_per_consent(rows)

    def current_for_subjects(self, subject_ids: Iterable[str]) -> dict[str, list[ConsentDirective]]:
        """Latest version of every directive of each subject (one query for a whole batch)."""
        ids = sorted(set(subject_ids))
        out: dict[str, list[ConsentDirective]] = defaultdict(list)
        if not ids:
            return out
        t = ConsentVersionRow
        # plain result rows, not ORM objects: this runs for every batch of requests
        with self._sessions() as session:
            rows = session.execute(
                select(t.consent_id, t.version, t.subject_id, t.directive_json).where(
                    t.subject_id.in_(ids)
                )
            ).all()
        latest = latest_per_consent(rows)
        for row in sorted(latest.values(), key=lambda r: r.consent_id):
            out[row.subject_id].append(self._parse(row.consent_id, row.version, row.directive_json))
        return out

    def _parse(self, consent_id: str, version: int, text: str) -> ConsentDirective:
        key = (consent_id, version)
        with self._parsed_lock:
            found = self._parsed.get(key)
        if found is not None:
            return found
        directive = ConsentDirective.model_validate_json(text)
        with self._parsed_lock:
            self._parsed[key] = directive
            while len(self._parsed) > self._parsed_cap:
                self._parsed.popitem(last=False)
        return directive

    def history(self, consent_id: str) -> list[ConsentDirective]:
        """Every version of one directive, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ConsentVersionRow)
                .where(ConsentVersionRow.consent_id == consent_id)
                .order_by(ConsentVersionRow.version)
            ).all()
        return [ConsentDirective.model_validate_json(r.directive_json) for r in rows]
