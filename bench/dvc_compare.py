"""Lepton and DVC side by side on the same machine, in the same run.

    .venv/bin/python bench/dvc_compare.py                     # full size, 3 repeats
    .venv/bin/python bench/dvc_compare.py --scale 0.05 --repeats 1    # ~50 MB quick run
    .venv/bin/python bench/dvc_compare.py --scenarios S1,S4 --memory-test

The data sets are generated here (bench/datagen.py), and DVC is installed
into its own virtual environment (bench/.dvc-venv, `pip install dvc==3.67.1`)
on first use. Scenarios, each 10 versions made by editing the data in place
the way a user would:

- S1 table append: a 1 GiB CSV (~10.6M rows: id, 10 features, label), then
  9 versions each appending 5% (of the first version's rows) new rows;
- S2 relabel: 9 versions each changing 1% of the labels. Lepton: the
  features as one dataset version, the labels (id,label) as labelset
  versions. DVC two ways: `dvc` tracks the full CSV (label column inside:
  the whole file again, as the issue states it), `dvc-split` tracks
  features.csv and labels.csv apart (DVC's best case: only the labels file
  is copied again);
- S3 sparse edits: 9 versions each giving 0.1% of the rows (scattered) new
  feature values in place;
- S4 file tree: 20,000 files of ~50 KB, then 9 versions each rewriting 1%
  and adding 1% of the files. The files are random bytes, as images are to
  a compressor: neither tool can store them in less than their size;
- S4t text file tree: the same shape, but CSV annotation files (zstd -1
  keeps ~40% of them) and each changed file edited in part (5% of its
  records corrected in place, 2% appended), as annotation trees change.
  Not in the issue's list: the same targets, on content that compresses.

Both tools run as command-line programs in subprocesses (process start-up is
counted the same way): `lepton data snapshot|checkout|status` in a fresh
`lepton init` folder, and `dvc add|status|checkout` in a scratch `git init`
+ `dvc init` folder. Per repeat the tools alternate (lepton, dvc, ...), each
on its own freshly generated, byte-identical copy of the data. Measured:
snapshot wall time and peak RSS per version, store size after 10 versions
(Lepton: .lepton/store; DVC: .dvc/cache), store size of the last version
alone (Lepton: a fresh repo given only the last version; DVC: the data's
size, since its cache holds files as they are), no-change status time,
checkout time of the latest version (Lepton: to CSV, the source's format,
and to Parquet, its native one; DVC: `dvc checkout` after deleting the
workspace copy).

Page cache: by default ("cold") every file of the tool's folder (data,
store, state databases) is synced and evicted with
posix_fadvise(DONTNEED) before each measured command; programs and
libraries stay cached, as for a user who runs these tools often.
`--cache warm` measures with everything cached; `--cache drop` drops the
whole page cache (`echo 3 > /proc/sys/vm/drop_caches`, root only).

Also measured in the same run: the machine's read and hash limits
(bench/limits.py), and with --memory-test the peak memory of snapshotting
a 5 GB table (scaled by --scale). Writes bench/results/dvc_compare.json
(every raw figure, medians, min, max), dvc_compare.md (tables and target
checks, also printed) and dvc_compare.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

# The benchmark's parts, each in its own module beside this one; their names
# stay importable from here (`import dvc_compare as dc; dc.Cache`).
import datagen as gen  # noqa: E402, F401
import limits as lim  # noqa: E402
from cmdtiming import TIME, Cache, CommandFailed, Result, digest, evict_tree, run, sizes  # noqa: E402, F401
from dvc_plans import MB, SCENARIOS, TREES, VERSIONS, Data, Plan, plans  # noqa: E402, F401
from dvc_report import (  # noqa: E402, F401
    FAR_BELOW,
    FAR_NOTES,
    PEAK_MEMORY_TARGET_MB,
    READ_HASH_FRACTION,
    STORE_RATIO_TARGET,
    TOOLS,
    markdown,
    med,
    plot,
    stats,
    summarize,
    targets,
    write_report,
)
from dvc_tools import Dvc, Lepton, Tool, ensure_dvc, memory_test, run_scenario  # noqa: E402, F401

OUT = HERE / "results"
DVC_VERSION = "3.67.1"


# ---- main ----------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--scale", type=float, default=1.0, help="shrink rows and file counts (0.05: ~50 MB tables)"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: S1,S2,S3,S4,S4t")
    ap.add_argument(
        "--memory-test", action="store_true", help="peak memory of a 5 GB (x scale) table snapshot"
    )
    ap.add_argument(
        "--memory-cap-gb",
        type=float,
        default=None,
        help="kill a snapshot above this RSS (default: 60%% of RAM)",
    )
    ap.add_argument("--cache", choices=["cold", "warm", "drop"], default="cold")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a new folder in /tmp)")
    ap.add_argument("--dvc-venv", type=Path, default=HERE / ".dvc-venv")
    ap.add_argument("--dvc-version", default=DVC_VERSION)
    ap.add_argument("--lepton", type=Path, default=Path(sys.executable).parent / "lepton")
    ap.add_argument(
        "--lepton-rev",
        default="HEAD",
        help="commit of Lepton to measure (exported with git archive), or 'worktree' for the working tree",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT / "dvc_compare")
    ap.add_argument(
        "--limits-mib",
        type=int,
        default=None,
        help="size of the limits test file (default: 1024 x scale, >= 256)",
    )
    ap.add_argument(
        "--from-json", type=Path, default=None, help="only redo the report and plot of a results JSON"
    )
    args = ap.parse_args()
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        result["targets"] = targets(result)
        write_report(result, args.out)
        return
    canonical = {n.upper(): n for n in SCENARIOS}
    chosen = [canonical.get(s.strip().upper(), s.strip()) for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SCENARIOS]
    if bad:
        ap.error(f"unknown scenario(s) {bad}; choose from {SCENARIOS}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lepton-vs-dvc-"))
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    need = (14e9 if "S1" in chosen else 3e9) * args.scale + (6e9 * args.scale if args.memory_test else 0)
    print(f"scratch {work}: {free / 1e9:.0f} GB free, this run needs about {need / 1e9:.0f} GB at peak")
    if free < need:
        sys.exit("not enough free disk space: use --workdir elsewhere or a smaller --scale")

    cache = Cache(args.cache)
    dvc_exe = ensure_dvc(args.dvc_venv, args.dvc_version)
    lepton = Lepton(cache, args.lepton, args.lepton_rev, work)
    dvc = Dvc(cache, dvc_exe)
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    cap_mb = (args.memory_cap_gb or 0.6 * mem_gb) * 1000
    cache_note = {
        "cold": "cold data (each tool's data, store and state files synced and evicted with "
        "posix_fadvise before every measured command; programs warm)",
        "warm": "warm (everything in the page cache)",
        "drop": "cold (whole page cache dropped before every measured command)",
    }[cache.mode]

    def startup(argv: list[str], env: dict[str, str]) -> float:
        return statistics.median(run(argv, work, env).wall_s for _ in range(3))

    result: dict = {
        "params": {"scale": args.scale, "repeats": args.repeats, "scenarios": chosen, "seed": args.seed},
        "cache_mode": cache.mode,
        "cache_note": cache_note,
        "machine": {
            "cpus": os.cpu_count(),
            "mem_gb": mem_gb,
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {"lepton": lepton.version(), "dvc": f"dvc {dvc.version()}"},
        "lepton_has_status": lepton.has_status,
        "startup_s": {
            "lepton": startup([*lepton.cmd, "--help"], lepton.env),
            "dvc": startup([dvc.exe, "--help"], dvc.env),
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "scenarios": {},
    }
    mib = args.limits_mib or max(256, round(1024 * args.scale))
    print(f"measuring the machine's limits on a {mib} MiB file...", flush=True)
    measured = lim.measure(mib, str(work))
    kind = ("cold" if cache.cold else "warm") + " file, read + blake3 (all threads) in one pass"
    result["limits"] = {
        "measured": measured,
        "read_hash_limit_MBps": lim.read_hash_limit(measured, cache.cold),
        "read_hash_limit_kind": kind,
    }
    print(lim.table(measured), flush=True)
    if {"S1", "S3"} & set(chosen):
        print("measuring pyarrow's own CSV -> Parquet (the columnar floor)...", flush=True)
        floor = lim.csv_to_parquet(mib, str(work))
        result["limits"]["csv_to_parquet"] = floor
        print(f"  {floor['MBps']['median']:,.0f} MB/s", flush=True)

    all_plans = plans(args.scale)
    t_start = time.perf_counter()
    for name in chosen:
        plan = all_plans[name]
        print(f"{name}: {plan.title}", flush=True)
        variants = {"lepton": ("split" if name == "S2" else "tree" if name in TREES else "full")}
        runs: dict[str, list[dict]] = {"lepton": [], "dvc": []}
        if name == "S2":
            runs["dvc-split"] = []
        for rep in range(args.repeats):
            print(f"  repeat {rep + 1}/{args.repeats}", flush=True)
            runs["lepton"].append(
                run_scenario(lepton, plan, variants["lepton"], work, args.seed, alone=rep == 0)
            )
            runs["dvc"].append(
                run_scenario(dvc, plan, "tree" if name in TREES else "full", work, args.seed, alone=True)
            )
            if name == "S2":
                runs["dvc-split"].append(run_scenario(dvc, plan, "split", work, args.seed, alone=True))
        lep_alone = next((r["alone_bytes"] for r in runs["lepton"] if "alone_bytes" in r), None)
        for r in runs["lepton"]:
            if lep_alone is not None:
                r.setdefault("alone_bytes", lep_alone)
        summary = {t: summarize(rs) for t, rs in runs.items()}
        ok = [r for rs in runs.values() for r in rs if "error" not in r]
        result["scenarios"][name] = {
            "title": plan.title,
            "first_version_bytes": ok[0]["bytes"][0] if ok else 0,
            "last_version_bytes": ok[0]["bytes"][-1] if ok else 0,
            "same_data": _same_data(runs),
            "runs": runs,
            "summary": summary,
        }
        print(f"  ({time.perf_counter() - t_start:.0f} s so far)", flush=True)
        result["targets"] = targets(result)
        Path(f"{args.out}.partial.json").write_text(json.dumps(result, indent=2))
    if args.memory_test:
        result["memory_test"] = memory_test(lepton, dvc, work, args.scale, args.seed, cap_mb)
    result["targets"] = targets(result)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    result["elapsed_s"] = time.perf_counter() - t_start
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(result, args.out)
    Path(f"{args.out}.partial.json").unlink(missing_ok=True)


def _same_data(runs: dict[str, list[dict]]) -> bool:
    """Every tool's final files with the same name are byte-identical."""
    seen: dict[str, str] = {}
    for rs in runs.values():
        for r in rs:
            for n, d in r.get("digests", {}).items():
                if seen.setdefault(n, d) != d:
                    return False
    return True


if __name__ == "__main__":
    main()
