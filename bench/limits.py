"""The machine's own limits for snapshotting data, measured in this run:
what reading a file and hashing it costs when nothing else is done.

    python bench/limits.py [--mib 1024] [--dir /tmp]

- hashing in memory: blake3 with 1 thread and with every thread, and md5
  (DVC's hash) for reference;
- sequential read of a generated file, warm (in the page cache) and cold
  (the file's pages evicted first with posix_fadvise(DONTNEED) after a sync);
- read + hash in one pass (8 MiB blocks, blake3 with every thread), warm
  and cold: the ceiling for a snapshot that must read and hash every byte;
- with ``csv_to_parquet`` (dvc_compare.py, for the table scenarios): the
  columnar floor, pyarrow alone (every thread) turning a cold CSV table of
  the benchmark's layout into Parquet as Lepton stores chunks (zstd -1, no
  dictionaries), nothing versioned: what any tool that stores a first
  version as columns must at least do besides reading and hashing.

Each figure is the median of ``repeats`` runs, in MB/s (10^6 bytes/s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3

BLOCK = 8 << 20


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (clean pages only: sync first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _median_rate(
    nbytes: int, fn: Callable[[], object], repeats: int, before: Callable[[], None] | None
) -> dict:
    rates = []
    for _ in range(repeats):
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        rates.append(nbytes / (time.perf_counter() - t0) / 1e6)
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def _read(path: Path, hasher: Callable[[], object] | None = None) -> None:
    h = hasher() if hasher else None
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            if h is not None:
                h.update(view[:n])  # type: ignore[attr-defined]
    if h is not None:
        h.digest()  # type: ignore[attr-defined]


def measure(mib: int = 1024, folder: str | None = None, repeats: int = 3) -> dict:
    size = mib << 20
    data = os.urandom(size)
    auto = blake3.blake3.AUTO
    memory = {
        "blake3_1_thread": _median_rate(size, lambda: blake3.blake3(data).digest(), repeats, None),
        "blake3_all_threads": _median_rate(
            size, lambda: blake3.blake3(data, max_threads=auto).digest(), repeats, None
        ),
        "md5": _median_rate(size, lambda: hashlib.md5(data).digest(), 1, None),  # noqa: S324 - DVC's hash
    }
    with tempfile.TemporaryDirectory(dir=folder, prefix="lepton-limits-") as tmp:
        path = Path(tmp) / "blob"
        path.write_bytes(data)
        data = b""  # free the memory
        os.sync()

        def cold() -> None:
            os.sync()
            evict(path)

        def all_threads() -> object:
            return blake3.blake3(max_threads=auto)

        def md5() -> object:
            return hashlib.md5()  # noqa: S324 - DVC's hash, measured only

        _read(path)  # make it warm
        warm = {
            "read": _median_rate(size, lambda: _read(path), repeats, None),
            "read_blake3_1_thread": _median_rate(size, lambda: _read(path, blake3.blake3), repeats, None),
            "read_blake3_all_threads": _median_rate(size, lambda: _read(path, all_threads), repeats, None),
            "read_md5": _median_rate(size, lambda: _read(path, md5), 1, None),
        }
        cold_ = {
            "read": _median_rate(size, lambda: _read(path), repeats, cold),
            "read_blake3_all_threads": _median_rate(size, lambda: _read(path, all_threads), repeats, cold),
            "read_md5": _median_rate(size, lambda: _read(path, md5), 1, cold),
        }
    return {
        "file_mib": mib,
        "cpus": os.cpu_count(),
        "blake3": blake3.__version__,
        "cache_eviction": "posix_fadvise(POSIX_FADV_DONTNEED) after sync",
        "memory_MBps": memory,
        "warm_file_MBps": warm,
        "cold_file_MBps": cold_,
    }


def csv_to_parquet(mib: int, folder: str | None = None, repeats: int = 2) -> dict:
    """MB/s (of CSV) of pyarrow reading a cold generated table of ``mib``
    MiB (bench/datagen.py's layout) with every thread and writing it as one
    Parquet file (zstd -1, no dictionaries); median, min and max."""
    import datagen
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(dir=folder, prefix="lepton-floor-") as d:
        src, out = Path(d) / "t.csv", Path(d) / "t.parquet"
        datagen.write_table(src, datagen.rows_for_bytes(mib << 20))
        os.sync()

        def convert() -> None:
            table = pacsv.read_csv(src)
            pq.write_table(table, out, compression="zstd", compression_level=-1, use_dictionary=False)

        got = _median_rate(src.stat().st_size, convert, repeats, lambda: evict(src))
        return {"file_mib": mib, "MBps": got}


def read_hash_limit(limits: dict, cold: bool) -> float:
    """The read+hash ceiling (MB/s) that snapshot throughput is judged against."""
    section = "cold_file_MBps" if cold else "warm_file_MBps"
    return limits[section]["read_blake3_all_threads"]["median"]


def table(limits: dict) -> str:
    m, w, c = limits["memory_MBps"], limits["warm_file_MBps"], limits["cold_file_MBps"]

    def f(d: dict, k: str) -> str:
        return f"{d[k]['median']:,.0f}" if k in d else "-"

    lines = [
        f"Machine limits ({limits['cpus']} CPUs, {limits['file_mib']} MiB file; MB/s, median)",
        "",
        "| | memory | file warm | file cold |",
        "|---|---:|---:|---:|",
        f"| read only | - | {f(w, 'read')} | {f(c, 'read')} |",
        f"| blake3, 1 thread | {f(m, 'blake3_1_thread')} | {f(w, 'read_blake3_1_thread')} | - |",
        f"| blake3, all threads | {f(m, 'blake3_all_threads')} | {f(w, 'read_blake3_all_threads')} "
        f"| {f(c, 'read_blake3_all_threads')} |",
        f"| md5 (DVC's hash) | {f(m, 'md5')} | {f(w, 'read_md5')} | {f(c, 'read_md5')} |",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--dir", default=None, help="where to write the test file (default: the temp folder)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = measure(args.mib, args.dir, args.repeats)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
