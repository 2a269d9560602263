"""The runner's HTTP data plane (issue 20): a replica's `http_address`, which Envoy calls straight;
"" for replicas that serve none (a Triton runner, or a runner started before this).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("http_address", sa.String(255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("http_address")
