"""Running and timing the commands of bench/dvc_compare.py.

A command's wall time and its own peak RSS (with an optional memory cap and
timeout), the page-cache modes the measurements run under (cold, warm,
drop), and the on-disk sizes and content digests of files and folders.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import blake3
import limits as lim


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
