"""Webhook secrets: what signs async results (X-BASETEN-SIGNATURE), managed at /v1/webhook_secrets.

Revision ID: 0007
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_secrets")
