"""Registry tables (SQLAlchemy Core). Migrations in migrations/ create them;
this module is the shape the code reads and writes."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per name: its kind and a counter that hands out version numbers
# atomically (INSERT .. ON CONFLICT DO UPDATE .. RETURNING).
names = Table(
    "names",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("last_version", Integer, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), ForeignKey("names.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("id", String(80), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("creator", String(200), nullable=True),
    Column("message", Text, nullable=True),
    Column("meta", Text, nullable=False, default="{}"),
    Column("run_id", String(80), nullable=True),
    UniqueConstraint("name", "version", name="uq_artifacts_name_version"),
    Index("ix_artifacts_id", "id"),
    Index("ix_artifacts_run", "run_id"),
)

edges = Table(
    "edges",
    metadata,
    Column("child_id", String(80), primary_key=True),
    Column("parent_id", String(80), primary_key=True),
    Column("role", String(64), primary_key=True),
    Index("ix_edges_parent", "parent_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("flow_run_id", String(80), nullable=True),
    Column("status", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("creator", String(200), nullable=True),
    Column("params", Text, nullable=False, default="{}"),
    Index("ix_runs_flow_run", "flow_run_id"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(128), ForeignKey("names.name"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("id", String(80), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("id", String(80), nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("moved_at", DateTime(timezone=True), nullable=False),
    Column("creator", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_alias_history_name_alias", "name", "alias"),
)

# Work already done: a key derived from a step's inputs (e.g. a fit key)
# -> the artifact that step produced, so unchanged steps are reused.
memos = Table(
    "memos",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("artifact_id", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
