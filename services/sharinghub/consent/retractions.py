"""Revocation that reaches recipients: which deliveries rested on which consent, and the
retraction notices sent (and acknowledged) when that consent is withdrawn."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, DateTime, String, Table, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from sharinghub.consent.store import ConsentVersionRow, latest_per_consent
from sharinghub.contracts import ConsentDirective, RetractionAck, RetractionNotice
from sharinghub.runtime.db import Base, insert_new, session_factory, stored_utc

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


_DELIVERIES = cast(Table, ConsentDeliveryRow.__table__)


class RetractionRow(Base):
    """A retraction notice per (consent, recipient agency); acknowledged_at closes it."""

    __tablename__ = "retractions"

    retraction_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    consent_id: Mapped[str] = mapped_column(String(128), index=True)
    recipient_agency_id: Mapped[str] = mapped_column(String(100), index=True)
    request_ids: Mapped[str] = mapped_column(String(8000))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
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
        """Retractions owed: revoked consents with deliveries not yet covered by a notice, and
        notices recorded but not yet published (a crash between the two)."""
        with self._sessions() as session, session.begin():
            revoked = self._revoked(session, now)
            if not revoked:
                return []
            deliveries = session.scalars(
                select(ConsentDeliveryRow).where(ConsentDeliveryRow.consent_id.in_(list(revoked)))
            ).all()
            grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
            for d in deliveries:
                grouped[(d.consent_id, d.recipient_agency_id)].append(d.request_id)
            existing = {
                r.retraction_id: r
                for r in session.scalars(
                    select(RetractionRow).where(RetractionRow.consent_id.in_(list(revoked)))
                )
            }
            out = []
            for (consent_id, recipient), request_ids in sorted(grouped.items()):
                directive = revoked[consent_id]
                rid = f"rtr-{consent_id}-v{directive.version}-{recipient}"
                row = existing.get(rid)
                if row is not None and row.published_at is not None:
                    continue
                if row is None:
                    row = RetractionRow(
                        retraction_id=rid,
                        consent_id=consent_id,
                        recipient_agency_id=recipient,
                        request_ids=",".join(sorted(request_ids)),
                        issued_at=now,
                    )
                    session.add(row)
                assert directive.revoked_at is not None
                out.append(
                    PendingRetraction(
                        recipient,
                        RetractionNotice(
                            retraction_id=rid,
                            consent_id=consent_id,
                            request_ids=row.request_ids.split(","),
                            revoked_at=directive.revoked_at,
                            message=RETRACTION_TEXT,
                            issued_at=stored_utc(row.issued_at),
                        ),
                    )
                )
            return out

    @staticmethod
    def _revoked(session: Session, now: datetime) -> dict[str, ConsentDirective]:
        """Revoked consents still owing a notice: only consents with a stored revocation and a
        delivery no published notice covers, so each sweep costs what is outstanding, not the
        whole history of deliveries and directives."""
        covered = (
            select(RetractionRow.retraction_id)
            .where(
                RetractionRow.consent_id == ConsentDeliveryRow.consent_id,
                RetractionRow.recipient_agency_id == ConsentDeliveryRow.recipient_agency_id,
                RetractionRow.published_at.is_not(None),
                RetractionRow.issued_at >= ConsentDeliveryRow.delivered_at,
            )
            .exists()
        )
        outstanding = (
            select(ConsentDeliveryRow.consent_id)
            .where(~covered)
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
