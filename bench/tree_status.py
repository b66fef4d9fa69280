"""File-tree versioning at scale: a tree of N small files (default 20,000 x
50 KB, as in PERF-NOTES' DVC figures), timed through Lepton's Python API and
its CLI (a fresh process each, startup included):

    first snapshot; status with nothing changed; re-snapshot with nothing
    changed; status after rewriting 1% of the files and adding 1% more;
    the second snapshot and the store growth it costs.

With --dvc PATH the same steps run with DVC (dvc add / dvc status) on a copy
of the tree, in the same run. Writes bench/results/tree_status.json.

    python bench/tree_status.py [--files 20000] [--size 50000] [--dvc bench/.dvc-venv/bin/dvc]

Files are generated, then aged past the state cache's racy window (a file
modified less than 2 s before it was read is hashed again next time), as a
tree that was not written in the last seconds would be.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lepton.data.statecache import RACY_NS
from lepton.repo import init_repo

OUT = Path(__file__).parent / "results"
LEPTON = str(Path(sys.executable).with_name("lepton"))
PER_FOLDER = 200


def write_tree(root: Path, n: int, size: int, start: int = 0) -> list[Path]:
    paths = []
    for i in range(start, start + n):
        p = root / f"d{i // PER_FOLDER:04d}" / f"f{i:06d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        paths.append(p)
    return paths


def age(paths: list[Path], seconds: float = 3600) -> None:
    """Set the files' mtime back, past the racy window (as for any file not
    written in the last seconds)."""
    t = time.time() - seconds
    for p in paths:
        os.utime(p, (t, t))


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def median_of(fn, repeat: int = 3) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    runs = [timed(fn) for _ in range(repeat)]
    return statistics.median(t for t, _ in runs), runs[-1][1]


def run(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_lepton(work: Path, tree: Path, changed: list[Path], n_new: int, size: int) -> dict:
    res: dict = {}
    repo_dir = work / "repo"
    repo_dir.mkdir()
    repo = init_repo(repo_dir)
    store = Path(repo.settings.store.url)
    res["first_snapshot_s"], snap = timed(lambda: repo.snapshot_data("tree", tree))
    res["store_bytes_v1"] = du(store)
    res["status_unchanged_api_s"], st = median_of(lambda: repo.status("tree", tree))
    assert not st.changed and st.read == 0, st
    res["status_unchanged_read"] = st.read
    cli = [LEPTON, "data", "status", "tree", str(tree), "--json"]
    res["status_unchanged_cli_s"], out = median_of(lambda: run(cli, repo_dir))
    res["cli_startup_s"], _ = median_of(lambda: run([LEPTON, "--help"], repo_dir))
    res["resnapshot_unchanged_s"], again = timed(lambda: repo.snapshot_data("tree", tree))
    assert not again.created
    # change 1% (same size, new bytes) and add 1%
    for p in changed:
        p.write_bytes(os.urandom(size))
    write_tree(tree, n_new, size, start=10**6)
    res["status_changed_api_s"], st = timed(lambda: repo.status("tree", tree))
    res["status_changed"] = {"added": len(st.added), "modified": len(st.modified), "read": st.read}
    res["status_changed_cli_s"], _ = timed(lambda: run(cli, repo_dir))
    res["snapshot_v2_s"], snap2 = timed(lambda: repo.snapshot_data("tree", tree))
    assert snap2.created
    res["store_growth_v2_pct"] = round(100 * (du(store) - res["store_bytes_v1"]) / res["store_bytes_v1"], 2)
    repo.close()
    return res


def bench_dvc(dvc: str, work: Path, tree: Path, changed: list[Path], n_new: int, size: int) -> dict:
    res: dict = {}
    proj = work / "dvc"
    proj.mkdir()
    run([dvc, "init", "--no-scm", "-q"], proj)
    run([dvc, "config", "core.analytics", "false"], proj)
    data = proj / "data"
    shutil.copytree(tree, data)
    age([p for p in data.rglob("*") if p.is_file()])
    res["add_v1_s"], _ = timed(lambda: run([dvc, "add", "-q", "data"], proj))
    res["status_unchanged_s"], _ = median_of(lambda: run([dvc, "status", "-q"], proj))
    for p in changed:
        (data / p.relative_to(tree)).write_bytes(os.urandom(size))
    write_tree(data, n_new, size, start=10**6)
    res["status_changed_s"], _ = timed(lambda: subprocess.run([dvc, "status", "-q"], cwd=proj, check=False))
    res["add_v2_s"], _ = timed(lambda: run([dvc, "add", "-q", "data"], proj))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=50_000)
    ap.add_argument("--dvc", help="a dvc executable: run the same steps with DVC")
    ap.add_argument("--dir", help="work folder (default: a temp folder, removed after)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tree-bench-", dir=args.dir))
    try:
        tree = work / "tree"
        paths = write_tree(tree, args.files, args.size)
        age(paths)
        time.sleep(RACY_NS / 1e9)  # the generator's last writes are older than the racy window
        n = max(1, args.files // 100)
        changed = paths[:: len(paths) // n][:n]
        pristine = work / "pristine"
        if args.dvc:
            shutil.copytree(tree, pristine)
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "files": args.files,
            "file_size": args.size,
            "changed": n,
            "added": n,
            "lepton": bench_lepton(work, tree, changed, n, args.size),
        }
        print(json.dumps(result["lepton"], indent=2), flush=True)
        if args.dvc:
            dvc = shutil.which(args.dvc) or args.dvc
            dvc = str(Path(dvc).resolve())
            moved = [pristine / p.relative_to(tree) for p in changed]
            result["dvc_version"] = run([dvc, "--version"], work).strip()
            result["dvc"] = bench_dvc(dvc, work, pristine, moved, n, args.size)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "tree_status.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
