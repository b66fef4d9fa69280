"""Candidate fan-out through Prefect task runners (threads, a process pool,
and prefect-dask on a real Dask scheduler + worker started here): every
mode makes exactly the models, evaluations and decision of the sequential
run (torch training stays deterministic when candidates train in threads
of one process), and a Dask fan-out without a cluster fails before any
work."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _free_port
from pipeline_helpers import prepare_data, project, write_project, write_repo
from pydantic import ValidationError

from lepton.config import Settings
from lepton.errors import ConfigError
from lepton.repo import open_repo

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _two_torch_candidates() -> dict:  # type: ignore[type-arg]
    doc = project()
    mlp = doc["candidates"][1]
    wide = {**mlp, "name": "mlp-wide", "components": [mlp["components"][0], {**mlp["components"][1]}]}
    wide["components"][1] = {**wide["components"][1], "params": {"hidden": [32, 16], "epochs": 5}}
    doc["candidates"].append(wide)  # two torch trainings that would race in threads
    return doc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    settings = Settings.model_validate({"registry": {"url": f"sqlite:///{tmp_path / 'reg.db'}"}})
    repo = write_repo(tmp_path / "repo", settings)
    write_project(repo, _two_torch_candidates())
    prepare_data(repo)
    return repo


def _outcome(summary: dict) -> tuple:  # type: ignore[type-arg]
    return tuple((m["candidate"], m["model"]) for m in summary["models"]), summary["winner"]


def test_threads_and_processes_make_the_sequential_runs_models(prefect_api, folder):  # type: ignore[no-untyped-def]
    from flows.retrain import RetrainParams, retrain

    def run(fanout: str) -> dict:  # type: ignore[type-arg]
        return retrain(RetrainParams(repo=str(folder), reuse=False, fanout=fanout))  # type: ignore[arg-type]

    sequential = run("off")
    assert [m["candidate"] for m in sequential["models"]] == ["logreg", "mlp", "mlp-wide"]
    for fanout in ("threads", "processes"):
        got = run(fanout)
        assert _outcome(got) == _outcome(sequential), fanout
        assert got["work_s"].keys() == sequential["work_s"].keys()
    with open_repo(folder) as repo:
        assert [r.status for r in repo.registry.runs()] == ["completed"] * 3


@pytest.fixture
def dask_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [open(tmp_path / f"{n}.log", "w") for n in ("scheduler", "worker")]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    procs.append(
        subprocess.Popen(
            [BIN / "dask", "worker", address, "--nthreads", "2", "--no-dashboard", "--name", "lepton-test"],
            stdout=logs[1],
            stderr=subprocess.STDOUT,
        )
    )
    from distributed import Client

    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=120)
            yield address, client
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        for f in logs:
            f.close()


def test_dask_fanout_runs_the_candidates_on_the_cluster(prefect_api, folder, dask_cluster):  # type: ignore[no-untyped-def]
    from flows.retrain import RetrainParams, retrain

    address, client = dask_cluster
    sequential = retrain(RetrainParams(repo=str(folder), reuse=False))
    started = time.time()
    got = retrain(RetrainParams(repo=str(folder), reuse=False, fanout="dask", dask_address=address))
    assert _outcome(got) == _outcome(sequential)
    # the cluster ran them: the scheduler saw a train and an evaluate task of each candidate finish
    # ("memory": a result held; the later states, released and forgotten, come when the client
    # lets go of its futures, after the flow has returned, so they are not counted)
    finished = client.run_on_scheduler(
        lambda dask_scheduler: {
            name: p.state_counts.get("memory", 0) for name, p in dask_scheduler.task_prefixes.items()
        }
    )
    assert finished.get("train", 0) >= 3 and finished.get("evaluate", 0) >= 3, finished
    assert time.time() - started < 600


def test_dask_fanout_without_a_cluster_fails_before_any_work(prefect_api, folder, monkeypatch):  # type: ignore[no-untyped-def]
    from flows.retrain import RetrainParams, retrain

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(ConfigError, match="needs a Dask cluster"):
        retrain(RetrainParams(repo=str(folder), fanout="dask"))
    with open_repo(folder) as repo:
        assert repo.registry.runs() == [] and repo.registry.names() == []
    with pytest.raises(ValidationError, match="dask_address"):
        RetrainParams(fanout="dask", dask_address="http://scheduler:8786; rm -rf /")
    with pytest.raises(ValidationError, match="fanout"):
        RetrainParams(fanout="gpu")  # type: ignore[arg-type]
