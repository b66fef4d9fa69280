"""One Prefect task per pipeline step. Each passes artifact ids, never objects."""

from __future__ import annotations

from typing import Any

from prefect import task

from lepton.pipeline import fit, prepare, release, score
from tasks.common import TASK_OPTIONS, Job, context, ids_cache_key, publish, short, timed


@task(name="snapshot-data", **TASK_OPTIONS)
def snapshot_data(job: Job) -> dict[str, Any]:
    with context(job) as ctx, timed() as clock:
        prepare.preflight(ctx)
        out = prepare.snapshot_data(ctx, job.dataset, job.labels)
    out["work_s"] = clock()
    publish(
        "snapshot-data",
        f"### Data\n- dataset **{out['dataset_ref']}** `{short(out['dataset'])}`"
        f" ({'new' if out['dataset_new'] else 'unchanged'})\n"
        f"- labels **{out['labelset_ref']}** `{short(out['labelset'])}`"
        f" ({'new' if out['labelset_new'] else 'unchanged'})",
    )
    return out


@task(name="version-components", cache_key_fn=ids_cache_key("version-components"), **TASK_OPTIONS)
def version_components(job: Job, dataset: str, labelset: str) -> dict[str, Any]:
    with context(job) as ctx:
        with timed() as clock:
            out = prepare.version_components(ctx, dataset, labelset)
        out["work_s"] = clock()
        lines = [
            f"- **{cand}**: " + " -> ".join(f"`{short(i)}`" for i in ids)
            for cand, ids in out["specs"].items()
        ]
    publish(
        "version-components",
        f"### Components\nevaluation set `{short(out['evalset'])}`\n" + "\n".join(lines),
    )
    return out


@task(name="train", cache_key_fn=ids_cache_key("train"), **TASK_OPTIONS)
def train(
    job: Job, candidate: str, dataset: str, labelset: str, evalset: str, specs: list[str]
) -> dict[str, Any]:
    with context(job) as ctx, timed() as clock:
        out = fit.train(ctx, candidate, dataset, labelset, evalset, specs)
    out["work_s"] = clock()
    rows = [
        {
            "component": s["name"],
            "fit": short(s["fit"]),
            "reused": s["reused"],
            "seconds": s["seconds"],
        }
        for s in out["stages"]
    ]
    publish(f"train-{candidate}", f"### {candidate}: {out['model_ref']} `{short(out['model'])}`", rows)
    return out


@task(name="evaluate", cache_key_fn=ids_cache_key("evaluate"), **TASK_OPTIONS)
def evaluate(job: Job, model: str, evalset: str) -> dict[str, Any]:
    with context(job) as ctx:
        with timed() as clock:
            out = score.evaluate(ctx, model, evalset)
        out["work_s"] = clock()
        evaluation, cost = ctx.manifest(out["evaluation"]), ctx.manifest(out["cost"])
        rows = [
            {
                "metric": k,
                "value": round(v.value, 4),
                "low": round(v.low, 4),
                "high": round(v.high, 4),
            }
            for k, v in evaluation.metrics.items()  # type: ignore[attr-defined]
        ] + [{"metric": k, "value": v, "low": None, "high": None} for k, v in cost.metrics.items()]  # type: ignore[attr-defined]
    publish(
        f"evaluate-{out['candidate']}",
        f"### Evaluation of {out['candidate']} `{short(model)}`",
        rows,
    )
    return out


@task(name="select", **TASK_OPTIONS)
def select(job: Job, evaluated: list[dict[str, Any]], evalset: str) -> dict[str, Any]:
    with context(job) as ctx:
        with timed() as clock:
            out = score.select(ctx, evaluated, evalset)
        out["work_s"] = clock()
        decision = ctx.manifest(out["decision"])
        rows = [
            {
                "candidate": c.name,
                "primary": round(c.primary, 4),
                "eligible": c.eligible,
                "constraints": "; ".join(f"{r.metric} {r.value:.3g} {r.op} {r.limit}" for r in c.constraints),
            }
            for c in decision.candidates  # type: ignore[attr-defined]
        ]
    publish("select", f"### Decision `{short(out['decision'])}`\n{out['reason']}", rows)
    return out


@task(name="deploy", **TASK_OPTIONS)
def deploy(job: Job, decision: str) -> dict[str, Any]:
    with context(job) as ctx, timed() as clock:
        out = release.deploy(ctx, decision)
    out["work_s"] = clock()
    if out["deployed"]:
        text = f"### Deployed {out['model_ref']} to `{out['target']}`\n"
        text += f"{out['location']} (alias {out['alias']})"
    else:
        text = f"### Not deployed\n{out['why']}"
    publish("deploy", text)
    return out
