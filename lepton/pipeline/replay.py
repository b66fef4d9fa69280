"""Replay a recorded run: every input pinned to the recorded versions, every
computation redone (no reuse), and a per-artifact report of whether the
replayed id equals the original (bit-identical) or differs, and where.

Measured costs (latency, memory, wall time) are observations, not
computations: a replay pins them like inputs and says so in the report.
Nothing is deployed by a replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from lepton.errors import InvalidInput, NotFound
from lepton.model_manifest import Decision, RunRecord
from lepton.pipeline import fit, prepare, score
from lepton.pipeline.context import Context
from lepton.pipeline.runs import read_config
from lepton.repo import Repo


class ReplayItem(BaseModel):
    model_config = ConfigDict(frozen=True)
    artifact: str  # e.g. "model cnn", "fit cnn/scaler"
    original: str
    replayed: str
    status: str  # identical | differs | pinned
    where: tuple[str, ...] = ()


class ReplayReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    record: str
    run: str
    items: tuple[ReplayItem, ...]

    @property
    def identical(self) -> bool:
        return all(i.status != "differs" for i in self.items)


def find_record(repo: Repo, ref: str) -> tuple[str, RunRecord]:
    """A run record by ref/id prefix, by logical run id, or by execution (flow run) id."""
    try:
        art = repo.resolve(ref)
        manifest = repo.load(art.id)
        if isinstance(manifest, RunRecord):
            return art.id, manifest
    except (NotFound, InvalidInput):
        pass
    for name, _kind, _ in repo.registry.names("run"):
        for version in reversed(repo.registry.versions(name)):
            record = repo.load(version.id)
            assert isinstance(record, RunRecord)
            ids = (record.run, record.flow_run_id, record.params.get("execution"))
            if any(i and (i == ref or i.split(":")[-1].startswith(ref)) for i in ids):
                return version.id, record
    raise NotFound(f"no run record matches '{ref}' (use `lepton runs list`)")


def replay(repo: Repo, ref: str, root: Path) -> ReplayReport:
    record_id, rec = find_record(repo, ref)
    project = read_config(repo, rec.config)
    ctx = Context(repo, project, root, rec.run, reuse=False)
    out = rec.outputs
    items: list[ReplayItem] = []
    comps = prepare.version_components(ctx, out["dataset"], out["labelset"], evalset_id=out["evalset"])
    for cand, ids in out["specs"].items():
        for i, (a, b) in enumerate(zip(ids, comps["specs"].get(cand, []), strict=False)):
            items.append(_compare(repo, f"component {cand}[{i}]", a, b))
    evaluated = []
    by_model = {e["model"]: e for e in out["evaluations"]}
    for m in out["models"]:
        cand = m["candidate"]
        trained = fit.train(ctx, cand, out["dataset"], out["labelset"], out["evalset"], out["specs"][cand])
        for old, new in zip(m["stages"], trained["stages"], strict=True):
            items.append(_compare(repo, f"fit {cand}/{old['name']}", old["fit"], new["fit"]))
        items.append(_compare(repo, f"model {cand}", m["model"], trained["model"]))
        original = by_model[m["model"]]
        again = score.evaluate(ctx, trained["model"], out["evalset"], cost_id=original["cost"])
        items.append(_compare(repo, f"evaluation {cand}", original["evaluation"], again["evaluation"]))
        items.append(
            ReplayItem(
                artifact=f"cost {cand}",
                original=original["cost"],
                replayed=again["cost"],
                status="pinned",
            )
        )
        evaluated.append(again)
    decision = repo.load(out["decision"])
    assert isinstance(decision, Decision)
    champion = _champion(decision)
    selected = score.select(ctx, evaluated, out["evalset"], pinned_champion=champion)
    items.append(_compare(repo, "decision", out["decision"], selected["decision"]))
    return ReplayReport(record=record_id, run=rec.run or "", items=tuple(items))


def _champion(decision: Decision) -> dict[str, Any]:
    roles = {p.role: p.id for p in decision.parents}
    if "champion" not in roles:
        return {"model": None}
    return {
        "model": roles["champion"],
        "evaluation": roles["champion-evaluation"],
        "cost": roles["champion-cost"],
        "candidate": "champion",
    }


def _compare(repo: Repo, what: str, original: str, replayed: str) -> ReplayItem:
    if original == replayed:
        return ReplayItem(artifact=what, original=original, replayed=replayed, status="identical")
    a = repo.load(original).model_dump(mode="json")
    b = repo.load(replayed).model_dump(mode="json")
    return ReplayItem(
        artifact=what,
        original=original,
        replayed=replayed,
        status="differs",
        where=tuple(_differences(a, b)),
    )


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths of the fields that differ (at most 20)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                out += _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out[:20]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                out += _differences(x, y, f"{path}[{i}]")
        return out[:20]
    return [path or "(value)"]
