"""Orchestration overhead of the retraining flow on the embedded default
(local store, SQLite registry, Prefect's embedded API).

    python bench/orchestration.py [--example digits|breast_cancer] [--repeats 3]

Reports, per repeat, in one fresh repository each:
- cold: wall time of a full flow run, the time inside the six steps' own
  work (measured inside each task), and the difference = orchestration
  overhead (Prefect task/flow machinery, result persistence, repo opening);
- rerun: wall time of a no-change re-run (every step served from the cache);
- plain: the same six steps called directly, without Prefect.
The first flow call in a process also pays the embedded server's start;
it is reported apart ("server start") and excluded from the medians.
Writes bench/results/orchestration.json and orchestration.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results"


def _setup(folder: Path, example: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "examples/prepare.py"), example, str(folder / "data")],
        check=True,
        capture_output=True,
    )
    (folder / "project.toml").write_text((ROOT / f"examples/{example}/project.toml").read_text())
    from lepton.repo import init_repo

    init_repo(folder).close()


def _plain(folder: Path) -> float:
    from lepton.pipeline import fit, prepare, release, score
    from lepton.pipeline.context import Context, logical_run_id
    from lepton.project import load_project
    from lepton.repo import open_repo

    start = time.perf_counter()
    project, root = load_project(folder / "project.toml")
    with open_repo(folder) as repo:
        ctx = Context(repo, project, root)
        snap = prepare.snapshot_data(ctx)
        ctx = Context(repo, project, root, logical_run_id(project, snap["dataset"], snap["labelset"]))
        comps = prepare.version_components(ctx, snap["dataset"], snap["labelset"])
        evaluated = []
        for c in project.candidates:
            t = fit.train(
                ctx, c.name, snap["dataset"], snap["labelset"], comps["evalset"], comps["specs"][c.name]
            )
            evaluated.append(score.evaluate(ctx, t["model"], comps["evalset"]))
        d = score.select(ctx, evaluated, comps["evalset"])
        release.deploy(ctx, d["decision"])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", default="digits", choices=["digits", "breast_cancer"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect-home")
        from flows.retrain import RetrainParams, retrain

        warm = Path(tmp) / "warmup"
        _setup(warm, args.example)
        t0 = time.perf_counter()
        retrain(RetrainParams(config=str(warm / "project.toml"), repo=str(warm)))
        server_start_and_first = time.perf_counter() - t0
        rows = []
        for i in range(args.repeats):
            folder = Path(tmp) / f"run{i}"
            _setup(folder, args.example)
            params = RetrainParams(config=str(folder / "project.toml"), repo=str(folder))
            t0 = time.perf_counter()
            summary = retrain(params)
            cold = time.perf_counter() - t0
            work = sum(summary["work_s"].values())
            t0 = time.perf_counter()
            retrain(params)
            rerun = time.perf_counter() - t0
            plain_folder = Path(tmp) / f"plain{i}"
            _setup(plain_folder, args.example)
            plain = _plain(plain_folder)
            rows.append(
                {
                    "cold_s": cold,
                    "work_s": work,
                    "overhead_s": cold - work,
                    "rerun_s": rerun,
                    "plain_s": plain,
                    "steps": summary["work_s"],
                }
            )
            print(
                f"repeat {i}: flow {cold:.2f}s = work {work:.2f}s + overhead {cold - work:.2f}s; "
                f"no-change re-run {rerun:.2f}s; same steps without Prefect {plain:.2f}s"
            )
    med = {
        k: statistics.median(r[k] for r in rows)
        for k in ("cold_s", "work_s", "overhead_s", "rerun_s", "plain_s")
    }
    result = {
        "example": args.example,
        "repeats": args.repeats,
        "first_call_with_server_start_s": server_start_and_first,
        "median": med,
        "min": {k: min(r[k] for r in rows) for k in med},
        "max": {k: max(r[k] for r in rows) for k in med},
        "runs": rows,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "orchestration.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({"median": med, "server start + first run": round(server_start_and_first, 2)}, indent=2))
    print(
        f"overhead / flow wall time: {med['overhead_s'] / med['cold_s']:.1%}; "
        f"re-run / cold run: {med['rerun_s'] / med['cold_s']:.1%}"
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3))
        labels = ["steps' own work", "orchestration overhead", "no-change re-run", "steps without Prefect"]
        values = [med["work_s"], med["overhead_s"], med["rerun_s"], med["plain_s"]]
        ax.barh(labels, values, color=["#4c72b0", "#dd8452", "#55a868", "#8172b2"])
        ax.set_xlabel("seconds (median)")
        ax.set_title(f"Retraining flow on {args.example}, embedded Prefect, {os.cpu_count()} cores")
        fig.tight_layout()
        fig.savefig(OUT / "orchestration.png", dpi=100)
    except ImportError:
        print("(matplotlib not installed: no plot)")


if __name__ == "__main__":
    main()
