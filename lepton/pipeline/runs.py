"""Run records: which inputs a flow instance pinned and what it produced."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from lepton.manifest import Parent
from lepton.model_manifest import RunRecord
from lepton.project import Project, parse_project
from lepton.repo import Repo

OUTPUT_ROLES = ("dataset", "labelset", "evalset", "decision")


def store_config(repo: Repo, path: Path) -> tuple[str, Project]:
    """Validate a project config and keep its exact bytes in the store."""
    from lepton.project import load_project

    project, _ = load_project(path)
    return repo.store.put_bytes(path.read_bytes()), project


def read_config(repo: Repo, key: str) -> Project:
    return parse_project(tomllib.loads(repo.store.read_bytes(key).decode()), f"stored config {key}")


def record_run(
    repo: Repo,
    project: Project,
    *,
    run_id: str,
    flow_run_id: str | None,
    config_key: str,
    params: dict[str, Any],
    outputs: dict[str, Any],
) -> str:
    """Register the run record; its parents are every artifact the run pinned or made."""
    parents = [Parent(id=outputs[k], role=k) for k in OUTPUT_ROLES if outputs.get(k)]
    for m in outputs.get("models", []):
        parents.append(Parent(id=m["model"], role=f"model.{m['candidate']}"))
    if outputs.get("deployment"):
        parents.append(Parent(id=outputs["deployment"], role="deployment"))
    record = RunRecord(
        name=f"{project.name}.run",
        flow_run_id=flow_run_id,
        config=config_key,
        params={**params, "run": run_id},
        outputs=outputs,
        parents=tuple(dict.fromkeys(parents)),
        run=run_id,
    )
    return repo.commit(record, run_id=run_id).version.id
