"""Chains: a chain (its entrypoint's model serves run_remote) and its versions, each a set of
Chainlet deployments pushed together.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chains",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("entrypoint_model_id", sa.String(32), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "chain_deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("chain_id", sa.String(32), sa.ForeignKey("chains.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("is_development", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("chainlets", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chain_deployments")
    op.drop_table("chains")
