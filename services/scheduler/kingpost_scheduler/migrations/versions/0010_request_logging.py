"""A deployment's request logging (kingpost extensions of its autoscaling settings): the share of
requests whose input and output its runners log, and the cap on each body. Existing deployments log
none.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("request_logging_sample_rate", sa.Float(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("request_logging_max_bytes", sa.Integer(), nullable=False,
                                   server_default="1024"))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("request_logging_max_bytes")
        batch.drop_column("request_logging_sample_rate")
