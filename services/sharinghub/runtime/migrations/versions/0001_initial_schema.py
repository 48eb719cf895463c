"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 10:31:30.667921
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_ledger",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("decision_seq", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("reason_code", sa.String(length=200), nullable=False),
        sa.Column("requester_agency_id", sa.String(length=100), nullable=False),
        sa.Column("requester_agency_type", sa.String(length=64), nullable=False),
        sa.Column("recipient_agency_id", sa.String(length=100), nullable=False),
        sa.Column("recipient_agency_type", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("jurisdiction", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("subject_ref_hash", sa.String(length=64), nullable=False),
        sa.Column("pack_id", sa.String(length=100), nullable=True),
        sa.Column("pack_version", sa.String(length=200), nullable=True),
        sa.Column(
            "consents_used",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "facts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "allowed_categories",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "withheld_categories",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "withheld_field_names",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "delivered_field_names",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "obligations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("reviewer_id", sa.String(length=100), nullable=True),
        sa.Column("break_glass", sa.Boolean(), nullable=False),
        sa.Column("break_glass_declared_by", sa.String(length=100), nullable=True),
        sa.Column("pseudonym", sa.String(length=128), nullable=True),
        sa.Column("payload_digest", sa.String(length=64), nullable=True),
        sa.Column(
            "manifest",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("trace_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_ledger")),
        sa.UniqueConstraint("request_id", "decision_seq", name="uq_audit_decision"),
    )
    with op.batch_alter_table("audit_ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_ledger_outcome"), ["outcome"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_ledger_recipient_agency_id"), ["recipient_agency_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_ledger_recorded_at"), ["recorded_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_ledger_requester_agency_id"), ["requester_agency_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_ledger_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "consent_directive_versions",
        sa.Column("consent_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("directive_json", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "consent_id", "version", name=op.f("pk_consent_directive_versions")
        ),
    )
    with op.batch_alter_table("consent_directive_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_directive_versions_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "effect_dispatch",
        sa.Column("effect_key", sa.String(length=200), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("effect_key", name=op.f("pk_effect_dispatch")),
    )
    op.create_table(
        "review_cases",
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("case_json", sa.Text(), nullable=False),
        sa.Column("envelope_json", sa.Text(), nullable=False),
        sa.Column("trace_headers", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_json", sa.Text(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_review_cases")),
    )
    with op.batch_alter_table("review_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_cases_due_at"), ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_review_cases_request_id"), ["request_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_review_cases_status"), ["status"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("review_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_cases_status"))
        batch_op.drop_index(batch_op.f("ix_review_cases_request_id"))
        batch_op.drop_index(batch_op.f("ix_review_cases_due_at"))

    op.drop_table("review_cases")
    op.drop_table("effect_dispatch")
    with op.batch_alter_table("consent_directive_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_directive_versions_subject_id"))

    op.drop_table("consent_directive_versions")
    with op.batch_alter_table("audit_ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_ledger_subject_id"))
        batch_op.drop_index(batch_op.f("ix_audit_ledger_requester_agency_id"))
        batch_op.drop_index(batch_op.f("ix_audit_ledger_recorded_at"))
        batch_op.drop_index(batch_op.f("ix_audit_ledger_recipient_agency_id"))
        batch_op.drop_index(batch_op.f("ix_audit_ledger_outcome"))

    op.drop_table("audit_ledger")
