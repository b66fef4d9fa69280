"""Cost measurements of a model: latency, peak memory, size.

These vary run to run by nature, so they live in ``Cost`` manifests, which a
replay reports as declared non-determinism. MB here means 2**20 bytes.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from lepton.errors import InvalidInput

MB = float(2**20)
STATM = "/proc/self/statm"
MAX_SINGLE = 200


def _ms(ns: Iterable[int]) -> np.ndarray:
    return np.asarray(list(ns), dtype=np.float64) / 1e6


def _timed(predict: Callable[[np.ndarray], Any], x: np.ndarray) -> int:
    start = time.perf_counter_ns()
    predict(x)
    return time.perf_counter_ns() - start


def _p50_p95(ms: np.ndarray) -> tuple[float, float]:
    p50, p95 = np.percentile(ms, [50.0, 95.0])
    return float(p50), float(p95)


def measure_latency(
    predict: Callable[[np.ndarray], Any],
    x: np.ndarray,
    batch_size: int = 64,
    repeats: int = 5,
) -> dict[str, float]:
    """p50/p95 latency in ms per batch (all batches x repeats) and per single row.

    Single rows: up to 200, evenly spaced over ``x``, one call each. One
    warm-up call of each shape runs first and is not counted. Keys are the
    cost metric names ``latency_p50_ms``, ``latency_p95_ms``,
    ``latency_per_sample_p50_ms`` and ``latency_per_sample_p95_ms``.
    """
    n = len(x)
    if n == 0:
        raise InvalidInput("cannot measure latency on an empty input (0 rows)")
    if batch_size < 1 or repeats < 1:
        raise InvalidInput(f"batch_size and repeats must be >= 1, got {batch_size}, {repeats}")
    batches = [x[i : i + batch_size] for i in range(0, n, batch_size)]
    rows = np.unique(np.linspace(0, n - 1, num=min(MAX_SINGLE, n)).round().astype(np.int64))
    predict(batches[0])
    predict(x[rows[0] : rows[0] + 1])
    batch_ms = _ms(_timed(predict, b) for _ in range(repeats) for b in batches)
    single_ms = _ms(_timed(predict, x[i : i + 1]) for i in rows)
    b50, b95 = _p50_p95(batch_ms)
    s50, s95 = _p50_p95(single_ms)
    return {
        "latency_p50_ms": b50,
        "latency_p95_ms": b95,
        "latency_per_sample_p50_ms": s50,
        "latency_per_sample_p95_ms": s95,
    }


class _RssSampler:
    """Samples this process's resident set size from /proc/self/statm in a thread."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.fd = os.open(STATM, os.O_RDONLY)
        self.baseline = self.peak = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lepton-rss-sampler", daemon=True)

    def read(self) -> int:
        return int(os.pread(self.fd, 256, 0).split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())
        os.close(self.fd)

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.baseline)


def _rss_sampler() -> _RssSampler | None:
    try:
        return _RssSampler()
    except (OSError, ValueError, IndexError):
        return None


def measure_peak_memory(predict: Callable[[np.ndarray], Any], x: np.ndarray) -> float:
    """Peak extra memory of one ``predict(x)`` call in MB.

    The larger of tracemalloc's peak (Python and NumPy allocations) and the
    growth of the resident set sampled every ~2 ms (native allocations such
    as torch's); tracemalloc alone where /proc is missing. RSS growth only
    sees memory the process had not touched before, so it is a lower bound.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sampler = _rss_sampler()
        if sampler is None:
            predict(x)
            rss_growth = 0
        else:
            with sampler:
                predict(x)
            rss_growth = sampler.growth
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(peak - start, rss_growth) / MB


def dir_size_mb(sizes: Iterable[int]) -> float:
    """Total of file sizes in bytes, in MB (2**20 bytes)."""
    total = 0
    for s in sizes:
        if s < 0:
            raise InvalidInput(f"a file size cannot be negative, got {s}")
        total += int(s)
    return total / MB
