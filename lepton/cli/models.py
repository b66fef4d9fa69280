"""`lepton models ...` and `lepton runs ...`: read-only views of the
retraining results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lepton.cli.context import repo_from_cwd
from lepton.cli.output import out, print_json, short

# Manifests and the registry are imported where they are used, not at the
# CLI's start-up (pydantic, the model components, SQLAlchemy).
if TYPE_CHECKING:
    from lepton.model_manifest import Evaluation, Model
    from lepton.repo import Repo

models_app = typer.Typer(help="Model versions: list, show, compare.", no_args_is_help=True)
runs_app = typer.Typer(help="Retraining runs.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _evaluations(repo: Repo, model_id: str) -> list[tuple[str, Evaluation]]:
    from lepton.model_manifest import Evaluation
    from lepton.registry import lineage

    lin = lineage.walk(repo.engine, model_id, "downstream", 1)
    found = []
    for node in lin.nodes:
        if node.kind == "evaluation":
            ev = repo.load(node.id)
            assert isinstance(ev, Evaluation)
            found.append((node.id, ev))
    return found


def _model(repo: Repo, ref: str) -> tuple[Any, Model]:
    from lepton.model_manifest import Model

    art = repo.resolve(ref)
    m = repo.load(art.id)
    if not isinstance(m, Model):
        from lepton.errors import InvalidInput

        raise InvalidInput(f"{art.ref} is a {m.kind}, not a model")
    return art, m


@models_app.command("list")
def models_list(name: Annotated[str | None, typer.Argument()] = None, as_json: Json = False) -> None:
    """Model versions (of NAME, or of every model)."""
    with repo_from_cwd() as repo:
        names = [name] if name else [n for n, _, _ in repo.registry.names("model")]
        rows = []
        for n in names:
            aliases = repo.registry.aliases(n)
            for v in repo.registry.versions(n):
                here = sorted(a.alias for a in aliases if a.version == v.version)
                rows.append(
                    {
                        "ref": v.ref,
                        "id": v.id,
                        "candidate": v.meta.get("candidate"),
                        "created_at": v.created_at.isoformat(),
                        "aliases": here,
                    }
                )
    if as_json:
        print_json(rows)
        return
    t = Table("model", "id", "candidate", "created", "aliases")
    for r in rows:
        t.add_row(
            r["ref"], short(r["id"]), r["candidate"] or "", r["created_at"][:16], ", ".join(r["aliases"])
        )
    out.print(t)


@models_app.command("show")
def models_show(ref: str, as_json: Json = False) -> None:
    """A model: its components, data, labels, seed, code, environment, metrics."""
    with repo_from_cwd() as repo:
        art, m = _model(repo, ref)
        evals = _evaluations(repo, art.id)
        parents = {p.role: p.id for p in m.parents}
        info = {
            "artifact": art.model_dump(mode="json"),
            "model": m.model_dump(mode="json"),
            "dataset": _ref(repo, parents.get("dataset")),
            "labelset": _ref(repo, parents.get("labelset")),
            "evalset": _ref(repo, parents.get("evalset")),
            "evaluations": {i: e.model_dump(mode="json") for i, e in evals},
        }
    if as_json:
        print_json(info)
        return
    out.print(f"[bold]{art.ref}[/bold] ({m.candidate})  {art.id}")
    out.print(f"data {info['dataset']}, labels {info['labelset']}, evaluation set {info['evalset']}")
    out.print(
        f"seed {m.seed}, code {short(m.code)}, python {m.environment.python}, "
        + ", ".join(f"{k} {v}" for k, v in sorted(m.environment.packages.items()))
    )
    t = Table("component", "type", "fit", "output")
    for p in m.parts:
        t.add_row(p.name, p.type, short(p.fit), str(p.output))
    out.print(t)
    for _, ev in evals:
        t = Table("metric", "value", f"{ev.confidence:.0%} CI", title=f"on {ev.n} evaluation samples")
        for k, e in ev.metrics.items():
            t.add_row(k, f"{e.value:.4f}", f"[{e.low:.4f}, {e.high:.4f}]")
        out.print(t)


def _ref(repo: Repo, id: str | None) -> str | None:
    if id is None:
        return None
    rows = repo.registry.by_id(id)
    return rows[-1].ref if rows else short(id)


def metric_deltas(ea: list[Evaluation], eb: list[Evaluation]) -> dict[str, dict[str, dict[str, float]]]:
    """Per evaluation set both models were scored on (by id, sorted): each
    metric both have, a's value, b's, and b - a."""
    a_on = {e.parent("evalset"): e.metrics for e in ea}
    b_on = {e.parent("evalset"): e.metrics for e in eb}
    return {
        evalset: {
            k: {"a": ma[k].value, "b": b_on[evalset][k].value, "delta": b_on[evalset][k].value - ma[k].value}
            for k in ma
            if k in b_on[evalset]
        }
        for evalset, ma in sorted(a_on.items(), key=lambda kv: str(kv[0]))
        if evalset in b_on
    }


@models_app.command("compare")
def models_compare(ref_a: str, ref_b: str, as_json: Json = False) -> None:
    """What differs between two models: components, data, labels, params, metrics."""
    with repo_from_cwd() as repo:
        (a_art, a), (b_art, b) = _model(repo, ref_a), _model(repo, ref_b)
        pa, pb = {p.role: p.id for p in a.parents}, {p.role: p.id for p in b.parents}
        diff: dict[str, Any] = {"a": a_art.ref, "b": b_art.ref, "components": [], "inputs": {}, "params": {}}
        parts_a, parts_b = {p.name: p for p in a.parts}, {p.name: p for p in b.parts}
        for name in sorted(set(parts_a) | set(parts_b)):
            x, y = parts_a.get(name), parts_b.get(name)
            if x is None or y is None or x.spec != y.spec or x.fit != y.fit:
                diff["components"].append(
                    {
                        "name": name,
                        "a": x and {"type": x.type, "spec": x.spec, "fit": x.fit},
                        "b": y and {"type": y.type, "spec": y.spec, "fit": y.fit},
                        "same_spec": bool(x and y and x.spec == y.spec),
                    }
                )
        for role in ("dataset", "labelset", "evalset"):
            if pa.get(role) != pb.get(role):
                diff["inputs"][role] = {"a": _ref(repo, pa.get(role)), "b": _ref(repo, pb.get(role))}
        for field in ("candidate", "seed", "code", "features", "classes"):
            if getattr(a, field) != getattr(b, field):
                diff["params"][field] = {"a": getattr(a, field), "b": getattr(b, field)}
        ea, eb = _evaluations(repo, a_art.id), _evaluations(repo, b_art.id)
        by_set = {
            _ref(repo, evalset): deltas
            for evalset, deltas in metric_deltas([e for _, e in ea], [e for _, e in eb]).items()
        }
        own = _ref(repo, pa.get("evalset"))
        diff["metrics"] = by_set.get(own) or next(iter(by_set.values()), {})  # on a's own set if shared
        diff["metrics_by_evalset"] = by_set
    if as_json:
        print_json(diff)
        return
    out.print(f"[bold]{diff['a']}[/bold] vs [bold]{diff['b']}[/bold]")
    for c in diff["components"]:
        what = "same spec, refitted" if c["same_spec"] else "different spec"
        out.print(f"  component {c['name']}: {what}")
    for role, v in diff["inputs"].items():
        out.print(f"  {role}: {v['a']} -> {v['b']}")
    for field, v in diff["params"].items():
        out.print(f"  {field}: {v['a']} -> {v['b']}")
    for evalset, deltas in by_set.items():
        if len(by_set) > 1:
            out.print(f"  on {evalset}:")
        for k, v in deltas.items():
            out.print(f"  {k}: {v['a']:.4f} -> {v['b']:.4f} ({v['delta']:+.4f})")
    if not (diff["components"] or diff["inputs"] or diff["params"]):
        out.print("  same components, data, labels and parameters")


@runs_app.command("list")
def runs_list(as_json: Json = False) -> None:
    """Recent executions of the retraining flow."""
    with repo_from_cwd() as repo:
        runs = repo.registry.runs()
    if as_json:
        print_json(runs)
        return
    t = Table("execution", "flow run", "status", "started", "ended")
    for r in runs:
        t.add_row(
            r.id,
            r.flow_run_id or "-",
            r.status,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            f"{r.ended_at:%H:%M:%S}" if r.ended_at else "-",
        )
    out.print(t)


@runs_app.command("show")
def runs_show(run_ref: Annotated[str, typer.Argument(metavar="RUN_ID")], as_json: Json = False) -> None:
    """What a run pinned and produced (by record ref, run id or flow run id)."""
    from lepton.model_manifest import RunRecord
    from lepton.pipeline.replay import find_record

    with repo_from_cwd() as repo:
        record_id, rec = find_record(repo, run_ref)
        assert isinstance(rec, RunRecord)
        decision = repo.load(rec.outputs["decision"])
        info = {
            "record": record_id,
            **rec.model_dump(mode="json"),
            "reason": getattr(decision, "reason", None),
        }
    if as_json:
        print_json(info)
        return
    o = rec.outputs
    out.print(f"[bold]run {short(rec.run)}[/bold] record {short(record_id)} flow run {rec.flow_run_id}")
    out.print(
        f"dataset {short(o['dataset'])}, labels {short(o['labelset'])}, evaluation set {short(o['evalset'])}"
    )
    for m in o["models"]:
        stages = ", ".join(f"{s['name']}{' (reused)' if s['reused'] else ''}" for s in m["stages"])
        out.print(f"  {m['candidate']}: {short(m['model'])} " + escape(f"[{stages}]"))
    out.print(f"decision: {info['reason']}")
    out.print(f"deployment: {short(o.get('deployment'))}")
