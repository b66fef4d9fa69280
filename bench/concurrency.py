"""Concurrent retraining on the team stack: N retraining flows at once.

Starts the team stack from infra/teamstack.py (a Prefect server on its own
PostgreSQL database, process workers, moto's S3 server on loopback, a
workspace on S3 + a fresh PostgreSQL registry schema), registers
deployments/prefect.yaml, runs one retraining flow alone (the reference),
then starts N runs of `retrain/nightly` at once, each with its own project
config (same data, seeds 1..N: every run trains its own models). Reports:

- throughput: runs per minute at once vs one run alone, and the wall time;
- the registry's write latency (every committed write transaction of every
  flow process, from the registry's timings log): alone and under load;
- integrity: every run completed; model versions 1..M with no gap and no
  duplicate; every model each run reports registered with lineage back to
  its dataset; the N simultaneous snapshots of the same data made exactly
  one dataset and one labelset version; every alias move names a version;
  every stored object verifies.

    .venv/bin/python bench/concurrency.py                 # 8 flows, 2 workers, digits (torch CNN + sklearn)
    .venv/bin/python bench/concurrency.py --flows 4 --example breast_cancer
    .venv/bin/python bench/concurrency.py --from-json bench/results/concurrency.json

Writes bench/results/concurrency.{json,md,png}; exits 1 if anything was
lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import tomli_w

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "infra"))
from teamstack import TeamStack, free_port  # noqa: E402 - infra/ is not a package

PG_ADMIN_URL = os.environ.get("LEPTON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEPLOYMENT = "retrain/nightly"


def _moto() -> tuple[Any, dict[str, Any]]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = {"endpoint_url": endpoint, "key": "bench", "secret": "bench", "region": "us-east-1"}
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        region_name="us-east-1",
    ).create_bucket(Bucket="lepton")
    return server, s3


def _write_projects(workspace: Path, example: str, flows: int) -> list[str]:
    subprocess.run(
        [sys.executable, str(ROOT / "examples/prepare.py"), example, str(workspace / "data")],
        check=True,
        capture_output=True,
    )
    base = tomllib.loads((ROOT / f"examples/{example}/project.toml").read_text())
    names = []
    for seed in range(flows + 1):  # 0: the run alone; 1..N: the runs at once
        name = f"project-{seed}.toml"
        (workspace / name).write_text(tomli_w.dumps(base | {"seed": seed}))
        names.append(name)
    return names


def _start_runs(stack: TeamStack, configs: list[str]) -> list[str]:
    dep = requests.get(f"{stack.api}/deployments/name/{DEPLOYMENT}", timeout=30).json()
    ids = []
    for config in configs:
        made = requests.post(
            f"{stack.api}/deployments/{dep['id']}/create_flow_run",
            json={"parameters": {"params": {"config": config}}},
            timeout=30,
        )
        made.raise_for_status()
        ids.append(made.json()["id"])
    return ids


def _wait(stack: TeamStack, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        runs = [r for r in stack.flow_runs(DEPLOYMENT) if r["id"] in ids]
        if len(runs) == len(ids) and all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs):
            return runs
        time.sleep(2)
    raise SystemExit(f"runs did not finish in {timeout} s\n{stack.log_tail()}")


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _run_rows(runs: list[dict[str, Any]], origin: float) -> list[dict[str, Any]]:
    return [
        {
            "config": r["parameters"]["params"]["config"],
            "state": r["state_type"],
            "created": round(_ts(r["created"]) - origin, 2),
            "start": round(_ts(r["start_time"]) - origin, 2) if r.get("start_time") else None,
            "end": round(_ts(r["end_time"]) - origin, 2) if r.get("end_time") else None,
            "run_s": round(r["total_run_time"], 2),
        }
        for r in runs
    ]


def _latency(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def summary(values: list[float]) -> dict[str, float]:
        ms = sorted(v * 1000 for v in values)
        pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
        return {
            "count": len(ms),
            "p50_ms": pick(0.5),
            "p95_ms": pick(0.95),
            "p99_ms": pick(0.99),
            "max_ms": ms[-1],
        }

    by_op: dict[str, list[float]] = {}
    for r in rows:
        by_op.setdefault(str(r["op"]), []).append(float(r["s"]))
    out = {op: summary(v) for op, v in sorted(by_op.items())}
    if rows:
        out["all"] = summary([float(r["s"]) for r in rows])
    return out


def _integrity(workspace: Path, project: str, expected_runs: int) -> dict[str, Any]:
    """What was lost or duplicated (empty lists when nothing)."""
    os.environ.pop("LEPTON_REGISTRY__TIMINGS", None)
    from lepton.repo import open_repo

    problems: list[str] = []
    with open_repo(workspace) as repo:
        reg = repo.registry
        runs = [r for r in reg.runs(limit=1000) if r.status == "completed"]
        if len(runs) != expected_runs:
            problems.append(f"{len(runs)} completed run records, expected {expected_runs}")
        models = reg.versions(project)
        numbers = [v.version for v in models]
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append(f"model versions not 1..{len(numbers)} without gaps or duplicates: {numbers}")
        by_id = {v.id for v in models}
        records = reg.versions(f"{project}.run")
        reported = 0
        for rec in records:
            outputs = repo.load(rec.id).outputs  # type: ignore[attr-defined]
            for m in outputs["models"]:
                reported += 1
                if m["model"] not in by_id:
                    problems.append(f"{rec.ref}: model {m['model'][:19]} ({m['candidate']}) not registered")
                    continue
                ref = next(v.ref for v in models if v.id == m["model"])
                if not any(n.kind == "dataset" for n in repo.lineage(ref, "upstream").nodes):
                    problems.append(f"{ref}: no lineage back to a dataset")
        datasets = [n for n, kind, _ in reg.names() if kind == "dataset"]
        labelsets = [n for n, kind, _ in reg.names() if kind == "labelset"]
        data_versions = {n: len(reg.versions(n)) for n in datasets + labelsets}
        if any(count != 1 for count in data_versions.values()):
            problems.append(f"the same data snapshotted at once made several versions: {data_versions}")
        moves = reg.alias_history(project)
        for move in moves:
            if move.version is not None and move.version not in numbers:
                problems.append(f"alias {move.alias} moved to missing version {move.version}")
        report = repo.verify()
        problems += [str(f) for f in report.findings][:10]
    return {
        "run_records": len(records),
        "completed_runs": len(runs),
        "model_versions": len(numbers),
        "models_reported": reported,
        "distinct_models": len(by_id),
        "data_versions": data_versions,
        "alias_moves": len(moves),
        "objects_verified": report.checked,
        "problems": problems,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="lepton-concurrency-"))
    timings = base / "registry-writes.jsonl"
    server, s3 = _moto()
    project = tomllib.loads((ROOT / f"examples/{args.example}/project.toml").read_text())["name"]
    # workers poll every 2 s (Prefect's default is 10-15 s) so that pick-up delay does not hide the work
    env = {"LEPTON_REGISTRY__TIMINGS": str(timings), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    try:
        stack = TeamStack(
            base, PG_ADMIN_URL, s3, workers=args.workers, dataset=f"{project}-features", env=env
        )
        with stack:
            configs = _write_projects(stack.workspace, args.example, args.flows)
            print(f"stack up (Prefect {stack.api}, {args.workers} workers); one run alone ...", flush=True)
            t0 = time.time()
            alone = _wait(stack, _start_runs(stack, configs[:1]), args.timeout)
            alone_wall = time.time() - t0
            split = time.time()
            print(f"alone: {alone_wall:.1f} s; now {args.flows} at once ...", flush=True)
            t1 = time.time()
            together = _wait(stack, _start_runs(stack, configs[1:]), args.timeout)
            wall = time.time() - t1
            print(f"{args.flows} at once: {wall:.1f} s; checking integrity ...", flush=True)
            integrity = _integrity(stack.workspace, project, expected_runs=args.flows + 1)
    finally:
        server.stop()
    writes = [json.loads(line) for line in timings.read_text().splitlines() if line.strip()]
    shutil.rmtree(base, ignore_errors=True)
    rows = _run_rows(together, t1)
    failed = [r for r in rows + _run_rows(alone, t0) if r["state"] != "COMPLETED"]
    if failed:
        integrity["problems"].append(f"runs not completed: {failed}")
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "example": args.example,
        "flows": args.flows,
        "workers": args.workers,
        "alone": {"wall_s": round(alone_wall, 2), "run": _run_rows(alone, t0)[0]},
        "together": {"wall_s": round(wall, 2), "runs": rows},
        "throughput_per_min": {
            "alone": round(60 / alone_wall, 2),
            "together": round(60 * args.flows / wall, 2),
            "ratio": round((args.flows / wall) / (1 / alone_wall), 2),
        },
        "registry_write_latency": {
            "alone": _latency([w for w in writes if w["t"] < split]),
            "together": _latency([w for w in writes if w["t"] >= split]),
        },
        "integrity": integrity,
    }


def report(result: dict[str, Any], out: Path) -> str:
    tp, integ = result["throughput_per_min"], result["integrity"]
    lines = [
        f"# {result['flows']} retraining flows at once on the team stack",
        "",
        f"Example `{result['example']}`, {result['workers']} process workers, "
        f"{result['machine']['cpus']} CPUs, Prefect server and Lepton registry on PostgreSQL, "
        "store on S3 (moto).",
        "",
        "| | wall (s) | runs/min |",
        "|---|---:|---:|",
        f"| one run alone | {result['alone']['wall_s']} | {tp['alone']} |",
        f"| {result['flows']} at once | {result['together']['wall_s']} | {tp['together']} |",
        "",
        f"Throughput at once / alone: **{tp['ratio']}x**. Per run at once: median "
        f"{statistics.median(r['run_s'] for r in result['together']['runs']):.1f} s, "
        f"max {max(r['run_s'] for r in result['together']['runs']):.1f} s; picked up by a worker after "
        f"{statistics.median(r['start'] - r['created'] for r in result['together']['runs']):.1f} s (median).",
        "",
        "Registry write latency (each committed write transaction, lock waits included):",
        "",
        "| operation | load | count | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for load in ("alone", "together"):
        for op, s in result["registry_write_latency"][load].items():
            lines.append(
                f"| {op} | {load} | {s['count']} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | "
                f"{s['p99_ms']:.1f} | {s['max_ms']:.1f} |"
            )
    lines += [
        "",
        f"Integrity: {integ['completed_runs']} completed runs, {integ['model_versions']} model versions "
        f"(v1..v{integ['model_versions']}), {integ['models_reported']} models reported by run records, "
        f"data versions {integ['data_versions']}, {integ['alias_moves']} alias moves, "
        f"{integ['objects_verified']} objects verified.",
        "",
        "**Nothing lost or duplicated.**" if not integ["problems"] else "**PROBLEMS:**",
        *[f"- {p}" for p in integ["problems"]],
    ]
    text = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(text)
    _plot(result, out.with_suffix(".png"))
    return text


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    runs = sorted(result["together"]["runs"], key=lambda r: r["start"], reverse=True)
    rows = [*runs, {**result["alone"]["run"], "config": "alone (reference)"}]
    for i, r in enumerate(rows):
        color = "tab:grey" if i == len(runs) else "tab:green" if r["state"] == "COMPLETED" else "red"
        ax1.barh(i, r["start"] - r["created"], left=r["created"], color="white", edgecolor=color, hatch="//")
        ax1.barh(i, r["end"] - r["start"], left=r["start"], color=color)
    ax1.set_yticks(range(len(rows)), [r["config"].removesuffix(".toml") for r in rows])
    ax1.set_xlabel("seconds since the runs were created (hatched: waiting for a worker's process)")
    ax1.set_title(f"{result['flows']} flows at once vs one alone")
    lat = result["registry_write_latency"]
    ops = [op for op in lat["together"] if op != "all"]
    x = range(len(ops))
    for shift, load, color in ((-0.2, "alone", "tab:blue"), (0.2, "together", "tab:orange")):
        ax2.bar(
            [i + shift for i in x],
            [lat[load].get(op, {}).get("p95_ms", 0) for op in ops],
            0.4,
            label=load,
            color=color,
        )
    ax2.set_xticks(list(x), ops)
    ax2.set_ylabel("p95 write latency (ms)")
    ax2.set_title("registry write latency, p95")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--example", default="digits", choices=["digits", "breast_cancer", "wine"])
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/concurrency")
    ap.add_argument("--from-json", type=Path)
    args = ap.parse_args()
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        result = measure(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    print(report(result, args.out))
    sys.exit(1 if result["integrity"]["problems"] else 0)


if __name__ == "__main__":
    main()
