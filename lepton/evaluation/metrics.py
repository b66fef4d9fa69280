"""Quality metrics of a classifier, with percentile-bootstrap confidence intervals.

Pure functions: label arrays in, a ``QualityReport`` out. Point values equal
scikit-learn's ``accuracy_score`` and
``precision_recall_fscore_support(average="macro", zero_division=0)``: macro
averages run over the classes present in ``y_true`` or ``y_pred``, and a
rate whose denominator is zero counts as 0.

The bootstrap is vectorised and exact in distribution: resampling n rows
with replacement gives each group of identical rows (same true class, same
prediction) a Multinomial(n, group_size / n) count, so one multinomial draw
of shape (B, groups) yields all B resampled confusion matrices at once.
Same inputs and seed give the same report, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from lepton.errors import InvalidInput
from lepton.model_manifest import Estimate

QUALITY_METRICS: tuple[str, ...] = ("accuracy", "precision_macro", "recall_macro", "f1_macro")
COST_METRICS: tuple[str, ...] = (
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_per_sample_p50_ms",
    "latency_per_sample_p95_ms",
    "size_mb",
    "n_params",
    "peak_memory_mb",
    "train_time_s",
)
ALL_METRICS: tuple[str, ...] = QUALITY_METRICS + COST_METRICS
HIGHER_IS_BETTER: frozenset[str] = frozenset(QUALITY_METRICS)
RATES: tuple[str, ...] = ("precision", "recall", "f1")

_CHUNK_CELLS = 4_000_000  # resamples per chunk x k*k stays under this many counts


class QualityReport(BaseModel):
    """The quality part of an ``Evaluation``: metrics with CIs, per class, confusion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int
    confidence: float
    bootstrap: int
    metrics: dict[str, Estimate]
    per_class: dict[str, dict[str, float]]
    confusion: tuple[tuple[int, ...], ...]
    confusion_low: tuple[tuple[float, ...], ...]
    confusion_high: tuple[tuple[float, ...], ...]

    def evaluation_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``lepton.model_manifest.Evaluation`` (add name, predictions)."""
        return {
            "n": self.n,
            "confidence": self.confidence,
            "bootstrap": self.bootstrap,
            "metrics": self.metrics,
            "per_class": self.per_class,
            "confusion": self.confusion,
            "confusion_low": self.confusion_low,
            "confusion_high": self.confusion_high,
        }


# --- inputs -------------------------------------------------------------------------------


def check_labels(y: Any, n_classes: int, what: str = "labels") -> np.ndarray:
    """``y`` as a 1-D int64 array of class indices in [0, n_classes), or a clear error."""
    if n_classes < 1:
        raise InvalidInput(f"n_classes must be at least 1, got {n_classes}")
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise InvalidInput(f"{what} must be a 1-D array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(f"{what} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = (arr < 0) | (arr >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(f"{what}[{i}] = {arr[i]} is not a class index in [0, {n_classes})")
    return arr


def check_pair(y_true: Any, y_pred: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    t = check_labels(y_true, n_classes, "y_true")
    p = check_labels(y_pred, n_classes, "y_pred")
    if t.shape != p.shape:
        raise InvalidInput(f"y_true has {t.size} rows but y_pred has {p.size}")
    if t.size == 0:
        raise InvalidInput("cannot evaluate on an empty set (0 rows)")
    return t, p


# --- confusion matrices and rates ---------------------------------------------------------


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(k, k) int64 counts: rows = true class, columns = predicted class."""
    cells = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's zero_division=0)."""
    den = np.asarray(den, dtype=np.float64)
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, 0.0, np.asarray(num, dtype=np.float64) / safe)


def class_rates(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, f1, support and presence for (..., k, k) confusions."""
    c = np.asarray(confusion)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    true_sum = c.sum(axis=-1)
    pred_sum = c.sum(axis=-2)
    return {
        "precision": _divide(tp, pred_sum),
        "recall": _divide(tp, true_sum),
        "f1": _divide(2.0 * tp, true_sum.astype(np.float64) + pred_sum),
        "support": true_sum,
        "present": (true_sum + pred_sum) > 0,
    }


def metric_batch(name: str, confusions: np.ndarray) -> np.ndarray:
    """One quality metric for each of a stack of (B, k, k) confusions -> (B,) floats."""
    c = np.asarray(confusions)
    if name == "accuracy":
        n = c.sum(axis=(-2, -1))
        return _divide(np.trace(c, axis1=-2, axis2=-1), n)
    rate = _macro_rate(name)
    r = class_rates(c)
    present = r["present"]
    return _divide((r[rate] * present).sum(axis=-1), present.sum(axis=-1))


def metric_from_confusion(name: str, confusion: Any) -> float:
    """One quality metric of one (k, k) confusion; equal to scikit-learn's value."""
    c = np.asarray(confusion)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise InvalidInput(f"a confusion matrix must be square, got shape {c.shape}")
    if name == "accuracy":
        n = int(c.sum())
        return float(np.trace(c) / n) if n else 0.0
    rate = _macro_rate(name)
    r = class_rates(c)
    values = r[rate][r["present"]]
    return float(np.mean(values)) if values.size else 0.0


def _macro_rate(name: str) -> str:
    if name not in QUALITY_METRICS:
        known = ", ".join(QUALITY_METRICS)
        raise InvalidInput(f"unknown quality metric {name!r}: known ones are {known}")
    return name.removesuffix("_macro")


# --- bootstrap ----------------------------------------------------------------------------


def resampled_group_counts(
    keys: np.ndarray, bootstrap: int, seed: int
) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """Distinct ``keys`` and, chunk by chunk, their counts in ``bootstrap`` resamples.

    Equivalent to drawing row indices with replacement: the count of each
    group of equal keys is jointly Multinomial(n, group_size / n).
    """
    groups, sizes = np.unique(keys, return_counts=True)
    n = int(sizes.sum())
    probs = sizes / n
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK_CELLS // max(1, groups.size))

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, bootstrap, step):
            yield rng.multinomial(n, probs, size=min(step, bootstrap - start))

    return groups, chunks()


def scatter_counts(counts: np.ndarray, cells: np.ndarray, n_cells: int) -> np.ndarray:
    """(B, groups) counts -> (B, n_cells), summing groups that map to the same cell."""
    out = np.zeros((counts.shape[0], n_cells), dtype=np.int64)
    order = np.argsort(cells, kind="stable")
    sorted_cells = cells[order]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    out[:, sorted_cells[starts]] = np.add.reduceat(counts[:, order], starts, axis=1)
    return out


def bootstrap_confusions(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, bootstrap: int, seed: int
) -> Iterator[np.ndarray]:
    """Chunks of (b, k, k) confusion matrices of bootstrap resamples."""
    k = n_classes
    cells = y_true.astype(np.int64) * k + y_pred.astype(np.int64)
    groups, chunks = resampled_group_counts(cells, bootstrap, seed)
    for counts in chunks:
        yield scatter_counts(counts, groups, k * k).reshape(-1, k, k)


def percentile_ci(samples: np.ndarray, value: float, confidence: float) -> tuple[float, float]:
    """Percentile interval of ``samples`` (NaN: undefined there, left out),
    widened if needed to contain ``value``."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return value, value
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return min(float(low), value), max(float(high), value)


# --- the report ---------------------------------------------------------------------------


def quality(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    *,
    classes: tuple[str, ...],
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> QualityReport:
    """Accuracy and macro precision/recall/F1 with bootstrap CIs, per class, confusion."""
    t, p = check_pair(y_true, y_pred, n_classes)
    if len(classes) != n_classes:
        raise InvalidInput(f"{len(classes)} class names given for n_classes={n_classes}")
    if len(set(classes)) != len(classes):
        raise InvalidInput(f"class names must be distinct, got {list(classes)}")
    if not 0.0 < confidence < 1.0:
        raise InvalidInput(f"confidence must be in (0, 1), got {confidence}")
    if bootstrap < 0:
        raise InvalidInput(f"bootstrap must be >= 0, got {bootstrap}")
    conf = confusion_matrix(t, p, n_classes)
    macro: dict[str, list[np.ndarray]] = {m: [] for m in QUALITY_METRICS}
    rates: dict[str, list[np.ndarray]] = {r: [] for r in RATES}
    cells: list[np.ndarray] = []
    for chunk in bootstrap_confusions(t, p, n_classes, bootstrap, seed):
        cells.append(chunk)
        for m in QUALITY_METRICS:
            macro[m].append(metric_batch(m, chunk))
        r = class_rates(chunk)
        for name in RATES:  # a class absent from a resample has no rate there (as in the macro means)
            rates[name].append(np.where(r["present"], r[name], np.nan))
    metrics = {}
    for m in QUALITY_METRICS:
        value = metric_from_confusion(m, conf)
        low, high = percentile_ci(_stack(macro[m], (0,)), value, confidence)
        metrics[m] = Estimate(value=value, low=low, high=high)
    per_class = _per_class(conf, rates, classes, confidence)
    low, high = _confusion_ci(conf, cells, confidence)
    return QualityReport(
        n=int(t.size),
        confidence=confidence,
        bootstrap=bootstrap,
        metrics=metrics,
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in conf),
        confusion_low=low,
        confusion_high=high,
    )


def _confusion_ci(
    conf: np.ndarray, cells: list[np.ndarray], confidence: float
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """Per-cell percentile interval of the bootstrap confusion counts."""
    if not cells:
        same = tuple(tuple(float(v) for v in row) for row in conf)
        return same, same
    stacked = np.concatenate(cells, axis=0).astype(np.float64)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(stacked, [tail, 100.0 - tail], axis=0)
    low, high = np.minimum(low, conf), np.maximum(high, conf)
    as_rows = lambda m: tuple(tuple(round(float(v), 6) for v in row) for row in m)  # noqa: E731
    return as_rows(low), as_rows(high)


def _stack(parts: list[np.ndarray], empty_shape: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(empty_shape)


def _per_class(
    conf: np.ndarray,
    samples: dict[str, list[np.ndarray]],
    classes: tuple[str, ...],
    confidence: float,
) -> dict[str, dict[str, float]]:
    point = class_rates(conf)
    k = len(classes)
    stacked = {r: _stack(samples[r], (0, k)) for r in RATES}
    out: dict[str, dict[str, float]] = {}
    for j, cls in enumerate(classes):
        row: dict[str, float] = {}
        for r in RATES:
            value = float(point[r][j])
            low, high = percentile_ci(stacked[r][:, j], value, confidence)
            row.update({r: value, f"{r}_low": low, f"{r}_high": high})
        row["support"] = float(point["support"][j])
        out[cls] = row
    return out
