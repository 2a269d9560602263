"""Canary promotions: an environment's promotion in progress has a window, a start and a stage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("canary_duration_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("canary_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("canary_stage", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("canary_stage")
        batch.drop_column("canary_started_at")
        batch.drop_column("canary_duration_seconds")
