"""Measure the content hash candidates on this machine (the README's "Hash
choice" figures). Writes bench/results/hash_choice.json and a PNG plot.

    python bench/hash_choice.py [--mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import blake3

OUT = Path(__file__).parent / "results"


def _rate(fn, data: bytes, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(data)
        best = min(best, time.perf_counter() - t0)
    return len(data) / best / 1e6


def _file_rate(path: Path, make, repeat: int = 3) -> float:
    size = path.stat().st_size
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        h = make()
        with open(path, "rb") as f:
            while block := f.read(8 << 20):
                h.update(block)
        h.digest()
        best = min(best, time.perf_counter() - t0)
    return size / best / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512)
    args = ap.parse_args()
    data = os.urandom(args.mib << 20)
    memory = {
        "md5": _rate(lambda d: hashlib.md5(d).digest(), data),  # noqa: S324 - DVC's hash, measured only
        "sha256": _rate(lambda d: hashlib.sha256(d).digest(), data),
        "blake3 (1 thread)": _rate(lambda d: blake3.blake3(d).digest(), data),
        "blake3 (auto threads)": _rate(
            lambda d: blake3.blake3(d, max_threads=blake3.blake3.AUTO).digest(), data
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blob"
        path.write_bytes(data)
        streamed = {
            "sha256": _file_rate(path, hashlib.sha256),
            "blake3 (auto threads, 8 MiB blocks)": _file_rate(
                path, lambda: blake3.blake3(max_threads=blake3.blake3.AUTO)
            ),
        }
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "size_mib": args.mib,
        "memory_MBps": memory,
        "warm_file_MBps": streamed,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "hash_choice.json").write_text(json.dumps(result, indent=2))
    for section in ("memory_MBps", "warm_file_MBps"):
        for name, rate in result[section].items():
            print(f"{section:15} {name:40} {rate:8.0f} MB/s")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(memory)
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.barh(names, [memory[n] for n in names])
        ax.set_xlabel("MB/s (in memory, higher is better)")
        ax.set_title(f"Hash throughput, {args.mib} MiB, {os.cpu_count()} cores")
        fig.tight_layout()
        fig.savefig(OUT / "hash_choice.png", dpi=100)
    except ImportError:
        print("(matplotlib not installed: no plot)")


if __name__ == "__main__":
    main()
