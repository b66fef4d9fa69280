"""The retraining flow:

    snapshot-data -> version-components -> train -> evaluate -> select -> deploy

Every step passes artifact ids; a re-run with unchanged inputs is served
from Prefect's cache (keys are artifact ids) and, below it, from Lepton's
own memos. The lepton run record and the Prefect flow run point at each other.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.fanout import Fanout, make_runner, train_and_evaluate
from lepton.pipeline.context import logical_run_id
from lepton.pipeline.runs import record_run, store_config
from lepton.project import Project, load_project
from lepton.repo import Repo, open_repo
from tasks import steps
from tasks.common import Job, publish, short

# A version ref: NAME, NAME@vN, NAME@ALIAS, or an id (blake3:HEX, 6+ digits).
REF_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z0-9._-]{1,128})?|blake3:[0-9a-f]{6,64})$"


class RetrainParams(BaseModel):
    """Parameters of a retraining run (the Prefect UI shows them as a form)."""

    model_config = ConfigDict(extra="forbid")
    config: str = Field("project.toml", description="project config (TOML); relative to the repo folder")
    repo: str = Field(".", description="folder holding lepton.toml (store and registry URLs)")
    reuse: bool = Field(True, description="reuse unchanged steps (False recomputes everything)")
    dataset: str | None = Field(
        None,
        description="train on this dataset version (e.g. digits-features@v3, or an id) instead of "
        "snapshotting the config's data source; a data-arrival trigger fills it in",
        pattern=REF_PATTERN,
    )
    labels: str | None = Field(
        None,
        description="train on this labelset version (it must label the dataset used); "
        "empty: snapshot the config's label source",
        pattern=REF_PATTERN,
    )
    fanout: Fanout = Field(
        "off",
        description="train and evaluate the candidates at once: off (one after the other), threads, "
        "processes, or dask (a Dask cluster, see dask_address)",
    )
    workers: int | None = Field(
        None, ge=1, le=256, description="how many at once (default: one per candidate, at most the CPUs)"
    )
    dask_address: str | None = Field(
        None,
        description="Dask scheduler for fanout=dask (tcp://HOST:8786); empty: DASK_SCHEDULER_ADDRESS",
        pattern=r"^(tcp|tls|inproc|ws|wss)://\S+$",
    )


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


@flow(name="retrain", log_prints=True)
def retrain(params: RetrainParams | None = None) -> dict[str, Any]:
    params = params or RetrainParams()
    root = Path(params.repo).resolve()
    config_path = Path(params.config)
    config_path = config_path if config_path.is_absolute() else root / config_path
    execution = _flow_run_id() or str(uuid.uuid4())
    with open_repo(root) as repo:
        config_key, project, runner = _begin(repo, config_path, params, execution)
    job = Job(
        repo=str(root),
        config_key=config_key,
        config_root=str(config_path.parent),
        reuse=params.reuse,
        dataset=params.dataset,
        labels=params.labels,
    )
    try:
        summary = _run(job, project.candidates, execution, runner)
    except BaseException:
        with open_repo(root) as repo:
            repo.registry.finish_run(execution, "failed")
        raise
    with open_repo(root) as repo:
        repo.registry.finish_run(execution, "completed")
    return summary


def _begin(repo: Repo, config_path: Path, params: RetrainParams, execution: str) -> tuple[str, Project, Any]:
    """Check the config and the fan-out (a bad one starts no run), record the
    run as started, and only then store the config: gc keeps what was
    written since a live run started, less FRESHEN_AFTER, and a config
    stored before the run (or found stored and reused as it is) can fall
    outside that. Returns (config key, project, task runner)."""
    project, _ = load_project(config_path)  # fails fast on a bad config
    runner = make_runner(params.fanout, len(project.candidates), params.workers, params.dask_address)
    repo.registry.start_run(
        execution, flow_run_id=_flow_run_id(), params=params.model_dump(), creator=repo.creator
    )
    try:
        config_key, project = store_config(repo, config_path)
    except BaseException:
        repo.registry.finish_run(execution, "failed")
        raise
    return config_key, project, runner


def _run(job: Job, candidates: Any, execution: str, runner: Any = None) -> dict[str, Any]:
    data = steps.snapshot_data(job)
    with open_repo(job.repo) as repo:
        from lepton.pipeline.runs import read_config

        project = read_config(repo, job.config_key)
    run_id = logical_run_id(project, data["dataset"], data["labelset"])
    job = job.model_copy(update={"run_id": run_id})
    comps = steps.version_components(job, data["dataset"], data["labelset"])
    evalset = comps["evalset"]
    models, evaluated = train_and_evaluate(job, candidates, data, comps, runner)
    decision = steps.select(job, evaluated, evalset)
    deployed = steps.deploy(job, decision["decision"])
    outputs = {
        "dataset": data["dataset"],
        "labelset": data["labelset"],
        "evalset": evalset,
        "specs": comps["specs"],
        "models": [{"candidate": m["candidate"], "model": m["model"], "stages": m["stages"]} for m in models],
        "evaluations": evaluated,
        "decision": decision["decision"],
        "deployment": deployed.get("deployment"),
    }
    with open_repo(job.repo) as repo:
        record = record_run(
            repo,
            project,
            run_id=run_id,
            flow_run_id=_flow_run_id(),
            config_key=job.config_key,
            params={"execution": execution, "reuse": job.reuse},
            outputs=outputs,
        )
    summary = {
        "run": run_id,
        "record": record,
        "execution": execution,
        "flow_run_id": _flow_run_id(),
        "winner": decision["winner_ref"],
        "promote": decision["promote"],
        "reason": decision["reason"],
        "deployed": deployed,
        "models": outputs["models"],
        # seconds inside each step's own work (from the cache on a cached step)
        "work_s": {
            "snapshot-data": data["work_s"],
            "version-components": comps["work_s"],
            **{f"train-{m['candidate']}": m["work_s"] for m in models},
            **{f"evaluate-{e['candidate']}": e["work_s"] for e in evaluated},
            "select": decision["work_s"],
            "deploy": deployed["work_s"],
        },
    }
    publish(
        "lepton-run",
        f"### Lepton run `{run_id}`\n- record `{record}`\n- execution `{execution}`\n"
        f"- dataset `{short(data['dataset'])}`, labels `{short(data['labelset'])}`, "
        f"evaluation set `{short(evalset)}`\n- decision: {decision['reason']}\n"
        + (
            f"- deployed {deployed['model_ref']} to {deployed['location']}"
            if deployed["deployed"]
            else "- not deployed"
        ),
    )
    return summary


def run_pinned(config: str, repo: str, dataset: str) -> dict[str, Any]:
    """A retraining run on one dataset version, in this process (`lepton watch
    --retrain` on the embedded default, where no server trigger would start it)."""
    return retrain(RetrainParams(config=config, repo=repo, dataset=dataset))


if __name__ == "__main__":
    import sys

    print(retrain(RetrainParams(config=sys.argv[1] if len(sys.argv) > 1 else "project.toml")))  # noqa: T201
