"""retraction coverage per delivery; notice request ids unbounded; unpublished notices indexed

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 04:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_deliveries = sa.table(
    "consent_deliveries",
    sa.column("consent_id", sa.String),
    sa.column("request_id", sa.String),
    sa.column("recipient_agency_id", sa.String),
    sa.column("retraction_id", sa.String),
)
_retractions = sa.table(
    "retractions",
    sa.column("retraction_id", sa.String),
    sa.column("consent_id", sa.String),
    sa.column("recipient_agency_id", sa.String),
    sa.column("request_ids", sa.Text),
)


def upgrade() -> None:
    # A delivery was "covered" when some published notice was issued after it; one committed
    # after the notice (but stamped before it) was never told. Coverage is now the notice id
    # on the delivery itself.
    with op.batch_alter_table("consent_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retraction_id", sa.String(length=300), nullable=True))
    # A notice lists every delivery it covers: 8,000 characters held ~60 request ids.
    with op.batch_alter_table("retractions", schema=None) as batch_op:
        batch_op.alter_column(
            "request_ids", existing_type=sa.String(length=8000), type_=sa.Text(), nullable=False
        )
        # every sweep (each second) looks for notices recorded but not yet published
        batch_op.create_index(
            batch_op.f("ix_retractions_published_at"), ["published_at"], unique=False
        )
    conn = op.get_bind()
    for notice in conn.execute(sa.select(_retractions)).all():
        conn.execute(
            sa.update(_deliveries)
            .where(
                _deliveries.c.consent_id == notice.consent_id,
                _deliveries.c.recipient_agency_id == notice.recipient_agency_id,
                _deliveries.c.request_id.in_(notice.request_ids.split(",")),
                _deliveries.c.retraction_id.is_(None),
            )
            .values(retraction_id=notice.retraction_id)
        )


def downgrade() -> None:
    # Lossy: follow-up notices stay, but which delivery each covered is dropped; refuse
    # rather than cut a notice's request ids to fit the old column.
    too_long = op.get_bind().scalar(
        sa.select(sa.func.count())
        .select_from(_retractions)
        .where(sa.func.length(_retractions.c.request_ids) > 8000)
    )
    if too_long:
        raise RuntimeError(
            f"cannot downgrade below 0004: {too_long} retraction notice(s) list more request "
            "ids than the old 8,000-character column holds"
        )
    with op.batch_alter_table("retractions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retractions_published_at"))
        batch_op.alter_column(
            "request_ids", existing_type=sa.Text(), type_=sa.String(length=8000), nullable=False
        )
    with op.batch_alter_table("consent_deliveries", schema=None) as batch_op:
        batch_op.drop_column("retraction_id")
