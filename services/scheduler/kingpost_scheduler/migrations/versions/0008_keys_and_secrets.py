"""API key scopes (Baseten's key types: manage everything, or invoke only, optionally named models)
and secrets, stored encrypted. Existing keys keep what they could do: manage and invoke everything.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("type", sa.String(32), nullable=False, server_default="WORKSPACE_MANAGE_ALL"))
        batch.add_column(sa.Column("model_ids", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("model_ids")
        batch.drop_column("type")
