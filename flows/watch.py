"""The watcher as a scheduled flow: each run looks once at the project's data
source (or another folder, file or s3:// prefix), snapshots it when it
changed and has settled (lepton.watch: the same stateless decision as
`lepton watch`), and announces the new version as a Prefect event
(lepton.dataset.snapshotted), which the `retrain/on-new-data` deployment's
trigger turns into a retraining run pinned to that version.

With no Prefect server to take the event (a direct call on the embedded
default), it starts that retraining run itself, as `lepton watch --retrain`
does. The `watch/poll` deployment (deployments/prefect.yaml) runs it every
minute once its schedule is switched on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field

from lepton import events
from lepton.pipeline.context import resolve_source
from lepton.project import load_project
from lepton.repo import open_repo
from lepton.watch import WatchSpec, poll
from tasks.common import publish


class WatchParams(BaseModel):
    """One look at a data source (the Prefect UI shows this as a form)."""

    model_config = ConfigDict(extra="forbid")
    config: str = Field("project.toml", description="project config; its [data] names the dataset and key")
    repo: str = Field(".", description="folder holding lepton.toml (store and registry URLs)")
    source: str | None = Field(
        None, description="folder, table file or s3:// prefix to watch; empty: the project's [data] source"
    )
    quiet_s: float = Field(60.0, ge=0, description="snapshot once no file changed for this many seconds")
    max_wait_s: float = Field(600.0, ge=0, description="...or once changes kept arriving this long")
    retrain_here: bool = Field(
        True, description="start the pinned retraining run in this flow when no server took the event"
    )


@flow(name="watch", log_prints=True)
def watch_source(params: WatchParams | None = None) -> dict[str, Any]:
    params = params or WatchParams()
    root = Path(params.repo).resolve()
    config = root / params.config  # an absolute config stays as it is
    project, project_root = load_project(config)
    source = resolve_source(project_root, params.source or project.data.source)
    spec = WatchSpec(
        name=project.data.name,
        source=source,
        key=project.data.key,
        quiet_s=params.quiet_s,
        max_wait_s=params.max_wait_s,
    )
    with open_repo(root) as repo:
        decision = poll(repo, spec)
    get_run_logger().info(decision.reason)
    result: dict[str, Any] = {"action": decision.action, "reason": decision.reason, "ref": None}
    snap = decision.snapshot
    if snap is None or not snap.created:
        return result
    v = snap.version
    result["ref"] = v.ref
    result["announced"] = events.emit(events.snapshotted(v.kind, v.ref, v.id, v.name, source, True))
    told = ", ".join(result["announced"]) or "nobody"
    publish("watch", f"### New data\n**{v.ref}** from `{source}`; announced to: {told}")
    if not result["announced"] and params.retrain_here:
        from flows.retrain import RetrainParams, retrain

        summary = retrain(RetrainParams(config=str(config), repo=str(root), dataset=v.ref))
        result["run"] = summary["run"]
    return result
