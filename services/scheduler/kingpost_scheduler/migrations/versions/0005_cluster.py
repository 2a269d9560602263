"""Many machines: what each replica of a deployment needs (CPUs, memory, GPUs), the GPUs each
replica holds, a node's name, labels and draining flag, and the tokens agents join with.

Existing deployments get truss's defaults (1 CPU, 2Gi, no accelerator), which is what the
builder's summary says of a Truss that names no resources.

Revision ID: 0005
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("cpu_millis", sa.Integer(), nullable=False, server_default="1000"))
        batch.add_column(sa.Column("memory_bytes", sa.BigInteger(), nullable=False,
                                   server_default=str(2 * 2**30)))
        batch.add_column(sa.Column("accelerator", sa.String(32), nullable=False, server_default=""))
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("gpus", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("name", sa.String(128), nullable=False, server_default=""))
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("secret_sha256", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "join_tokens",
        sa.Column("prefix", sa.String(32), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.String(128), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("join_tokens")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("secret_sha256")
        batch.drop_column("joined_at")
        batch.drop_column("draining")
        batch.drop_column("labels")
        batch.drop_column("name")
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("gpus")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("accelerator")
        batch.drop_column("memory_bytes")
        batch.drop_column("cpu_millis")
