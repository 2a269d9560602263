"""The scheduler's first tables: models, deployments, replicas, nodes, environments, api_keys.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model_id", sa.String(32), sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("is_development", sa.Boolean, nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=False),
        sa.Column("build_id", sa.String(64), nullable=False),
        sa.Column("artifact_digest", sa.String(128), nullable=False),
        sa.Column("predict_concurrency", sa.Integer, nullable=False),
        sa.Column("min_replica", sa.Integer, nullable=False),
        sa.Column("max_replica", sa.Integer, nullable=False),
        sa.Column("autoscaling_window", sa.Integer, nullable=False),
        sa.Column("scale_down_delay", sa.Integer, nullable=False),
        sa.Column("concurrency_target", sa.Integer, nullable=False),
        sa.Column("target_utilization_percentage", sa.Integer, nullable=False),
        sa.Column("desired_replicas", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        _ts("created_at"),
    )
    op.create_index("ix_deployments_model_id", "deployments", ["model_id"])
    op.create_index("ix_deployments_build_id", "deployments", ["build_id"])
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("deployment_id", sa.String(32), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_replicas_deployment_id", "replicas", ["deployment_id"])
    op.create_index("ix_replicas_node_id", "replicas", ["node_id"])
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("cpu_count", sa.Integer, nullable=False),
        sa.Column("memory_bytes", sa.BigInteger, nullable=False),
        sa.Column("gpus", sa.JSON, nullable=False),
        _ts("last_seen"),
    )
    op.create_table(
        "environments",
        sa.Column("model_id", sa.String(32), sa.ForeignKey("models.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("deployment_id", sa.String(32), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("prefix", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for table in ("api_keys", "environments", "nodes", "replicas", "deployments", "models"):
        op.drop_table(table)
