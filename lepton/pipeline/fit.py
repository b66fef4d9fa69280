"""train: one candidate, reusing unchanged component fits."""

from __future__ import annotations

from typing import Any

from lepton.model_manifest import EvalSet
from lepton.pipeline.context import Context
from lepton.pipeline.prepare import _tables
from lepton.training.components import plan_candidate
from lepton.training.data import data_interface, feature_columns, load_arrays
from lepton.training.train import Inputs, train_candidate


def train(
    ctx: Context,
    candidate: str,
    dataset_id: str,
    labelset_id: str,
    evalset_id: str,
    spec_ids: list[str],
) -> dict[str, Any]:
    dataset, labelset = _tables(ctx, dataset_id, labelset_id)
    evalset = ctx.manifest(evalset_id)
    assert isinstance(evalset, EvalSet)
    cand = next(c for c in ctx.project.candidates if c.name == candidate)
    features = feature_columns(dataset, ctx.project.features, ctx.ref(dataset_id))
    interface = data_interface(dataset, features, ctx.ref(dataset_id))
    stages = plan_candidate(ctx.project, cand, ctx.types(), interface, evalset.classes)
    arrays = load_arrays(ctx.repo.store, dataset, labelset, evalset, features, interface, ctx.ref(dataset_id))

    def register(manifest, *, meta=None) -> str:  # type: ignore[no-untyped-def]
        return ctx.repo.commit(manifest, meta=meta, run_id=ctx.run_id).version.id

    trained = train_candidate(
        ctx.repo.store,
        ctx.memo(),
        register,
        model_name=ctx.project.name,
        candidate=candidate,
        stages=stages,
        spec_ids=spec_ids,
        arrays=arrays,
        inputs=Inputs(dataset_id, labelset_id, evalset_id, ctx.project.seed),
        run_id=ctx.run_id,
    )
    snap = ctx.repo.commit(
        trained.model,
        meta={"candidate": candidate, "train_time_s": round(trained.train_time_s, 6)},
        run_id=ctx.run_id,
        reuse_any=True,
    )
    return {
        "candidate": candidate,
        "model": snap.version.id,
        "model_ref": snap.version.ref,
        "stages": [
            {"name": s.name, "fit": s.fit, "reused": s.reused, "seconds": round(s.seconds, 4)}
            for s in trained.stages
        ],
    }
