"""What every step needs: the repository, the project config and the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lepton import hashing
from lepton.components import ComponentTypes
from lepton.manifest import Manifest, canonical_json
from lepton.project import Project
from lepton.registry.memo import RegistryMemo
from lepton.repo import Repo


def resolve_source(root: Path, path: str) -> str:
    """A data source named in a project config: a URL or absolute path as is,
    a relative path against the config's folder ``root``."""
    if "://" in path or Path(path).is_absolute():
        return path
    return str((root / path).resolve())


@dataclass(frozen=True)
class Context:
    repo: Repo
    project: Project
    root: Path  # folder of the project config: relative sources resolve here
    run_id: str | None = None
    reuse: bool = True  # False: recompute every step (replay), ignoring memos

    def memo(self) -> RegistryMemo:
        return RegistryMemo(self.repo.engine, read=self.reuse)

    def types(self) -> ComponentTypes:
        return self.project.component_types()

    def source(self, path: str) -> str:
        return resolve_source(self.root, path)

    def manifest(self, id: str) -> Manifest:
        return self.repo.load(id)

    def ref(self, id: str) -> str:
        rows = self.repo.registry.by_id(id)
        return rows[-1].ref if rows else hashing.short(id)


def logical_run_id(project: Project, dataset: str, labelset: str) -> str:
    """A run is identified by what it computes: the config and the pinned
    inputs. Re-running or replaying it yields the same id, and so the same
    artifact ids downstream; each execution is recorded separately."""
    doc = {"project": project.model_dump(mode="json"), "dataset": dataset, "labelset": labelset}
    return hashing.hash_bytes(canonical_json(doc))


def key_of(**parts: object) -> str:
    """A memo key from named inputs."""
    return hashing.hash_bytes(canonical_json(parts))
