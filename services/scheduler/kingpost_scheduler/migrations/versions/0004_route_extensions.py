"""kingpost's extensions of a deployment's autoscaling settings: its back-pressure policy and its
cold-start timeout (existing deployments get the defaults, which are what the router did before).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("backpressure_policy", sa.String(16), nullable=False,
                                   server_default="queue"))
        batch.add_column(sa.Column("cold_start_timeout_seconds", sa.Integer(), nullable=False,
                                   server_default="300"))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("cold_start_timeout_seconds")
        batch.drop_column("backpressure_policy")
