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
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import blake3

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import datagen as gen  # noqa: E402
import limits as lim  # noqa: E402

OUT = HERE / "results"
DVC_VERSION = "3.67.1"
SCENARIOS = ("S1", "S2", "S3", "S4", "S4t")
TREES = ("S4", "S4t")
VERSIONS = 10
MB = 1e6

# The targets.
STORE_RATIO_TARGET = {"S1": 1.15, "S2": 1.10, "S3": 2.0, "S4": 1.10, "S4t": 1.10}
FAR_BELOW = 0.5  # "far below DVC's figure": at most half of it
READ_HASH_FRACTION = 0.5
FAR_NOTES = {
    ("S2", "dvc-split"): "informative: DVC's best layout, labels in their own file",
    ("S4", "dvc"): "DVC also stores only the changed/new files; random (incompressible) files leave "
    "no room below it but compression or dedup inside files",
}
PEAK_MEMORY_TARGET_MB = 2000.0


class CommandFailed(RuntimeError):
    pass


# ---- running commands --------------------------------------------------------
@dataclass
class Result:
    wall_s: float
    maxrss_mb: float
    rc: int
    out: str
    killed: bool = False


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(
    argv: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    cap_mb: float | None = None,
    timeout_s: float = 3600,
) -> Result:
    """Run a command; its wall time and its own peak RSS.

    The peak comes from /usr/bin/time (%M), whose small process forks the
    command: a child forked straight from this (large) Python process would
    inherit its high-water mark in ru_maxrss. With ``cap_mb``, a watchdog
    kills the command's process group once the tree's RSS passes the cap (so
    a runaway snapshot cannot take the machine down)."""
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile(prefix="rss-") as peak:
        full = [TIME, "-f", "%M", "-o", peak.name, *argv] if TIME else argv
        t0 = time.perf_counter()
        p = subprocess.Popen(
            full, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        killed = threading.Event()
        done = threading.Event()

        def watch() -> None:
            deadline = t0 + timeout_s
            while not done.wait(0.05):
                if time.perf_counter() > deadline or (cap_mb and _tree_rss_mb(p.pid) > cap_mb):
                    killed.set()
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    return

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        w.join()
        p.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        out = log.read().decode(errors="replace")
        maxrss = usage.ru_maxrss / 1024
        if TIME:
            lines = Path(peak.name).read_text().split()
            maxrss = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan")
    res = Result(wall, maxrss, p.returncode, out, killed.is_set())
    if check and res.rc != 0:
        raise CommandFailed(f"{' '.join(map(str, argv))} (in {cwd}) exited {res.rc}:\n{out[-3000:]}")
    return res


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants."""
    total = 0.0
    todo = [pid]
    while todo:
        q = todo.pop()
        try:
            with open(f"/proc/{q}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
                        break
            with open(f"/proc/{q}/task/{q}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return total


# ---- page cache, sizes, digests ------------------------------------------------
class Cache:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        if mode == "drop" and not _can_drop():
            print("(cannot drop the page cache here: measuring with evicted data files instead)")
            self.mode = "cold"

    @property
    def cold(self) -> bool:
        return self.mode in ("cold", "drop")

    def prepare(self, *folders: Path) -> None:
        os.sync()
        if self.mode == "cold":
            for folder in folders:
                evict_tree(folder)
        elif self.mode == "drop":
            Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _can_drop() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def evict_tree(folder: Path) -> None:
    if folder.is_file():
        lim.evict(folder)
        return
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                try:
                    lim.evict(Path(p))
                except OSError:
                    pass


def sizes(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of a file or folder."""
    if path.is_file():
        st = path.stat()
        return st.st_size, st.st_blocks * 512
    apparent = allocated = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def digest(path: Path) -> str:
    """blake3 of a file, or of a tree's relative paths and contents."""
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    if path.is_file():
        with open(path, "rb") as f:
            while b := f.read(8 << 20):
                h.update(b)
        return h.hexdigest()[:16]
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(p.relative_to(path).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


# ---- scenarios -----------------------------------------------------------------
@dataclass
class Plan:
    """What one scenario does, tool-independent: sizes and the edit per version."""

    name: str
    title: str
    table_rows: int = 0
    tree_files: int = 0
    text: bool = False  # trees: annotation text files, edited in part (datagen)


def plans(scale: float) -> dict[str, Plan]:
    rows = gen.rows_for_bytes(gen.GiB * scale)
    files = max(200, round(20_000 * scale))
    return {
        "S1": Plan("S1", "table append (+5% rows per version)", table_rows=rows),
        "S2": Plan("S2", "relabel (1% of labels per version)", table_rows=rows),
        "S3": Plan("S3", "sparse edits (0.1% of rows per version)", table_rows=rows),
        "S4": Plan("S4", "file tree (1% changed + 1% added per version)", tree_files=files),
        "S4t": Plan("S4t", "text file tree (1% edited in part + 1% added)", tree_files=files, text=True),
    }


@dataclass
class Data:
    """The files one tool tracks in a scenario, made and edited in ``folder``."""

    plan: Plan
    folder: Path
    variant: str  # "full" (one CSV with labels), "split" (features.csv + labels.csv), "tree"
    seed: int = 0
    files: list[str] = field(default_factory=list)

    def make(self, version: int) -> None:
        p, f, s = self.plan, self.folder, self.seed
        if version == 1:
            if self.variant == "full":
                gen.write_table(f / "table.csv", p.table_rows, gen.FULL, s)
                self.files = ["table.csv"]
            elif self.variant == "split":
                gen.write_table(f / "features.csv", p.table_rows, gen.FEATURES_ONLY, s)
                gen.write_table(f / "labels.csv", p.table_rows, gen.LABELS_ONLY, s)
                self.files = ["features.csv", "labels.csv"]
            else:
                gen.write_tree(f / "tree", p.tree_files, s, p.text)
                self.files = ["tree"]
            return
        if p.name == "S1":
            gen.append_rows(f / "table.csv", max(1, round(p.table_rows * 0.05)), version, gen.FULL, s)
        elif p.name == "S2":
            if self.variant == "full":
                gen.relabel(f / "table.csv", 0.01, version, gen.FULL, s)
            else:
                gen.relabel(f / "labels.csv", 0.01, version, gen.LABELS_ONLY, s)
        elif p.name == "S3":
            gen.edit_rows(f / "table.csv", 0.001, version, gen.FULL, s)
        else:
            gen.change_tree(f / "tree", p.tree_files, version, 0.01, s, p.text)

    def changed(self, version: int) -> list[str]:
        """The files a version changes (what DVC is told to add)."""
        if version > 1 and self.variant == "split":
            return ["labels.csv"]
        return self.files

    def nbytes(self) -> int:
        return sum(sizes(self.folder / n)[0] for n in self.files)


class Tool:
    name = ""

    def __init__(self, cache: Cache, env: dict[str, str]) -> None:
        self.cache = cache
        self.env = env

    def timed(self, argv: list[str], cwd: Path, **kw) -> Result:  # type: ignore[no-untyped-def]
        self.cache.prepare(cwd)
        return run(argv, cwd, self.env, **kw)


_BUILD = (  # one C extension, built in place with setuptools (as `pip install -e .` builds it)
    "import sys\nfrom setuptools import Extension, setup\n"
    "setup(name='lepton-bench', ext_modules=[Extension(sys.argv[1], [sys.argv[2]])],"
    " script_args=['-q', 'build_ext', '--inplace'])"
)


def _build_extensions(src: Path) -> None:
    """A commit's compiled parts (lepton/**/_*.c), built in its exported tree:
    `git archive` holds their sources only."""
    for c in sorted(src.glob("lepton/**/_*.c")):
        module = ".".join(c.relative_to(src).with_suffix("").parts)
        subprocess.run([sys.executable, "-c", _BUILD, module, str(c.relative_to(src))], cwd=src, check=True)


class Lepton(Tool):
    name = "lepton"

    def __init__(self, cache: Cache, exe: Path, rev: str, work: Path) -> None:
        """``rev``: "worktree" runs ``exe`` (the editable install: the working
        tree as it is, even while others edit it); a commit (default HEAD) is
        exported with `git archive` into the scratch folder and run from
        there, so edits in flight cannot break or skew a run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEPTON_")}
        super().__init__(cache, env)
        self.rev = rev
        if rev == "worktree":
            self.cmd = [str(exe)]
        else:
            sha = subprocess.run(
                ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            self.rev = sha
            src = work / f"lepton-src-{sha[:12]}"
            if not src.exists():
                src.mkdir(parents=True)
                archive = subprocess.run(
                    ["git", "archive", sha, "lepton"], cwd=ROOT, capture_output=True, check=True
                )
                subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
                _build_extensions(src)
            env["PYTHONPATH"] = str(src)
            launcher = (  # the console script's module (lepton.cli.main's before it had one)
                "import sys\nsys.argv[0] = 'lepton'\ntry:\n    from lepton.cli.launch import run\n"
                "except ImportError:\n    from lepton.cli.main import run\nsys.exit(run())"
            )
            self.cmd = [sys.executable, "-c", launcher]
        self.exe = self.cmd[0]
        probe = run([*self.cmd, "data", "status", "--help"], Path.cwd(), env, check=False)
        self.has_status = probe.rc == 0
        probe = run([*self.cmd, "labels", "status", "--help"], Path.cwd(), env, check=False)
        self.has_labels_status = probe.rc == 0

    def version(self) -> str:
        if self.rev != "worktree":
            subject = subprocess.run(
                ["git", "log", "-1", "--format=%h %s", self.rev], cwd=ROOT, capture_output=True, text=True
            )
            return f"commit {subject.stdout.strip()[:100]} (exported with git archive)"
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "lepton"], cwd=ROOT, capture_output=True, text=True
        )
        changed = [line[3:] for line in dirty.stdout.splitlines()]
        return f"{rev.stdout.strip()} (working tree; lepton/ changes: {', '.join(changed) or 'none'})"

    def init(self, folder: Path) -> None:
        run([*self.cmd, "init"], folder, self.env)

    def snapshot(self, data: Data, version: int, folder: Path, src: Path) -> list[Result]:
        lep = self.cmd
        if data.variant == "tree":
            return [self.timed([*lep, "data", "snapshot", "tree", str(src / "tree")], folder)]
        if data.variant == "full":
            return [
                self.timed([*lep, "data", "snapshot", "table", str(src / "table.csv"), "--key", "id"], folder)
            ]
        out = []
        if version == 1:
            out.append(
                self.timed(
                    [*lep, "data", "snapshot", "features", str(src / "features.csv"), "--key", "id"], folder
                )
            )
        labels = [
            *lep,
            "labels",
            "snapshot",
            "labels",
            str(src / "labels.csv"),
            "--dataset",
            "features@latest",
        ]
        out.append(self.timed([*labels, "--key", "id", "--label", "label"], folder))
        return out

    def store(self, folder: Path) -> Path:
        return folder / ".lepton" / "store"

    def status(self, data: Data, folder: Path) -> tuple[float | None, str]:
        if not self.has_status:
            return None, "n/a: `lepton data status` does not exist in this build"
        lep = self.cmd
        if data.variant == "tree":
            cmds = [[*lep, "data", "status", "tree", "tree"]]
        elif data.variant == "full":
            cmds = [[*lep, "data", "status", "table", "table.csv"]]
        else:
            lab = "labels" if self.has_labels_status else "data"
            cmds = [
                [*lep, "data", "status", "features", "features.csv"],
                [*lep, lab, "status", "labels", "labels.csv"],
            ]
        total = 0.0
        for c in cmds:
            r = self.timed(c, folder, check=False)
            if r.rc != 0:
                return (
                    None,
                    f"n/a: `lepton {' '.join(c[len(self.cmd) :])}` exited {r.rc}: {r.out.strip()[-300:]}",
                )
            total += r.wall_s
        return total, "ok"

    def checkout(self, data: Data, folder: Path, fmt: str) -> float:
        dest = folder / "checkout"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        if data.variant == "tree":
            refs = [("tree@latest", dest / "tree")]
        elif data.variant == "full":
            refs = [("table@latest", dest / f"table.{fmt}")]
        else:
            refs = [("features@latest", dest / f"features.{fmt}"), ("labels@latest", dest / f"labels.{fmt}")]
        total = 0.0
        for ref, path in refs:
            total += self.timed([*self.cmd, "data", "checkout", ref, str(path)], folder).wall_s
        if data.variant == "tree":
            got, want = digest(dest / "tree"), digest(data.folder / "tree")
            if got != want:
                raise CommandFailed(f"lepton checkout of the tree differs from the source ({got} != {want})")
        shutil.rmtree(dest, ignore_errors=True)
        return total


class Dvc(Tool):
    name = "dvc"

    def __init__(self, cache: Cache, exe: Path) -> None:
        env = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_TERMINAL_PROMPT="0")
        super().__init__(cache, env)
        self.exe = str(exe)

    def version(self) -> str:
        return run([self.exe, "--version"], Path.cwd(), self.env).out.strip()

    def init(self, folder: Path) -> None:
        run(["git", "init", "-q"], folder, self.env)
        run([self.exe, "init", "-q"], folder, self.env)
        for k, v in (
            ("core.autostage", "false"),
            ("core.analytics", "false"),
            ("core.site_cache_dir", str(folder / ".dvc-site-cache")),
        ):
            run([self.exe, "config", k, v], folder, self.env)

    def snapshot(self, data: Data, version: int, folder: Path, src: Path) -> list[Result]:
        return [self.timed([self.exe, "add", *data.changed(version)], folder)]

    def store(self, folder: Path) -> Path:
        return folder / ".dvc" / "cache"

    def status(self, data: Data, folder: Path) -> tuple[float | None, str]:
        r = self.timed([self.exe, "status"], folder)
        if "up to date" not in r.out:
            return None, f"n/a: dvc status reported changes: {r.out.strip()[-300:]}"
        return r.wall_s, "ok"

    def checkout(self, data: Data, folder: Path, fmt: str) -> float:
        want = {n: digest(folder / n) for n in data.files}
        for n in data.files:
            p = folder / n
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        t = self.timed([self.exe, "checkout"], folder).wall_s
        got = {n: digest(folder / n) for n in data.files}
        if got != want:
            raise CommandFailed(f"dvc checkout restored different data: {got} != {want}")
        return t


def run_scenario(tool: Tool, plan: Plan, variant: str, work: Path, seed: int, alone: bool) -> dict:
    """Ten versions with one tool in a fresh folder; every figure of that run."""
    folder = work / f"{plan.name}-{tool.name}-{variant}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    data = Data(plan, folder, variant, seed)
    tool.init(folder)
    rec: dict = {
        "variant": variant,
        "snapshot_s": [],
        "snapshot_parts_s": [],
        "snapshot_rss_mb": [],
        "bytes": [],
    }
    try:
        for v in range(1, VERSIONS + 1):
            data.make(v)
            results = tool.snapshot(data, v, folder, folder)
            rec["snapshot_s"].append(sum(r.wall_s for r in results))
            rec["snapshot_parts_s"].append([r.wall_s for r in results])
            rec["snapshot_rss_mb"].append(max(r.maxrss_mb for r in results))
            rec["bytes"].append(data.nbytes())
            print(
                f"    {tool.name:6} {variant:5} v{v:<2} {rec['snapshot_s'][-1]:7.2f} s "
                f"{rec['bytes'][-1] / MB:9.1f} MB  rss {rec['snapshot_rss_mb'][-1]:6.0f} MB",
                flush=True,
            )
        store = tool.store(folder)
        rec["store_bytes"], rec["store_alloc_bytes"] = sizes(store)
        rec["status_s"], rec["status_note"] = tool.status(data, folder)
        rec["digests"] = {n: digest(folder / n) for n in data.files}
        rec["checkout_s"] = tool.checkout(data, folder, "csv")
        if isinstance(tool, Lepton) and variant != "tree":
            rec["checkout_parquet_s"] = tool.checkout(data, folder, "parquet")
        if isinstance(tool, Dvc):
            # DVC's cache holds each file as it is: the last version alone is the data's size.
            rec["alone_bytes"] = rec["bytes"][-1]
        elif alone:
            solo = work / f"{plan.name}-{tool.name}-alone"
            shutil.rmtree(solo, ignore_errors=True)
            solo.mkdir()
            tool.init(solo)
            tool.snapshot(data, 1, solo, folder)
            rec["alone_bytes"] = sizes(tool.store(solo))[0]
            shutil.rmtree(solo, ignore_errors=True)
        print(
            f"    {tool.name:6} {variant:5} store {rec['store_bytes'] / MB:9.1f} MB, status "
            f"{_fmt_s(rec['status_s'])}, checkout {rec['checkout_s']:.2f} s",
            flush=True,
        )
    except CommandFailed as e:
        rec["error"] = str(e)
        print(f"    {tool.name} {variant}: FAILED\n{e}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rec


def _fmt_s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


# ---- aggregation -------------------------------------------------------------
def stats(values: list[float]) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1].get("error") if runs else "no run"}
    s: dict = {
        "snapshot_v1_s": stats([r["snapshot_s"][0] for r in ok]),
        "snapshot_next_s": stats([t for r in ok for t in r["snapshot_s"][1:]]),
        "snapshot_total_s": stats([sum(r["snapshot_s"]) for r in ok]),
        "snapshot_peak_rss_mb": stats([max(r["snapshot_rss_mb"]) for r in ok]),
        "v1_MBps": stats([r["bytes"][0] / r["snapshot_s"][0] / MB for r in ok]),
        "next_MBps": stats(
            [b / t / MB for r in ok for b, t in zip(r["bytes"][1:], r["snapshot_s"][1:], strict=True)]
        ),
        "store_bytes": stats([r["store_bytes"] for r in ok]),
        "store_alloc_bytes": stats([r["store_alloc_bytes"] for r in ok]),
        "last_version_bytes": stats([r["bytes"][-1] for r in ok]),
        "alone_bytes": stats([r.get("alone_bytes") for r in ok]),
        "status_s": stats([r["status_s"] for r in ok]),
        "status_note": ok[-1]["status_note"],
        "checkout_s": stats([r["checkout_s"] for r in ok]),
        "checkout_parquet_s": stats([r.get("checkout_parquet_s") for r in ok]),
    }
    if s["alone_bytes"]:
        s["store_ratio"] = s["store_bytes"]["median"] / s["alone_bytes"]["median"]
    return s


def med(s: dict | None, key: str) -> float | None:
    if not s or "error" in s or not s.get(key):
        return None
    return s[key]["median"]


def targets(result: dict) -> list[dict]:
    rows: list[dict] = []
    sc = result["scenarios"]

    def add(target: str, figure: str, ok: bool | None, note: str = "") -> None:
        rows.append({"target": target, "figure": figure, "result": _verdict(ok), "note": note})

    for name, limit in STORE_RATIO_TARGET.items():
        if name not in sc:
            continue
        t = sc[name]["summary"]
        lep = t.get("lepton", {})
        ratio = lep.get("store_ratio")
        add(
            f"{name} store after 10 versions <= {limit}x the last version alone",
            "n/a"
            if ratio is None
            else f"{ratio:.2f}x ({_mb(med(lep, 'store_bytes'))} / {_mb(med(lep, 'alone_bytes'))})",
            None if ratio is None else ratio <= limit,
        )
        for dv in ("dvc", "dvc-split"):
            if dv not in t:
                continue
            a, b = med(lep, "store_bytes"), med(t[dv], "store_bytes")
            frac = None if a is None or b is None else a / b
            add(
                f"{name} store far below {dv}'s (<= {FAR_BELOW:.0%} of it)",
                "n/a" if frac is None else f"{frac:.0%} ({_mb(a)} vs {_mb(b)})",
                None if frac is None else frac <= FAR_BELOW,
                FAR_NOTES.get((name, dv), ""),
            )
    limit = result["limits"]["read_hash_limit_MBps"]
    floor = result["limits"].get("csv_to_parquet")
    floor_note = (
        ""
        if floor is None
        else f"; pyarrow alone, CSV -> Parquet: {floor['MBps']['median']:,.0f} MB/s = "
        f"{floor['MBps']['median'] / limit:.0%} of the limit"
    )
    for name, versions in (
        ("S1", (("v1", "first 1 GiB version"), ("next", "next versions (+5%)"))),
        ("S3", (("next", "next versions (0.1% of rows edited)"),)),  # (its first version: as S1's)
    ):
        if name not in sc:
            continue
        t = sc[name]["summary"]
        lep, dvc = t.get("lepton", {}), t.get("dvc", {})
        for which, what in versions:
            a, b = med(lep, f"snapshot_{which}_s"), med(dvc, f"snapshot_{which}_s")
            add(
                f"{name} snapshot time, {what}: no slower than dvc add",
                "n/a" if a is None or b is None else f"{a:.2f} s vs {b:.2f} s ({a / b:.2f}x)",
                None if a is None or b is None else a <= b,
            )
        for which, what in versions:
            rate = med(lep, f"{which}_MBps")
            add(
                f"{name} snapshot throughput, {what}: >= {READ_HASH_FRACTION:.0%} of read+hash limit",
                "n/a" if rate is None else f"{rate:,.0f} MB/s = {rate / limit:.0%} of {limit:,.0f} MB/s",
                None if rate is None else rate >= READ_HASH_FRACTION * limit,
                "version bytes / wall time; limit: "
                + result["limits"]["read_hash_limit_kind"]
                + (floor_note if which == "v1" else ""),
            )
    for name in (n for n in TREES if n in sc):
        t = sc[name]["summary"]
        a, b = med(t.get("lepton"), "status_s"), med(t.get("dvc"), "status_s")
        add(
            f"{name} no-change status faster than dvc status",
            ("n/a" if a is None else f"{a:.2f} s") + (f" vs {b:.2f} s" if b is not None else ""),
            None if a is None or b is None else a < b,
            "" if a is not None else t.get("lepton", {}).get("status_note", ""),
        )
    mem = result.get("memory_test")
    if mem:
        lep = mem.get("lepton", {})
        peak = lep.get("maxrss_mb")
        add(
            f"Peak memory of a {mem['bytes'] / 1e9:.2f} GB table snapshot "
            f"< {PEAK_MEMORY_TARGET_MB / 1000:.0f} GB",
            "n/a"
            if peak is None
            else f"{peak:,.0f} MB" + (" (killed at the cap)" if lep.get("killed") else ""),
            None
            if peak is None
            else (peak < PEAK_MEMORY_TARGET_MB and not lep.get("killed") and lep.get("rc") == 0),
            "" if mem["bytes"] >= 4.5e9 else "scaled down: the target is for 5 GB",
        )
    return rows


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _mb(b: float | None) -> str:
    return "n/a" if b is None else f"{b / MB:,.1f} MB"


# ---- memory test ------------------------------------------------------------
def memory_test(lepton: Lepton, dvc: Dvc | None, work: Path, scale: float, seed: int, cap_mb: float) -> dict:
    folder = work / "memory-test"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = gen.rows_for_bytes(5e9 * scale)
    try:
        nbytes = gen.write_table(folder / "big.csv", rows, gen.FULL, seed)
        out: dict = {"bytes": nbytes, "rows": rows, "cap_mb": cap_mb}
        lepton.init(folder)
        print(f"  memory test: lepton snapshot of a {nbytes / 1e9:.2f} GB CSV", flush=True)
        lepton.cache.prepare(folder)
        r = run(
            [*lepton.cmd, "data", "snapshot", "big", "big.csv", "--key", "id"],
            folder,
            lepton.env,
            check=False,
            cap_mb=cap_mb,
        )
        out["lepton"] = {"wall_s": r.wall_s, "maxrss_mb": r.maxrss_mb, "rc": r.rc, "killed": r.killed}
        if r.rc != 0 and not r.killed:
            out["lepton"]["error"] = r.out[-2000:]
        print(f"    lepton: {r.wall_s:.1f} s, peak RSS {r.maxrss_mb:,.0f} MB, rc {r.rc}", flush=True)
        if dvc is not None:
            dvc.init(folder)
            dvc.cache.prepare(folder)
            r = run([dvc.exe, "add", "big.csv"], folder, dvc.env, check=False, cap_mb=cap_mb)
            out["dvc"] = {"wall_s": r.wall_s, "maxrss_mb": r.maxrss_mb, "rc": r.rc, "killed": r.killed}
            print(f"    dvc:    {r.wall_s:.1f} s, peak RSS {r.maxrss_mb:,.0f} MB, rc {r.rc}", flush=True)
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- DVC install ---------------------------------------------------------------
def ensure_dvc(venv: Path, version: str) -> Path:
    exe = venv / "bin" / "dvc"
    if exe.exists():
        got = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
        if got.returncode == 0 and got.stdout.strip() == version:
            return exe
    print(f"installing dvc=={version} into {venv} (a minute or two)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"dvc=={version}"],
        check=True,
    )
    return exe


# ---- report --------------------------------------------------------------------
TOOLS = ("lepton", "dvc", "dvc-split")


def _cell(s: dict | None, key: str, fmt: Callable[[float], str]) -> str:
    if not s or "error" in s:
        return "error" if s else "-"
    v = s.get(key)
    if not v:
        return "n/a"
    if v["n"] > 1 and v["min"] != v["max"]:
        return f"{fmt(v['median'])} [{fmt(v['min'])}-{fmt(v['max'])}]"
    return fmt(v["median"])


def markdown(result: dict) -> str:
    p = result["params"]
    lines = [
        "# Lepton vs DVC",
        "",
        f"scale {p['scale']} ({'full size' if p['scale'] == 1 else 'scaled down'}), "
        f"{p['repeats']} repeat(s), "
        f"page cache: {result['cache_note']}.",
        f"Machine: {result['machine']['cpus']} CPUs, {result['machine']['mem_gb']:.0f} GB RAM, "
        f"{result['machine']['platform']}; {result['versions']['dvc']}; "
        f"lepton {result['versions']['lepton']}.",
        f"Start-up of a no-op command: lepton {result['startup_s']['lepton']:.2f} s, "
        f"dvc {result['startup_s']['dvc']:.2f} s (`--help`). Cells: median [min-max] over repeats "
        "(next versions: over versions 2-10 of every repeat).",
        "",
        lim.table(result["limits"]["measured"]),
        "",
        f"Read+hash limit used below: {result['limits']['read_hash_limit_MBps']:,.0f} MB/s "
        f"({result['limits']['read_hash_limit_kind']}).",
        "",
    ]
    floor = result["limits"].get("csv_to_parquet")
    if floor:
        got = floor["MBps"]
        lines += [
            f"Columnar floor: pyarrow alone (every thread) turns the cold {floor['file_mib']} MiB CSV "
            f"into Parquet (zstd -1, no dictionaries) at {got['median']:,.0f} MB/s "
            f"[{got['min']:,.0f}-{got['max']:,.0f}], "
            f"{got['median'] / result['limits']['read_hash_limit_MBps']:.0%} of the read+hash limit: "
            "what storing a first version as columns costs with nothing versioned.",
            "",
        ]

    def s1(x: float) -> str:
        return f"{x:.2f}"

    def mb(x: float) -> str:
        return f"{x / MB:,.1f}"

    def rate(x: float) -> str:
        return f"{x:,.0f}"

    def mem(x: float) -> str:
        return f"{x:,.0f}"

    for name, sc in result["scenarios"].items():
        summ = sc["summary"]
        tools = [t for t in TOOLS if t in summ]
        lines += [
            f"## {name}: {sc['title']}",
            "",
            f"First version: {sc['first_version_bytes'] / MB:,.1f} MB, "
            f"last: {sc['last_version_bytes'] / MB:,.1f} MB.",
            "",
            "| | " + " | ".join(tools) + " |",
            "|---|" + "---:|" * len(tools),
        ]
        metrics = [
            ("snapshot v1 (s)", "snapshot_v1_s", s1),
            ("snapshot per next version (s)", "snapshot_next_s", s1),
            ("snapshot throughput v1 (MB/s)", "v1_MBps", rate),
            ("snapshot throughput next (MB/s)", "next_MBps", rate),
            ("snapshot peak RSS (MB)", "snapshot_peak_rss_mb", mem),
            ("store after 10 versions (MB)", "store_bytes", mb),
            ("last version alone (MB)", "alone_bytes", mb),
            ("no-change status (s)", "status_s", s1),
            ("checkout latest, CSV/files (s)", "checkout_s", s1),
            ("checkout latest, Parquet (s)", "checkout_parquet_s", s1),
        ]
        for label, key, fmt in metrics:
            cells = [_cell(summ.get(t), key, fmt) for t in tools]
            if all(c in ("n/a", "-") for c in cells):
                continue
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        ratios = [summ[t].get("store_ratio") for t in tools]
        lines.append(
            "| store / last version alone | "
            + " | ".join("-" if r is None else f"{r:.2f}x" for r in ratios)
            + " |"
        )
        for t in tools:
            if "error" in summ[t]:
                lines += ["", f"{t} failed: `{summ[t]['error'].splitlines()[0][:300]}`"]
            elif summ[t].get("status_note", "ok") != "ok":
                lines += ["", f"{t} status: {summ[t]['status_note']}"]
        lines.append("")
    if result.get("memory_test"):
        m = result["memory_test"]
        lines += [f"## Memory: snapshot of a {m['bytes'] / 1e9:.2f} GB table", ""]
        for t in ("lepton", "dvc"):
            if t in m:
                r = m[t]
                lines.append(
                    f"- {t}: {r['wall_s']:.1f} s, peak RSS {r['maxrss_mb']:,.0f} MB"
                    + (" (killed at the cap)" if r["killed"] else "")
                    + (f", exit {r['rc']}" if r["rc"] else "")
                )
        lines.append("")
    lines += ["## Targets", "", "| target | figure | result | note |", "|---|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['figure']} | {t['result']} | {t['note']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    panels = [
        ("snapshot, first version (s)", "snapshot_v1_s", 1.0),
        ("snapshot per next version (s)", "snapshot_next_s", 1.0),
        ("store after 10 versions (MB)", "store_bytes", 1 / MB),
        ("no-change status (s)", "status_s", 1.0),
        ("checkout of the latest version (s)", "checkout_s", 1.0),
        ("snapshot peak RSS (MB)", "snapshot_peak_rss_mb", 1.0),
    ]
    colors = {"lepton": "#4c72b0", "dvc": "#dd8452", "dvc-split": "#c44e52"}
    names = list(result["scenarios"])
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    width = 0.27
    for ax, (title, key, mult) in zip(axes.flat, panels, strict=True):
        for i, tool in enumerate(TOOLS):
            for j, name in enumerate(names):
                s = result["scenarios"][name]["summary"].get(tool)
                if s is None:
                    continue
                x = j + (i - 1) * width
                v = s.get(key) if "error" not in s else None
                if not v:
                    ax.text(
                        x,
                        0.02,
                        "n/a",
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        fontsize=7,
                        rotation=90,
                    )
                    continue
                y = v["median"] * mult
                err = [[y - v["min"] * mult], [v["max"] * mult - y]]
                ax.bar(x, y, width, color=colors[tool], yerr=err, capsize=2)
        ax.set_xticks(range(len(names)), names)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[t]) for t in TOOLS]
    fig.legend(
        handles, ["lepton", "dvc", "dvc-split (S2: labels in their own file)"], loc="upper right", ncol=3
    )
    p = result["params"]
    fig.suptitle(
        f"Lepton vs DVC {result['versions']['dvc']}, scale {p['scale']}, {p['repeats']} repeat(s), "
        f"{result['machine']['cpus']} CPUs, cache {result['cache_mode']} (median, min-max bars; log scale)",
        fontsize=10,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)


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


def write_report(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(result, indent=2))
    md = markdown(result)
    Path(f"{out}.md").write_text(md)
    plot(result, Path(f"{out}.png"))
    print()
    print(md)
    print(f"wrote {out}.json, {out}.md, {out}.png")


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
