"""initial registry: names, artifacts, edges, runs, aliases, alias history

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "names",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "artifacts",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), sa.ForeignKey("names.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("creator", sa.String(200)),
        sa.Column("message", sa.Text),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(80)),
        sa.UniqueConstraint("name", "version", name="uq_artifacts_name_version"),
    )
    op.create_index("ix_artifacts_id", "artifacts", ["id"])
    op.create_index("ix_artifacts_run", "artifacts", ["run_id"])
    op.create_table(
        "edges",
        sa.Column("child_id", sa.String(80), primary_key=True),
        sa.Column("parent_id", sa.String(80), primary_key=True),
        sa.Column("role", sa.String(64), primary_key=True),
    )
    op.create_index("ix_edges_parent", "edges", ["parent_id"])
    op.create_table(
        "runs",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("flow_run_id", sa.String(80)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("creator", sa.String(200)),
        sa.Column("params", sa.Text, nullable=False),
    )
    op.create_index("ix_runs_flow_run", "runs", ["flow_run_id"])
    op.create_table(
        "aliases",
        sa.Column("name", sa.String(128), sa.ForeignKey("names.name"), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "alias_history",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("id", sa.String(80)),
        sa.Column("previous_version", sa.Integer),
        sa.Column("moved_at", TS, nullable=False),
        sa.Column("creator", sa.String(200)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_alias_history_name_alias", "alias_history", ["name", "alias"])


def downgrade() -> None:
    for table in ("alias_history", "aliases", "runs", "edges", "artifacts", "names"):
        op.drop_table(table)
