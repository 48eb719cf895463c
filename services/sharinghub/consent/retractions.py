"""Revocation that reaches recipients: which deliveries rested on which consent, and the
retraction notices sent (and acknowledged) when that consent is withdrawn."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, DateTime, String, Table, Text, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from sharinghub.consent.store import ConsentVersionRow, latest_per_consent
from sharinghub.contracts import ConsentDirective, RetractionAck, RetractionNotice
from sharinghub.runtime.db import Base, insert_new, session_factory, stored_utc

log = logging.getLogger(__name__)
# A notice lists the deliveries it covers; more than this many go out as several notices
# (each well under the broker's message size limit: request ids are at most 128 characters).
NOTICE_MAX_REQUESTS = 1000

RETRACTION_TEXT = (
    "The client has withdrawn the consent these disclosures relied on. Stop further use and "
    "onward sharing of the data received under it unless another lawful basis applies; record "
    "that you received this notice."
)


class ConsentDeliveryRow(Base):
    """A delivery that relied on a consent directive (written by the delivery gate)."""

    __tablename__ = "consent_deliveries"

    consent_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    recipient_agency_id: Mapped[str] = mapped_column(String(100))
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The notice that told the recipient this delivery's consent was withdrawn. Coverage is
    # per delivery, not per time: a delivery committed after a notice was issued (the gate
    # checked consent just before the revocation landed) gets a notice of its own.
    retraction_id: Mapped[str | None] = mapped_column(String(300), nullable=True)


_DELIVERIES = cast(Table, ConsentDeliveryRow.__table__)


class RetractionRow(Base):
    """A retraction notice per (consent, recipient agency); acknowledged_at closes it."""

    __tablename__ = "retractions"

    retraction_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    consent_id: Mapped[str] = mapped_column(String(128), index=True)
    recipient_agency_id: Mapped[str] = mapped_column(String(100), index=True)
    request_ids: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # indexed: every sweep (each second) looks for notices recorded but not yet published
    published_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


def record_deliveries_on(conn: Connection, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
    """`RetractionStore.record_deliveries` within the caller's transaction on `conn`."""
    insert_new(
        conn,
        _DELIVERIES,
        [
            {
                "consent_id": consent_id,
                "request_id": request_id,
                "recipient_agency_id": recipient,
                "delivered_at": at,
            }
            for consent_id, request_id, recipient, at in rows
        ],
    )


class SweepConflict(RuntimeError):
    """Another sweeper recorded a notice for some of the same deliveries first."""


@dataclass(frozen=True)
class PendingRetraction:
    recipient_agency_id: str
    notice: RetractionNotice


class RetractionStore:
    """Blocking SQL: call from a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    def record_deliveries(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        """(consent_id, request_id, recipient_agency_id, delivered_at); duplicates ignored."""
        with self._engine.begin() as conn:
            record_deliveries_on(conn, rows)

    def due(self, now: datetime) -> list[PendingRetraction]:
        """Retractions owed: notices recorded but not yet published (a crash between the two),
        and new notices per (revoked consent, recipient) for deliveries no notice covers yet
        (at most `NOTICE_MAX_REQUESTS` request ids a notice).

        Raises `SweepConflict` (nothing recorded) if another sweeper covered some of the same
        deliveries meanwhile; the next sweep sees what it recorded.
        """
        with self._sessions() as session, session.begin():
            owed = [
                self._pending(row, directive)
                for row in session.scalars(
                    select(RetractionRow)
                    .where(RetractionRow.published_at.is_(None))
                    .order_by(RetractionRow.issued_at, RetractionRow.retraction_id)
                )
                if (directive := self._revocation_of(session, row)) is not None
            ]
            revoked = self._revoked(session, now)
            uncovered = session.scalars(
                select(ConsentDeliveryRow)
                .where(
                    ConsentDeliveryRow.consent_id.in_(list(revoked)),
                    ConsentDeliveryRow.retraction_id.is_(None),
                )
                # PostgreSQL: two sweepers never take the same delivery (SQLite has one
                # writer at a time and ignores this)
                .with_for_update(skip_locked=True)
            ).all()
            grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
            for d in uncovered:
                grouped[(d.consent_id, d.recipient_agency_id)].append(d.request_id)
            for (consent_id, recipient), request_ids in sorted(grouped.items()):
                ordered = sorted(request_ids)
                for start in range(0, len(ordered), NOTICE_MAX_REQUESTS):
                    chunk = ordered[start : start + NOTICE_MAX_REQUESTS]
                    row = self._record(session, revoked[consent_id], recipient, chunk, now)
                    owed.append(self._pending(row, revoked[consent_id]))
            return owed

    def _record(
        self,
        session: Session,
        directive: ConsentDirective,
        recipient: str,
        request_ids: list[str],
        now: datetime,
    ) -> RetractionRow:
        row = RetractionRow(
            retraction_id=self._next_id(session, directive, recipient),
            consent_id=directive.consent_id,
            recipient_agency_id=recipient,
            request_ids=",".join(request_ids),
            issued_at=now,
        )
        session.add(row)
        covered = session.execute(
            update(ConsentDeliveryRow)
            .where(
                ConsentDeliveryRow.consent_id == directive.consent_id,
                ConsentDeliveryRow.request_id.in_(request_ids),
                ConsentDeliveryRow.retraction_id.is_(None),
            )
            .values(retraction_id=row.retraction_id)
        )
        if cast(CursorResult[Any], covered).rowcount != len(request_ids):
            raise SweepConflict("another sweeper covered some of these deliveries")
        return row

    @staticmethod
    def _pending(row: RetractionRow, directive: ConsentDirective) -> PendingRetraction:
        assert directive.revoked_at is not None
        return PendingRetraction(
            row.recipient_agency_id,
            RetractionNotice(
                retraction_id=row.retraction_id,
                consent_id=row.consent_id,
                request_ids=row.request_ids.split(","),
                revoked_at=directive.revoked_at,
                message=RETRACTION_TEXT,
                issued_at=stored_utc(row.issued_at),
            ),
        )

    @staticmethod
    def _revocation_of(session: Session, row: RetractionRow) -> ConsentDirective | None:
        """The revocation a recorded notice was issued for (its version is in the id), even if
        the client has granted consent again since: the deliveries still rested on it."""
        version = row.retraction_id.removeprefix(f"rtr-{row.consent_id}-v").split("-", 1)[0]
        stored = (
            session.get(ConsentVersionRow, (row.consent_id, int(version)))
            if version.isdigit()
            else None
        )
        directive = ConsentDirective.model_validate_json(stored.directive_json) if stored else None
        if directive is None or directive.revoked_at is None:
            log.warning("retraction notice without its revocation left unsent")
            return None
        return directive

    @staticmethod
    def _next_id(session: Session, directive: ConsentDirective, recipient: str) -> str:
        """`rtr-<consent>-v<version>-<recipient>`; a later notice for the same revocation and
        recipient (deliveries that landed after the first) gets `-2`, `-3` …"""
        base = f"rtr-{directive.consent_id}-v{directive.version}-{recipient}"
        taken = session.scalars(
            select(RetractionRow.retraction_id).where(
                RetractionRow.consent_id == directive.consent_id,
                RetractionRow.recipient_agency_id == recipient,
            )
        ).all()
        earlier = sum(1 for t in taken if t == base or t.startswith(f"{base}-"))
        return base if earlier == 0 else f"{base}-{earlier + 1}"

    @staticmethod
    def _revoked(session: Session, now: datetime) -> dict[str, ConsentDirective]:
        """Revoked consents (in force by `now`) with a delivery no notice covers: only consents
        with a stored revocation, so each sweep costs what is outstanding, not the whole
        history of deliveries and directives."""
        outstanding = (
            select(ConsentDeliveryRow.consent_id)
            .where(ConsentDeliveryRow.retraction_id.is_(None))
            .where(
                ConsentDeliveryRow.consent_id.in_(
                    select(ConsentVersionRow.consent_id).where(ConsentVersionRow.action == "revoke")
                )
            )
            .distinct()
        )
        rows = session.scalars(
            select(ConsentVersionRow).where(ConsentVersionRow.consent_id.in_(outstanding))
        ).all()
        out = {}
        for cid, row in latest_per_consent(rows).items():
            directive = ConsentDirective.model_validate_json(row.directive_json)
            if directive.revoked_at is not None and directive.revoked_at <= now:
                out[cid] = directive
        return out

    def mark_published(self, retraction_ids: Sequence[str], now: datetime) -> None:
        with self._sessions() as session, session.begin():
            for row in session.scalars(
                select(RetractionRow).where(RetractionRow.retraction_id.in_(list(retraction_ids)))
            ):
                row.published_at = row.published_at or now

    def acknowledge(self, ack: RetractionAck) -> str:
        """'acknowledged', 'duplicate', or a refusal code (unknown / other agency)."""
        with self._sessions() as session, session.begin():
            row = session.get(RetractionRow, ack.retraction_id)
            if row is None:
                return "unknown_retraction"
            if row.recipient_agency_id != ack.agency_id:
                return "not_the_recipient"
            if row.acknowledged_at is not None:
                return "duplicate"
            row.acknowledged_at = ack.acknowledged_at
            row.acknowledged_by = ack.acknowledged_by
            return "acknowledged"

    def unacknowledged(self) -> list[RetractionRow]:
        """Notices sent and not yet acknowledged (for governance), oldest first."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(RetractionRow)
                    .where(RetractionRow.acknowledged_at.is_(None))
                    .order_by(RetractionRow.issued_at)
                )
            )
