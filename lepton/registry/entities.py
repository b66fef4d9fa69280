"""What the registry returns: frozen pydantic entities, never rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True)


class ArtifactVersion(Entity):
    name: str
    version: int
    id: str
    kind: str
    created_at: datetime
    creator: str | None = None
    message: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


class Alias(Entity):
    name: str
    alias: str
    version: int
    id: str
    updated_at: datetime


class AliasMove(Entity):
    name: str
    alias: str
    version: int | None
    id: str | None
    previous_version: int | None
    moved_at: datetime
    creator: str | None = None
    reason: str | None = None


class Run(Entity):
    id: str
    flow_run_id: str | None = None
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    creator: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class Edge(Entity):
    child_id: str
    parent_id: str
    role: str
    depth: int


class LineageNode(Entity):
    id: str
    depth: int
    kind: str | None = None
    name: str | None = None
    version: int | None = None
    run_id: str | None = None  # the run that made it (None: a manual snapshot)


class Lineage(Entity):
    root: str
    direction: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[Edge, ...]
