"""A retraining run can pin the data version it trains on (what a
data-arrival trigger passes): the pinned version is used as is, labels are
snapshotted against it, and a pin of the wrong name or kind fails before
any work, with the ref in the message. The flow's parameters reject a
malformed ref before the run starts."""

from __future__ import annotations

import pandas as pd
import pytest
from pipeline_helpers import prepare_data, project, write_project, write_repo
from pydantic import ValidationError

from lepton.errors import InvalidInput, NotFound
from lepton.pipeline import prepare
from lepton.pipeline.context import Context
from lepton.project import load_project
from lepton.repo import open_repo


@pytest.fixture
def ctx(tmp_path, backend):  # type: ignore[no-untyped-def]
    folder = write_repo(tmp_path / "repo", backend)
    prepare_data(folder)
    cfg, root = load_project(write_project(folder, project()))
    with open_repo(folder) as repo:
        yield Context(repo, cfg, root)


def test_a_pinned_dataset_is_used_instead_of_the_source(ctx):  # type: ignore[no-untyped-def]
    first = prepare.snapshot_data(ctx)
    source = ctx.source(ctx.project.data.source)
    frame = pd.read_parquet(source)
    frame.iloc[:10].to_parquet(source)  # the source moves on; the pin must not follow it
    pinned = prepare.snapshot_data(ctx, dataset=first["dataset_ref"])
    assert pinned["dataset"] == first["dataset"] and pinned["dataset_new"] is False
    assert pinned["labelset"] == first["labelset"]
    assert [v.version for v in ctx.repo.registry.versions(ctx.project.data.name)] == [1]
    by_id = prepare.snapshot_data(ctx, dataset=first["dataset"], labels=first["labelset_ref"])
    assert (by_id["dataset"], by_id["labelset"]) == (first["dataset"], first["labelset"])


def test_bad_pins_fail_before_any_work_naming_the_ref(ctx):  # type: ignore[no-untyped-def]
    first = prepare.snapshot_data(ctx)
    with pytest.raises(NotFound, match="pinned dataset 'nope@v1'"):
        prepare.snapshot_data(ctx, dataset="nope@v1")
    with pytest.raises(InvalidInput, match=rf"pinned dataset '{first['labelset_ref']}' is labelset"):
        prepare.snapshot_data(ctx, dataset=first["labelset_ref"])
    other = ctx.repo.snapshot_data("other", pd.DataFrame({"id": [1, 2]}), key="id")
    with pytest.raises(InvalidInput, match="the project's data.name is"):
        prepare.snapshot_data(ctx, dataset=other.version.ref)
    labels = ctx.repo.snapshot_labels(
        ctx.project.labels.name,
        pd.DataFrame({"id": [1, 2], "y": ["a", "b"]}),
        dataset="other",
        key="id",
        label="y",
    )
    with pytest.raises(InvalidInput, match=f"labels {labels.version.ref} do not label dataset"):
        prepare.snapshot_data(ctx, dataset=first["dataset_ref"], labels=labels.version.ref)


def test_flow_parameters_reject_malformed_refs():  # type: ignore[no-untyped-def]
    from flows.retrain import RetrainParams

    assert RetrainParams(dataset="digits-features@v3").dataset == "digits-features@v3"
    assert RetrainParams(dataset="blake3:abcdef0123").dataset == "blake3:abcdef0123"
    for bad in ("../etc@v1", "a b", "x@", "blake3:XYZ"):
        with pytest.raises(ValidationError, match="dataset"):
            RetrainParams(dataset=bad)
    schema = RetrainParams.model_json_schema()
    assert "data-arrival trigger" in schema["properties"]["dataset"]["description"]
