"""The pipeline steps without Prefect (plain functions over ids), on both
stacks: bad input fails before expensive work and leaves no half-written
version; deploy, rollback, bundles, replay."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest
from pipeline_helpers import prepare_data, project, write_project, write_repo

from lepton.components import WiringError
from lepton.deploy.bundle import load_bundle
from lepton.deploy.compat import IncompatibleTarget
from lepton.errors import ConfigError, IntegrityError, InvalidInput
from lepton.pipeline import fit, prepare, release, score
from lepton.pipeline.context import Context, logical_run_id
from lepton.project import load_project, parse_project
from lepton.repo import open_repo


@pytest.fixture
def workdir(tmp_path, backend):  # type: ignore[no-untyped-def]
    folder = write_repo(tmp_path / "repo", backend)
    prepare_data(folder)
    return folder


def _ctx(workdir: Path, doc: dict) -> Context:  # type: ignore[type-arg]
    cfg, root = load_project(write_project(workdir, doc))
    return Context(open_repo(workdir), cfg, root)


def _run_steps(ctx: Context) -> dict:  # type: ignore[type-arg]
    snap = prepare.snapshot_data(ctx)
    ctx = Context(
        ctx.repo, ctx.project, ctx.root, logical_run_id(ctx.project, snap["dataset"], snap["labelset"])
    )
    comps = prepare.version_components(ctx, snap["dataset"], snap["labelset"])
    evaluated = []
    for cand in ctx.project.candidates:
        trained = fit.train(
            ctx, cand.name, snap["dataset"], snap["labelset"], comps["evalset"], comps["specs"][cand.name]
        )
        evaluated.append(score.evaluate(ctx, trained["model"], comps["evalset"]))
    decision = score.select(ctx, evaluated, comps["evalset"])
    return {"ctx": ctx, "decision": decision, "deploy": release.deploy(ctx, decision["decision"]), **comps}


def _kinds(ctx: Context) -> set[str]:
    return {kind for _, kind, _ in ctx.repo.registry.names()}


def test_incompatible_wiring_fails_before_training(workdir):  # type: ignore[no-untyped-def]
    doc = project()
    doc["candidates"][1]["components"] = [
        {"name": "scaler", "type": "sklearn.standard_scaler"},
        {"name": "to-image", "type": "reshape", "params": {"shape": [1, 7, 7]}},
        {"name": "cnn", "type": "torch.small_cnn"},
    ]
    ctx = _ctx(workdir, doc)
    snap = prepare.snapshot_data(ctx)
    with pytest.raises(WiringError) as err:
        prepare.version_components(ctx, snap["dataset"], snap["labelset"])
    assert "'to-image'" in str(err.value) and "'scaler'" in str(err.value)
    assert not _kinds(ctx) & {"component", "fit", "model"}  # nothing versioned, nothing trained


@pytest.mark.parametrize(
    ("wiring", "refused"),
    [
        (
            [
                {"name": "to-grid", "type": "reshape", "params": {"shape": [5, 6]}},
                {"name": "scaler", "type": "sklearn.standard_scaler"},
                {"name": "head", "type": "sklearn.logistic_regression"},
            ],
            "to-grid",
        ),
        (
            [
                {"name": "to-image", "type": "reshape", "params": {"shape": [1, 3, 10]}},
                {"name": "cnn", "type": "torch.small_cnn"},
            ],
            "cnn",
        ),
        (
            [
                {"name": "to-image", "type": "reshape", "params": {"shape": [30, 1, 1]}},
                {"name": "cnn", "type": "torch.small_cnn"},
            ],
            "cnn",
        ),
    ],
)
def test_wiring_training_cannot_run_fails_before_training(workdir, wiring, refused):  # type: ignore[no-untyped-def]
    """On the 30 breast_cancer features: a 2-D reshape (neither vector nor
    image) and images smaller than the CNN's two pools need (4x4) used to
    pass the check and crash in training."""
    doc = project()
    doc["candidates"][1]["components"] = wiring
    ctx = _ctx(workdir, doc)
    snap = prepare.snapshot_data(ctx)
    with pytest.raises(WiringError, match=f"component '{refused}'"):
        prepare.version_components(ctx, snap["dataset"], snap["labelset"])
    assert not _kinds(ctx) & {"component", "fit", "model"}


def test_policy_with_unknown_metric_is_refused_naming_the_field(tmp_path):  # type: ignore[no-untyped-def]
    doc = project()
    doc["policy"]["primary"] = "f2_score"
    with pytest.raises(ConfigError, match="policy.primary") as err:
        load_project(write_project(tmp_path, doc))
    assert "f2_score" in str(err.value)
    doc = project()
    doc["policy"]["constraints"] = [{"metric": "latency_p99_ms", "max": 3}]
    with pytest.raises(ConfigError, match="latency_p99_ms"):
        parse_project(tomllib.loads(write_project(tmp_path, doc).read_text()))


def test_bad_config_field_is_named(tmp_path):  # type: ignore[no-untyped-def]
    doc = project()
    doc["evaluation"]["fraction"] = 1.5
    with pytest.raises(ConfigError, match="evaluation.fraction"):
        load_project(write_project(tmp_path, doc))
    doc = project()
    doc["deploy"]["target"] = "nowhere"
    with pytest.raises(ConfigError, match="nowhere"):
        load_project(write_project(tmp_path, doc))


def test_labels_whose_classes_differ_from_the_evaluation_set(workdir):  # type: ignore[no-untyped-def]
    ctx = _ctx(workdir, project())
    _run_steps(ctx)
    labels = pd.read_csv(workdir / "data/labels.csv")
    labels.loc[:4, "label"] = "unsure"  # a class the pinned evaluation set does not have
    labels.to_csv(workdir / "data/labels.csv", index=False)
    models_before = len(ctx.repo.registry.versions("bc"))
    snap = prepare.snapshot_data(ctx)
    with pytest.raises(InvalidInput, match="differ from evaluation set bc-eval@v1") as err:
        prepare.version_components(ctx, snap["dataset"], snap["labelset"])
    assert "unsure" in str(err.value)
    assert len(ctx.repo.registry.versions("bc")) == models_before


def test_incompatible_target_is_refused_before_anything_is_written(workdir):  # type: ignore[no-untyped-def]
    doc = project()
    doc["targets"]["old"] = {
        "kind": "directory",
        "path": "deploy-old",
        "python": "3.9",
        "packages": {"scikit-learn": "0.24.2", "numpy": "1.19.0", "lepton": "0.1.0", "skops": "0.16.0"},
    }
    ctx = _ctx(workdir, doc)
    out = _run_steps(ctx)
    winner = out["decision"]["winner"]
    history = ctx.repo.registry.alias_history("bc", "production")
    with pytest.raises(IncompatibleTarget) as err:
        release.deploy_model(ctx, winner, "old", "staging")
    message = str(err.value)
    assert "python 3.9" in message and "scikit-learn 0.24.2" in message
    assert not (workdir / "deploy-old").exists()
    assert ctx.repo.registry.alias_history("bc", "production") == history
    assert not [a for a in ctx.repo.registry.aliases("bc") if a.alias == "staging"]


def test_deploy_bundle_predicts_and_refuses_tampering(workdir):  # type: ignore[no-untyped-def]
    ctx = _ctx(workdir, project())
    out = _run_steps(ctx)
    assert out["deploy"]["deployed"], out["decision"]["reason"]
    model = load_bundle(str(workdir / "deploy"))
    frame = pd.read_parquet(workdir / "data/features.parquet")
    labels = pd.read_csv(workdir / "data/labels.csv")
    accuracy = (model.predict(frame) == labels["label"].astype(str).to_numpy()).mean()
    assert accuracy > 0.9
    assert model.model_id == out["decision"]["winner"]
    bundle = Path(out["deploy"]["location"])
    weights = next(p for p in (bundle / "parts").rglob("*") if p.is_file() and p.name != "spec.json")
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=weights.name):
        load_bundle(str(workdir / "deploy"))


def test_rollback_moves_alias_back_and_redeploys(workdir):  # type: ignore[no-untyped-def]
    ctx = _ctx(workdir, project())
    out = _run_steps(ctx)
    first = out["decision"]["winner"]
    other = next(v for v in ctx.repo.registry.versions("bc") if v.id != first)
    release.deploy_model(ctx, other.id, "local", "production", reason="manual promotion")
    assert ctx.repo.registry.alias("bc", "production").id == other.id
    back = release.rollback(ctx, "production")
    assert ctx.repo.registry.alias("bc", "production").id == first
    assert back["model"] == first
    assert load_bundle(str(workdir / "deploy")).model_id == first  # CURRENT points at it again
    moves = ctx.repo.registry.alias_history("bc", "production")
    assert [m.reason.split()[0] if m.reason else None for m in moves][-1] == "rollback"
    with pytest.raises(InvalidInput, match="no earlier version"):
        release.rollback(ctx, "production")


def test_relabel_reuses_unsupervised_fits(workdir):  # type: ignore[no-untyped-def]
    ctx = _ctx(workdir, project())
    _run_steps(ctx)
    prepare_data(workdir, relabel=0.01)
    dataset_versions = len(ctx.repo.registry.versions("bc-features"))
    snap = prepare.snapshot_data(ctx)
    assert not snap["dataset_new"] and snap["labelset_new"]
    assert len(ctx.repo.registry.versions("bc-features")) == dataset_versions
    run = Context(
        ctx.repo, ctx.project, ctx.root, logical_run_id(ctx.project, snap["dataset"], snap["labelset"])
    )
    comps = prepare.version_components(run, snap["dataset"], snap["labelset"])
    trained = fit.train(
        run, "logreg", snap["dataset"], snap["labelset"], comps["evalset"], comps["specs"]["logreg"]
    )
    assert [(s["name"], s["reused"]) for s in trained["stages"]] == [("scaler", True), ("head", False)]


def _train_logreg(workdir: Path, features: list[str]) -> list[tuple[str, bool]]:
    """prepare + fit for the logreg candidate on ``features``: (stage, reused) pairs."""
    ctx = _ctx(workdir, project(features=features, candidates=project()["candidates"][:1]))
    snap = prepare.snapshot_data(ctx)
    comps = prepare.version_components(ctx, snap["dataset"], snap["labelset"])
    trained = fit.train(
        ctx, "logreg", snap["dataset"], snap["labelset"], comps["evalset"], comps["specs"]["logreg"]
    )
    return [(s["name"], s["reused"]) for s in trained["stages"]]


def test_other_feature_columns_are_fitted_anew(workdir):  # type: ignore[no-untyped-def]
    """The input interface says only how many features there are: another
    list of as many columns, or the same columns in another order, must not
    reuse the fits made on the first."""
    fresh = [("scaler", False), ("head", False)]
    assert _train_logreg(workdir, ["mean_radius", "mean_texture"]) == fresh
    assert _train_logreg(workdir, ["mean_area", "mean_smoothness"]) == fresh
    assert _train_logreg(workdir, ["mean_texture", "mean_radius"]) == fresh
    assert _train_logreg(workdir, ["mean_radius", "mean_texture"]) == [("scaler", True), ("head", True)]


def test_class_without_training_samples_is_refused_before_training(workdir):  # type: ignore[no-untyped-def]
    """One sample of a new class: the evaluation set draws it, none is left to
    train on, and a model fitted without the class would mislabel. Training
    is refused with one error naming the class, before any fit."""
    labels = pd.read_csv(workdir / "data/labels.csv")
    labels.loc[3, "label"] = "indeterminate"
    labels.to_csv(workdir / "data/labels.csv", index=False)
    ctx = _ctx(workdir, project())
    snap = prepare.snapshot_data(ctx)
    comps = prepare.version_components(ctx, snap["dataset"], snap["labelset"])
    with pytest.raises(InvalidInput, match="no training samples") as err:
        fit.train(
            ctx, "logreg", snap["dataset"], snap["labelset"], comps["evalset"], comps["specs"]["logreg"]
        )
    assert "'indeterminate' (1 labelled sample(s) in all" in str(err.value)
    assert "benign" not in str(err.value) and "malignant" not in str(err.value)
    assert not _kinds(ctx) & {"fit", "model"}


PLUGIN = """
import numpy as np
from lepton.components import Component
from lepton.components.interface import require


class Double(Component):
    type = "user.double"

    def output(self, given, classes, name, upstream):
        require(given, ("vector",), upstream=upstream, component=name, wants="a vector")
        return given

    def fit(self, x, y, seed):
        return None

    def transform(self, x):
        return np.asarray(x, dtype=np.float32) * 2

    def save(self):
        return {}

    def load(self, files):
        return None


LEPTON_COMPONENTS = [Double]
"""


def test_user_component_from_a_plugin(workdir, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "my_components.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(plugin_dir))
    doc = project(plugins=["my_components"])
    doc["candidates"] = [
        {
            "name": "doubled",
            "components": [
                {"name": "double", "type": "user.double"},
                {"name": "head", "type": "sklearn.logistic_regression"},
            ],
        }
    ]
    ctx = _ctx(workdir, doc)
    out = _run_steps(ctx)
    model = ctx.repo.load(out["decision"]["winner"])
    assert [p.type for p in model.parts] == ["user.double", "sklearn.logistic_regression"]
    assert out["deploy"]["deployed"]
    doc["plugins"] = ["no_such_module_here"]
    with pytest.raises(InvalidInput, match="no_such_module_here"):
        prepare.preflight(_ctx(workdir, doc))
