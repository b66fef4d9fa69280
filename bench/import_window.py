"""How much of a cold table file a helper thread gets through while a
snapshot command imports its modules: the room a head start has.

    .venv/bin/python bench/import_window.py FILE [--mode none|read|hash|full]

The file's pages are evicted first (bench/limits.py); then a helper thread
reads it with O_DIRECT in 32 MiB blocks (one read ahead on a second
thread) and, by ``--mode``, does nothing more (read), blake3-hashes each
block (hash, what today's head start does, there through the page cache),
or also cuts it and hashes its lines as the ingest does (full: the
ingest's first_field_boundaries and linehash.of, one call each a block,
first field the key, comma-separated), while this thread imports what `lepton data
snapshot` imports. Prints how long the imports took and how many bytes the
helper had done by then. ``none`` runs no helper: the imports alone.

On the session's VM of 2026-12-07: the imports alone 0.49-0.58 s (3
runs); with ``full`` 0.63-0.74 s, the helper through 300-340 MB of a 1.07
GB file (4 runs; README, "Where an S3 version's time goes").
"""

from __future__ import annotations

import argparse
import mmap
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import limits  # noqa: E402

BLOCK = 32 << 20


def helper(path: str, mode: str, done: list[int], stop: threading.Event) -> None:
    import blake3

    from lepton.data import linehash
    from lepton.data.directread import DirectFile
    from lepton.data.linecuts import first_field_boundaries

    fd = os.open(path, os.O_RDONLY)
    direct = DirectFile.reopen(fd)
    os.close(fd)
    if direct is None:
        raise SystemExit(f"{path}: its file system does not take O_DIRECT reads")
    buffers = [mmap.mmap(-1, BLOCK), mmap.mmap(-1, BLOCK)]
    hasher = blake3.blake3()
    offset = k = 0
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(direct.read, memoryview(buffers[0]), 0)
        while not stop.is_set():
            n = pending.result()
            if n == 0:
                break
            block = buffers[k % 2]
            k += 1
            pending = reader.submit(direct.read, memoryview(buffers[k % 2]), offset + n)
            view = memoryview(block)[:n]
            if mode in ("hash", "full"):
                hasher.update(view)
            if mode == "full":
                whole = block.rfind(b"\n", 0, n) + 1  # whole lines only
                first_field_boundaries(block, 0, whole, False, ",")
                linehash.of(view[:whole], ",", 0)
            offset += n
            done[0] = offset
            if n < BLOCK:
                break
    direct.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=Path)
    ap.add_argument("--mode", choices=("none", "read", "hash", "full"), default="full")
    args = ap.parse_args()
    limits.evict(args.file)
    done, stop = [0], threading.Event()
    started = time.perf_counter()
    if args.mode != "none":
        threading.Thread(target=helper, args=(str(args.file), args.mode, done, stop), daemon=True).start()
    import lepton.cli.main
    import lepton.data.fileingest
    import lepton.repo  # noqa: F401

    took, got = time.perf_counter() - started, done[0]
    stop.set()
    print(f"{args.mode:5s} imports {took:.2f} s; the helper had done {got / 1e6:,.0f} MB")


if __name__ == "__main__":
    main()
