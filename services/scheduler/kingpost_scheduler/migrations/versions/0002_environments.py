"""Environments of their own: no current deployment yet, a promotion in progress, autoscaling
settings; demoted deployments (drain, then scale to zero); deleted models.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.alter_column("deployment_id", existing_type=sa.String(32), nullable=True)
        batch.add_column(sa.Column("candidate_deployment_id", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("promotion_failure", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("demoted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Every model has a production environment, with or without a deployment in it.
    op.execute(
        "INSERT INTO environments (model_id, name, deployment_id, candidate_deployment_id, promotion_failure) "
        "SELECT id, 'production', NULL, '', '' FROM models WHERE id NOT IN "
        "(SELECT model_id FROM environments WHERE name = 'production')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM environments WHERE deployment_id IS NULL")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("deleted")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("demoted_at")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("created_at")
        batch.drop_column("settings")
        batch.drop_column("promotion_failure")
        batch.drop_column("candidate_deployment_id")
        batch.alter_column("deployment_id", existing_type=sa.String(32), nullable=False)
