"""The registry: SQL index of artifacts, lineage, runs and aliases."""

from lepton.registry.engine import make_engine, migrate
from lepton.registry.entities import (
    Alias,
    AliasMove,
    ArtifactVersion,
    Edge,
    Lineage,
    LineageNode,
    Run,
)
from lepton.registry.registry import Journal, Registry

__all__ = [
    "Alias",
    "AliasMove",
    "ArtifactVersion",
    "Edge",
    "Journal",
    "Lineage",
    "LineageNode",
    "Registry",
    "Run",
    "make_engine",
    "migrate",
]
