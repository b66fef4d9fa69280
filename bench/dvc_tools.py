"""The two tools of bench/dvc_compare.py, as command-line programs.

Lepton (a commit exported with git archive, or the working tree) and DVC
(its own virtual environment, installed on first use): init, snapshot,
store, status and checkout, each timed the same way; one tool's ten-version
run of a scenario, and the peak-memory test of a large table snapshot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import datagen as gen
from cmdtiming import Cache, CommandFailed, Result, digest, run, sizes
from dvc_plans import MB, VERSIONS, Data, Plan

ROOT = Path(__file__).resolve().parent.parent


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
