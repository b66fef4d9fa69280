"""Promote a model version to a target, or roll an alias back, as a Prefect
flow (the "release" deployment: a typed form in the UI, an audit trail of
who moved `production` and when, in Prefect and in Lepton's alias history)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, model_validator

from flows.retrain import REF_PATTERN
from lepton.errors import InvalidInput
from lepton.pipeline.context import Context
from lepton.pipeline.release import deploy_model, rollback
from lepton.project import load_project
from lepton.repo import open_repo
from tasks.common import publish


class ReleaseParams(BaseModel):
    """Promote MODEL to TARGET under ALIAS, or move ALIAS back one step."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["promote", "rollback"] = Field(
        "promote", description="promote a model version, or roll the alias back"
    )
    model: str | None = Field(
        None, description="model version to promote, e.g. digits@v3 (promote only)", pattern=REF_PATTERN
    )
    target: str | None = Field(
        None, description="target name from the project config (default: its [deploy] target)"
    )
    alias: str = Field("production", description="alias to move", pattern=r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
    config: str = Field("project.toml", description="project config (TOML); relative to the repo folder")
    repo: str = Field(".", description="folder holding lepton.toml")
    reason: str = Field("", description="why (kept in the alias history)", max_length=500)

    @model_validator(mode="after")
    def _model_for_promote(self) -> ReleaseParams:
        if self.action == "promote" and not self.model:
            raise ValueError("promote needs a model version (e.g. digits@v3)")
        return self


@flow(name="release", log_prints=True)
def release(params: ReleaseParams) -> dict[str, Any]:
    root = Path(params.repo).resolve()
    config = Path(params.config)
    project, project_root = load_project(config if config.is_absolute() else root / config)
    with open_repo(root) as repo:
        ctx = Context(repo, project, project_root)
        default = project.deploy.target if project.deploy else next(iter(project.targets), None)
        target = params.target or default
        if target is None:
            raise InvalidInput(f"{config}: no deploy target; add [targets] to the project config")
        if params.action == "promote":
            art = repo.resolve(params.model)  # type: ignore[arg-type]
            why = params.reason or f"promote {art.ref}"
            result = deploy_model(ctx, art.id, target, params.alias, reason=why)
            line = f"promoted {result['model_ref']} to {target} at {result['location']} ({params.alias})"
        else:
            result = rollback(ctx, params.alias, params.target)
            line = (
                f"rolled back {project.name}@{params.alias} to {result['model_ref']} "
                f"(was v{result['previous_version']}); deployed at {result['location']}"
            )
    publish("release", f"### Release\n{line}")
    print(line)  # noqa: T201 - log_prints: shown in the flow run's logs
    return result
