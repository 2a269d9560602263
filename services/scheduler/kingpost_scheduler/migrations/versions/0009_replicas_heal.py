"""Replicas that heal (issue 21): a replica's restart count and whether it crash-loops; whether a
deployment has served (a load failure no longer fails one that has). Deployments that were ACTIVE,
scaled to zero or waking up have served.

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("restarts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("crash_looping", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("has_served", sa.Boolean(), nullable=False, server_default=sa.false()))
    deployments = sa.table("deployments", sa.column("status", sa.String), sa.column("has_served", sa.Boolean))
    op.execute(deployments.update()
               .where(deployments.c.status.in_(("ACTIVE", "SCALED_TO_ZERO", "WAKING_UP")))
               .values(has_served=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("has_served")
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("crash_looping")
        batch.drop_column("restarts")
