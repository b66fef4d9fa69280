"""Replay a recorded run as a Prefect flow: inputs pinned, everything recomputed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from lepton.pipeline.replay import replay
from lepton.repo import open_repo
from tasks.common import publish, short


class ReplayParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str = Field(..., description="run record ref/id prefix, logical run id, or flow run id")
    repo: str = Field(".", description="folder holding lepton.toml")


@flow(name="replay", log_prints=True)
def replay_run(params: ReplayParams) -> dict[str, Any]:
    root = Path(params.repo).resolve()
    with open_repo(root) as repo:
        report = replay(repo, params.run, root)
    rows = [
        {
            "artifact": i.artifact,
            "status": i.status,
            "original": short(i.original),
            "replayed": short(i.replayed),
            "where": ", ".join(i.where),
        }
        for i in report.items
    ]
    verdict = "every artifact identical" if report.identical else "some artifacts differ"
    publish("replay", f"### Replay of run `{short(report.run)}`: {verdict}", rows)
    return report.model_dump(mode="json") | {"identical": report.identical}
