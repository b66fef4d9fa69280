"""snapshot-data and version-components."""

from __future__ import annotations

from typing import Any

from lepton.data.chunks import read_chunks
from lepton.errors import InvalidInput, NotFound
from lepton.manifest import Labelset, TableDataset
from lepton.model_manifest import EvalSet
from lepton.pipeline.context import Context
from lepton.training.components import plan_candidate
from lepton.training.data import check_classes, data_interface, draw_evalset, feature_columns


def preflight(ctx: Context) -> None:
    """Cheap checks before any data is read: every component type exists and
    its parameters validate, policy and targets are consistent (the config
    model checked those on load)."""
    types = ctx.types()
    for cand in ctx.project.candidates:
        for cfg in cand.components:
            where = f"candidates.{cand.name}.components.{cfg.name}"
            types.get(cfg.type, where).from_config(cfg.params, where)


def snapshot_data(ctx: Context, dataset: str | None = None, labels: str | None = None) -> dict[str, Any]:
    """Snapshot the data and the labels; unchanged sources reuse their versions.

    ``dataset`` pins a version already snapshotted (a ref such as
    ``digits-features@v3``, or an id: what a data-arrival event carries)
    instead of snapshotting the config's source; ``labels`` likewise pins the
    labels, which must point at that dataset. Labels not pinned are
    snapshotted from their source against the dataset used."""
    p = ctx.project
    if dataset is not None:
        data_version, data_new = _pinned(ctx, dataset, p.data.name, "dataset", "data.name"), False
    else:
        snap = ctx.repo.snapshot_data(p.data.name, ctx.source(p.data.source), key=p.data.key)
        data_version, data_new = snap.version, snap.created
    if labels is not None:
        label_version, labels_new = _pinned(ctx, labels, p.labels.name, "labelset", "labels.name"), False
        parents = {x.id for x in ctx.manifest(label_version.id).parents if x.role == "dataset"}
        if data_version.id not in parents:
            raise InvalidInput(
                f"labels {label_version.ref} do not label dataset {data_version.ref}; "
                "pin labels snapshotted against it, or leave labels unpinned"
            )
    else:
        snap = ctx.repo.snapshot_labels(
            p.labels.name,
            ctx.source(p.labels.source),
            dataset=data_version.ref,
            key=p.labels.key,
            label=p.labels.label,
        )
        label_version, labels_new = snap.version, snap.created
    return {
        "dataset": data_version.id,
        "dataset_ref": data_version.ref,
        "dataset_new": data_new,
        "labelset": label_version.id,
        "labelset_ref": label_version.ref,
        "labelset_new": labels_new,
    }


def _pinned(ctx: Context, ref: str, name: str, kind: str, field: str):  # type: ignore[no-untyped-def]
    """A pinned version: it must exist, be of ``kind`` and carry the config's name."""
    try:
        version = ctx.repo.resolve(ref)
    except NotFound as e:
        raise NotFound(f"pinned {kind} {ref!r}: {e}") from e
    if version.kind != kind or version.name != name:
        raise InvalidInput(
            f"pinned {kind} {ref!r} is {version.kind} {version.ref}; the project's {field} is {name!r}"
        )
    return version


def _tables(ctx: Context, dataset_id: str, labelset_id: str) -> tuple[TableDataset, Labelset]:
    dataset, labelset = ctx.manifest(dataset_id), ctx.manifest(labelset_id)
    if not isinstance(dataset, TableDataset):
        raise InvalidInput(f"{ctx.ref(dataset_id)}: training reads tables; this dataset is a file tree")
    if not isinstance(labelset, Labelset):
        raise InvalidInput(f"{ctx.ref(labelset_id)} is not a labelset")
    return dataset, labelset


def pinned_evalset(ctx: Context, dataset_id: str, labelset_id: str) -> str:
    """The evaluation set: the latest version of its name, or drawn now if none."""
    spec = ctx.project.evaluation
    _, labelset = _tables(ctx, dataset_id, labelset_id)
    try:
        current = ctx.repo.registry.latest(spec.name)
    except NotFound:
        labels = read_chunks(ctx.repo.store, labelset.chunks)
        drawn = draw_evalset(
            ctx.repo.store,
            spec.name,
            labels,
            labelset,
            dataset_id,
            labelset_id,
            spec.fraction,
            spec.seed,
        )
        return ctx.repo.commit(drawn, message="drawn for evaluation").version.id
    evalset = ctx.manifest(current.id)
    if not isinstance(evalset, EvalSet):
        raise InvalidInput(f"evaluation.name '{spec.name}' is a {evalset.kind}, not an evaluation set")
    check_classes(labelset, ctx.ref(labelset_id), evalset, current.ref)
    return current.id


def version_components(
    ctx: Context, dataset_id: str, labelset_id: str, evalset_id: str | None = None
) -> dict[str, Any]:
    """Check every wiring against the data's interface, then version each
    component spec. Fails before any training on the first misfit."""
    dataset, labelset = _tables(ctx, dataset_id, labelset_id)
    ref = ctx.ref(dataset_id)
    features = feature_columns(dataset, ctx.project.features, ref)
    interface = data_interface(dataset, features, ref)
    if evalset_id is None:
        evalset_id = pinned_evalset(ctx, dataset_id, labelset_id)
    else:  # a replay pins the evaluation set the run used
        pinned = ctx.manifest(evalset_id)
        assert isinstance(pinned, EvalSet)
        check_classes(labelset, ctx.ref(labelset_id), pinned, ctx.ref(evalset_id))
    evalset = ctx.manifest(evalset_id)
    assert isinstance(evalset, EvalSet)
    types = ctx.types()
    plans = {
        c.name: plan_candidate(ctx.project, c, types, interface, evalset.classes)
        for c in ctx.project.candidates
    }
    specs: dict[str, list[str]] = {}
    for name, stages in plans.items():
        specs[name] = [ctx.repo.commit(s.spec, run_id=ctx.run_id).version.id for s in stages]
    return {"evalset": evalset_id, "specs": specs, "features": list(features)}
