"""Quality metrics with bootstrap CIs, and cost measurements."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from lepton.errors import InvalidInput
from lepton.evaluation.cost import dir_size_mb, measure_latency, measure_peak_memory
from lepton.evaluation.metrics import (
    ALL_METRICS,
    COST_METRICS,
    HIGHER_IS_BETTER,
    QUALITY_METRICS,
    confusion_matrix,
    metric_from_confusion,
    quality,
)
from lepton.model_manifest import Evaluation


def noisy(n: int, k: int, acc: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < acc, y, rng.integers(0, k, n))
    return y, pred


def names(k: int) -> tuple[str, ...]:
    return tuple(f"c{i}" for i in range(k))


def test_metric_names() -> None:
    assert ALL_METRICS == QUALITY_METRICS + COST_METRICS
    assert HIGHER_IS_BETTER == frozenset(QUALITY_METRICS)
    assert "f1_macro" in QUALITY_METRICS and "latency_p95_ms" in COST_METRICS


@pytest.mark.parametrize("seed", range(25))
def test_point_values_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(1, 9)), int(rng.integers(1, 120))
    y, pred = noisy(n, k, float(rng.random()), seed)
    r = quality(y, pred, k, classes=names(k), bootstrap=20)
    p, rc, f, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert r.metrics["accuracy"].value == accuracy_score(y, pred)
    assert r.metrics["precision_macro"].value == p
    assert r.metrics["recall_macro"].value == rc
    assert r.metrics["f1_macro"].value == f
    ps, rs, fs, ss = precision_recall_fscore_support(
        y, pred, labels=list(range(k)), average=None, zero_division=0
    )
    for j, cls in enumerate(names(k)):
        row = r.per_class[cls]
        assert (row["precision"], row["recall"], row["f1"]) == (ps[j], rs[j], fs[j])
        assert row["support"] == ss[j]


def test_metric_from_confusion_matches_report() -> None:
    y, pred = noisy(300, 4, 0.7, 1)
    conf = confusion_matrix(y, pred, 4)
    r = quality(y, pred, 4, classes=names(4), bootstrap=10)
    assert r.confusion == tuple(tuple(int(v) for v in row) for row in conf)
    assert conf.sum() == 300 and conf[0].sum() == np.sum(y == 0)  # rows = true
    for m in QUALITY_METRICS:
        assert metric_from_confusion(m, conf) == r.metrics[m].value
    with pytest.raises(InvalidInput, match="f2_macro"):
        metric_from_confusion("f2_macro", conf)


def test_ci_contains_point_and_narrows() -> None:
    widths = []
    for n in (100, 2000):
        y, pred = noisy(n, 5, 0.8, 7)
        r = quality(y, pred, 5, classes=names(5), bootstrap=400, seed=3)
        for est in r.metrics.values():
            assert est.low <= est.value <= est.high
            assert est.low < est.high
        widths.append(r.metrics["f1_macro"].high - r.metrics["f1_macro"].low)
    assert widths[1] < widths[0] / 2


def test_deterministic_and_seeded() -> None:
    y, pred = noisy(500, 3, 0.75, 2)
    a = quality(y, pred, 3, classes=names(3), bootstrap=300, seed=5)
    b = quality(y.copy(), pred.copy(), 3, classes=names(3), bootstrap=300, seed=5)
    c = quality(y, pred, 3, classes=names(3), bootstrap=300, seed=6)
    assert a.model_dump_json() == b.model_dump_json()
    assert a.metrics["f1_macro"].low != c.metrics["f1_macro"].low


def test_per_class_keys_and_evaluation_fields() -> None:
    y, pred = noisy(200, 3, 0.8, 4)
    r = quality(y, pred, 3, classes=("cat", "dog", "eel"), bootstrap=50)
    keys = {"precision", "recall", "f1", "support"} | {
        f"{m}_{b}" for m in ("precision", "recall", "f1") for b in ("low", "high")
    }
    assert set(r.per_class) == {"cat", "dog", "eel"}
    for row in r.per_class.values():
        assert set(row) == keys
        assert row["recall_low"] <= row["recall"] <= row["recall_high"]
    ev = Evaluation(name="ev", predictions="x", **r.evaluation_fields())
    assert ev.n == 200 and ev.bootstrap == 50 and ev.confidence == 0.95


def test_absent_class_and_no_bootstrap() -> None:
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    r = quality(y, pred, 3, classes=names(3), bootstrap=0)
    assert r.per_class["c2"]["support"] == 0.0 and r.per_class["c2"]["f1"] == 0.0
    f1 = r.metrics["f1_macro"]
    assert f1.low == f1.value == f1.high
    _, _, f, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert f1.value == f  # macro over present classes, as scikit-learn does


def test_a_class_missing_from_a_resample_does_not_count_as_a_miss() -> None:
    """One sample of c1 in 100, always right: resamples without it say
    nothing about c1, so its interval stays at 1.0, as the macro's does."""
    y = np.array([0] * 99 + [1])
    r = quality(y, y.copy(), 2, classes=names(2), bootstrap=200)
    for rate in ("precision", "recall", "f1"):
        row = r.per_class["c1"]
        assert (row[f"{rate}_low"], row[rate], row[f"{rate}_high"]) == (1.0, 1.0, 1.0)
    assert (r.metrics["recall_macro"].low, r.metrics["recall_macro"].high) == (1.0, 1.0)


def test_a_class_present_but_never_predicted_still_scores_zero_in_its_interval() -> None:
    y = np.array([0] * 90 + [1] * 10)
    pred = np.zeros(100, dtype=np.int64)  # c1 is never predicted: recall 0 whenever it is there
    r = quality(y, pred, 2, classes=names(2), bootstrap=200)
    assert (r.per_class["c1"]["recall_low"], r.per_class["c1"]["recall_high"]) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("y", "pred", "k", "match"),
    [
        ([0, 1], [0, 2], 2, r"y_pred\[1\] = 2"),
        ([0, 1], [0], 2, "2 rows but y_pred has 1"),
        ([], [], 2, "empty"),
        ([0.5], [0], 2, "integer"),
    ],
)
def test_bad_labels(y: list, pred: list, k: int, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        quality(np.array(y), np.array(pred), k, classes=names(k))


def test_class_names_must_fit() -> None:
    with pytest.raises(InvalidInput, match="3 class names"):
        quality(np.array([0]), np.array([0]), 2, classes=names(3))


def test_latency_positive_and_ordered() -> None:
    x = np.random.default_rng(0).random((300, 8))
    w = np.ones((8, 3))
    calls: list[int] = []

    def predict(a: np.ndarray) -> np.ndarray:
        calls.append(len(a))
        return (a @ w).argmax(axis=1)

    out = measure_latency(predict, x, batch_size=64, repeats=2)
    assert set(out) == {m for m in COST_METRICS if m.startswith("latency")}
    assert 0 < out["latency_p50_ms"] <= out["latency_p95_ms"]
    assert 0 < out["latency_per_sample_p50_ms"] <= out["latency_per_sample_p95_ms"]
    # warm-ups (2) + 5 batches x 2 repeats + 200 single rows
    assert len(calls) == 2 + 10 + 200 and calls.count(1) == 201


def test_peak_memory_sees_allocation() -> None:
    def predict(a: np.ndarray) -> np.ndarray:
        big = np.ones(4 * 2**20 // 8)  # 4 MB
        time.sleep(0.01)
        return a + big[: len(a)]

    mb = measure_peak_memory(predict, np.zeros(3))
    assert 3.5 < mb < 64


def test_dir_size_mb() -> None:
    assert dir_size_mb([2**20, 2**19]) == 1.5
    assert dir_size_mb([]) == 0.0
    with pytest.raises(InvalidInput):
        dir_size_mb([-1])


def test_confusion_matrix_cells_have_bootstrap_intervals() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 400)
    pred = np.where(rng.random(400) < 0.8, y, rng.integers(0, 3, 400))
    r = quality(y, pred, 3, classes=("a", "b", "c"), bootstrap=300, seed=1)
    conf = np.array(r.confusion)
    low, high = np.array(r.confusion_low), np.array(r.confusion_high)
    assert low.shape == high.shape == conf.shape == (3, 3)
    assert (low <= conf).all() and (conf <= high).all()
    assert (high - low)[np.diag_indices(3)].min() > 0  # real spread on the diagonal
    assert quality(y, pred, 3, classes=("a", "b", "c"), bootstrap=300, seed=1) == r
