"""evaluate and select."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lepton.data.chunks import read_chunks
from lepton.errors import NotFound
from lepton.evaluation import (
    CandidateInput,
    build_decision,
    measure_latency,
    measure_peak_memory,
    quality,
)
from lepton.manifest import Parent, TableDataset
from lepton.model_manifest import Cost, Decision, EvalSet, Evaluation, Model
from lepton.pipeline.context import Context, key_of
from lepton.pipeline.loading import fit_objects, load_model

MB = float(1 << 20)


def _held_out(ctx: Context, evalset_id: str) -> tuple[EvalSet, np.ndarray, np.ndarray]:
    """The evaluation set, its sample ids and their true class indices."""
    evalset = ctx.manifest(evalset_id)
    assert isinstance(evalset, EvalSet)
    held = read_chunks(ctx.repo.store, evalset.chunks, [evalset.key, evalset.label])
    index = {c: i for i, c in enumerate(evalset.classes)}
    y = np.array([index[v] for v in held[evalset.label].astype(str)], dtype=np.int64)
    return evalset, held[evalset.key].astype(str).to_numpy(), y


def _eval_inputs(
    ctx: Context, evalset_id: str, features: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, EvalSet]:
    """The evaluation samples' features (from the dataset version the set was
    drawn from, so every model sees identical inputs), ids and true classes."""
    evalset, keys, y = _held_out(ctx, evalset_id)
    dataset = ctx.manifest(evalset.parent("dataset") or "")
    assert isinstance(dataset, TableDataset) and dataset.key
    frame = read_chunks(ctx.repo.store, dataset.chunks, [dataset.key, *features])
    frame = frame.set_index(frame[dataset.key].astype(str)).loc[keys]
    return frame.reset_index(drop=True), keys, y, evalset


def evaluate(ctx: Context, model_id: str, evalset_id: str, cost_id: str | None = None) -> dict[str, Any]:
    """Quality on the pinned evaluation set (deterministic) and cost (measured).
    A replay passes the original ``cost_id``: measurements are observations
    to pin, not computations to repeat."""
    spec = ctx.project.evaluation
    memo = ctx.memo()
    q_key = key_of(
        step="evaluate",
        model=model_id,
        evalset=evalset_id,
        bootstrap=spec.bootstrap,
        confidence=spec.confidence,
        seed=spec.seed,
    )
    c_key = key_of(step="cost", model=model_id, evalset=evalset_id)
    done_q, done_c = memo.memo_get(q_key), cost_id or memo.memo_get(c_key)
    model = ctx.manifest(model_id)
    assert isinstance(model, Model)
    if done_q and done_c:
        return {
            "model": model_id,
            "evaluation": done_q,
            "cost": done_c,
            "candidate": model.candidate,
            "reused": True,
        }
    loaded = load_model(ctx.repo, model_id, ctx.types())
    frame, keys, y, evalset = _eval_inputs(ctx, evalset_id, model.features)
    x = loaded.inputs(frame)
    proba = loaded.predict_proba(x)
    pred = proba.argmax(axis=1)
    base = f"{ctx.project.name}.{model.candidate}"
    if not done_q:
        report = quality(
            y,
            pred,
            len(evalset.classes),
            classes=evalset.classes,
            bootstrap=spec.bootstrap,
            confidence=spec.confidence,
            seed=spec.seed,
        )
        table = pa.table(
            {
                "sample_id": keys,
                "label": y,
                "prediction": pred.astype(np.int64),
            }
        )
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        evaluation = Evaluation(
            name=f"{base}.evaluation",
            predictions=ctx.repo.store.put_bytes(buf.getvalue()),
            parents=(Parent(id=model_id, role="model"), Parent(id=evalset_id, role="evalset")),
            run=ctx.run_id,
            **report.evaluation_fields(),
        )
        done_q = ctx.repo.commit(evaluation, run_id=ctx.run_id).version.id
        memo.memo_put(q_key, done_q, "evaluation")
    if not done_c:
        cost = Cost(
            name=f"{base}.cost",
            metrics=_cost(ctx, model, loaded, x),
            parents=(Parent(id=model_id, role="model"), Parent(id=evalset_id, role="evalset")),
            run=ctx.run_id,
        )
        done_c = ctx.repo.commit(cost, run_id=ctx.run_id).version.id
        memo.memo_put(c_key, done_c, "cost")
    return {
        "model": model_id,
        "evaluation": done_q,
        "cost": done_c,
        "candidate": model.candidate,
        "reused": False,
    }


def _cost(ctx: Context, model: Model, loaded, x: np.ndarray) -> dict[str, float]:  # type: ignore[no-untyped-def]
    fits = fit_objects(ctx.repo, model)
    size = sum(ctx.repo.store.size(key) for fit, _ in fits for key in fit.files.values())
    train_time = 0.0
    for _, fit_id in fits:
        rows = ctx.repo.registry.by_id(fit_id)
        train_time += float(rows[0].meta.get("train_time_s", 0.0)) if rows else 0.0
    metrics = measure_latency(loaded.predict_proba, x)
    metrics.update(
        size_mb=size / MB,
        n_params=float(sum(fit.n_params for fit, _ in fits)),
        peak_memory_mb=measure_peak_memory(loaded.predict_proba, x),
        train_time_s=train_time,
    )
    return {k: round(float(v), 6) for k, v in metrics.items()}


def _candidate_input(ctx: Context, item: dict[str, Any]) -> CandidateInput:
    evaluation, cost = ctx.manifest(item["evaluation"]), ctx.manifest(item["cost"])
    assert isinstance(evaluation, Evaluation) and isinstance(cost, Cost)
    preds = pq.read_table(io.BytesIO(ctx.repo.store.read_bytes(evaluation.predictions)))
    return CandidateInput(
        model=item["model"],
        name=f"{ctx.ref(item['model'])} ({item['candidate']})",
        evaluation=item["evaluation"],
        cost=item["cost"],
        quality_metrics={k: v.value for k, v in evaluation.metrics.items()},
        cost_metrics=dict(cost.metrics),
        predictions=preds.column("prediction").to_numpy(),
    )


def champion_model(ctx: Context) -> str | None:
    alias = ctx.project.policy.champion_alias
    try:
        return ctx.repo.registry.alias(ctx.project.name, alias).id
    except NotFound:
        return None


def select(
    ctx: Context,
    evaluated: list[dict[str, Any]],
    evalset_id: str,
    pinned_champion: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply the declared policy; the decision records every candidate,
    every constraint, the paired test and one sentence of reason.
    ``pinned_champion`` (a replay) fixes the champion and its evaluation
    instead of reading the current alias."""
    if pinned_champion is not None:
        champ = pinned_champion.get("model") and pinned_champion
    else:
        champ_id = champion_model(ctx)
        champ = None
        if champ_id is not None:
            known = next((e for e in evaluated if e["model"] == champ_id), None)
            champ = known or evaluate(ctx, champ_id, evalset_id)
    candidates = [_candidate_input(ctx, e) for e in evaluated]
    evalset, _, y = _held_out(ctx, evalset_id)
    parents = [(evalset_id, "evalset")]
    for e in evaluated:
        parents += [(e["model"], "candidate"), (e["evaluation"], "evaluation"), (e["cost"], "cost")]
    if champ:
        parents += [
            (champ["model"], "champion"),
            (champ["evaluation"], "champion-evaluation"),
            (champ["cost"], "champion-cost"),
        ]
    decision = build_decision(
        f"{ctx.project.name}.decision",
        list(dict.fromkeys(parents)),
        ctx.project.policy,
        candidates,
        _candidate_input(ctx, champ) if champ else None,
        y,
        len(evalset.classes),
        run=ctx.run_id,
    )
    snap = ctx.repo.commit(decision, run_id=ctx.run_id)
    return _summary(ctx, snap.version.id, decision)


def _summary(ctx: Context, decision_id: str, d: Decision) -> dict[str, Any]:
    return {
        "decision": decision_id,
        "winner": d.winner,
        "winner_ref": ctx.ref(d.winner) if d.winner else None,
        "promote": d.promote,
        "reason": d.reason,
    }
