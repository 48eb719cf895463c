"""index consent directive versions by action

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 05:50:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The retraction sweep asks "which consents have a revocation?" every second.
    with op.batch_alter_table("consent_directive_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_directive_versions_action"), ["action"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_directive_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_directive_versions_action"))
