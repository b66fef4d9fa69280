"""The retraining flow for real on Prefect (prefect_test_harness: a real
API server on a temporary database), on local+SQLite and S3+PostgreSQL:
first run, a 1% relabel, a no-change re-run served from the cache, replay."""

from __future__ import annotations

import pandas as pd
import pytest
from pipeline_helpers import prepare_data, project, write_project, write_repo

from lepton.deploy.bundle import load_bundle
from lepton.repo import open_repo


def _artifacts(flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: str(a.data) for a in found}


@pytest.mark.slow
def test_retrain_flow_end_to_end(prefect_api, backend, tmp_path):  # type: ignore[no-untyped-def]
    from flows.replay import ReplayParams, replay_run
    from flows.retrain import RetrainParams, retrain

    folder = write_repo(tmp_path / "repo", backend)
    doc = project()
    if backend.store.url.startswith("s3://"):  # deploy to S3 as well on the S3 stack
        doc["targets"]["local"] = {"kind": "s3", "path": "s3://lepton/deploy"}
    write_project(folder, doc)
    prepare_data(folder)
    params = RetrainParams(config="project.toml", repo=str(folder))

    first = retrain(params)
    assert first["promote"] and first["deployed"]["deployed"]
    assert first["winner"].startswith("bc@v")
    arts = _artifacts(first["flow_run_id"])
    assert first["run"] in arts["lepton-run"] and first["record"] in arts["lepton-run"]
    assert {"snapshot-data", "select", "deploy", "train-logreg", "evaluate-mlp-table"} <= set(arts)
    with open_repo(folder) as repo:
        run = repo.registry.get_run(first["execution"])
        assert run.status == "completed" and run.flow_run_id == first["flow_run_id"]
        record = repo.load(first["record"])
        assert record.flow_run_id == first["flow_run_id"]
        location = first["deployed"]["location"]
        from lepton.store.fs import open_location

        loc = open_location(location, repo.settings.s3)
    model = load_bundle(location, location=loc)
    frame = pd.read_parquet(folder / "data/features.parquet")
    truth = pd.read_csv(folder / "data/labels.csv")["label"].astype(str).to_numpy()
    assert (model.predict(frame) == truth).mean() > 0.9

    # 1% of labels corrected: only label-dependent steps run again
    prepare_data(folder, relabel=0.01)
    second = retrain(params)
    for m in second["models"]:
        reused = {s["name"]: s["reused"] for s in m["stages"]}
        assert reused["scaler"] is True, m
        assert not any(v for k, v in reused.items() if k != "scaler"), m
    with open_repo(folder) as repo:
        assert len(repo.registry.versions("bc-features")) == 1
        assert len(repo.registry.versions("bc-labels")) == 2
        new_model = next(m["model"] for m in second["models"] if m["candidate"] == "logreg")
        lin = repo.lineage(new_model, "upstream", 1)
        scaler = next(n for n in lin.nodes if n.kind == "fit" and "standard_scaler" in (n.name or ""))
        assert scaler.run_id == first["run"] != second["run"]

    # nothing changed: every cached step is served from Prefect's cache
    third = retrain(params)
    assert [m["model"] for m in third["models"]] == [m["model"] for m in second["models"]]

    # replay of the first run: every recomputed artifact identical
    report = replay_run(ReplayParams(run=first["execution"], repo=str(folder)))
    assert report["identical"], [i for i in report["items"] if i["status"] == "differs"]
    statuses = {i["artifact"].split()[0] for i in report["items"] if i["status"] == "identical"}
    assert {"component", "fit", "model", "evaluation", "decision"} <= statuses


@pytest.mark.slow
def test_flow_fails_cleanly_on_bad_wiring(prefect_api, tmp_path, backend):  # type: ignore[no-untyped-def]
    from flows.retrain import RetrainParams, retrain

    folder = write_repo(tmp_path / "repo", backend)
    doc = project()
    doc["candidates"][0]["components"] = [
        {"name": "head", "type": "sklearn.logistic_regression"},
        {"name": "pca", "type": "sklearn.pca", "params": {"n_components": 2}},
    ]
    write_project(folder, doc)
    prepare_data(folder)
    with pytest.raises(Exception, match="'pca' expects a numeric feature vector but 'head' produces"):
        retrain(RetrainParams(config="project.toml", repo=str(folder)))
    with open_repo(folder) as repo:
        kinds = {k for _, k, _ in repo.registry.names()}
        assert not kinds & {"fit", "model", "evaluation", "decision", "deployment"}
        assert [r.status for r in repo.registry.runs()] == ["failed"]


@pytest.mark.slow
def test_tasks_retry_storage_errors_only(prefect_api):  # type: ignore[no-untyped-def]
    from prefect import flow, task

    from lepton.errors import InvalidInput, StorageError
    from tasks.common import TASK_OPTIONS

    calls = {"storage": 0, "input": 0}

    @task(**{**TASK_OPTIONS, "retry_delay_seconds": 0, "persist_result": False})
    def flaky() -> str:
        calls["storage"] += 1
        if calls["storage"] == 1:
            raise StorageError("store unreachable (simulated once)")
        return "ok"

    @task(**{**TASK_OPTIONS, "retry_delay_seconds": 0, "persist_result": False})
    def bad_input() -> str:
        calls["input"] += 1
        raise InvalidInput("bad row 3")

    @flow
    def both() -> str:
        return flaky()

    @flow
    def failing() -> str:
        return bad_input()

    assert both() == "ok" and calls["storage"] == 2
    with pytest.raises(InvalidInput):
        failing()
    assert calls["input"] == 1
