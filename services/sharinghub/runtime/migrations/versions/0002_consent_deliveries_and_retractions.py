"""consent deliveries and retractions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:45:00.286761
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "consent_deliveries",
        sa.Column("consent_id", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("recipient_agency_id", sa.String(length=100), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consent_id", "request_id", name=op.f("pk_consent_deliveries")),
    )
    op.create_table(
        "retractions",
        sa.Column("retraction_id", sa.String(length=300), nullable=False),
        sa.Column("consent_id", sa.String(length=128), nullable=False),
        sa.Column("recipient_agency_id", sa.String(length=100), nullable=False),
        sa.Column("request_ids", sa.String(length=8000), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("retraction_id", name=op.f("pk_retractions")),
    )
    with op.batch_alter_table("retractions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retractions_consent_id"), ["consent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_retractions_recipient_agency_id"), ["recipient_agency_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("retractions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retractions_recipient_agency_id"))
        batch_op.drop_index(batch_op.f("ix_retractions_consent_id"))

    op.drop_table("retractions")
    op.drop_table("consent_deliveries")
