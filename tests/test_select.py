"""The selection policy: constraints, ranking, paired tests, the decision."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import binomtest

from lepton.errors import InvalidInput
from lepton.evaluation.metrics import QUALITY_METRICS, confusion_matrix, metric_from_confusion
from lepton.evaluation.select import (
    CandidateInput,
    Constraint,
    Policy,
    build_decision,
    decide,
    paired_test,
)
from lepton.hashing import hash_bytes
from lepton.model_manifest import Decision

K = 4


def labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, K, n)


def corrupt(y: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Predictions that are wrong on exactly ``frac`` of the rows."""
    rng = np.random.default_rng(seed)
    wrong = rng.choice(len(y), size=round(frac * len(y)), replace=False)
    pred = y.copy()
    pred[wrong] = (y[wrong] + rng.integers(1, K, len(wrong))) % K
    return pred


def cand(name: str, y: np.ndarray, pred: np.ndarray, **cost: float) -> CandidateInput:
    conf = confusion_matrix(y, pred, K)
    return CandidateInput(
        model=hash_bytes(name.encode()),
        name=name,
        evaluation=hash_bytes(b"ev-" + name.encode()),
        cost=hash_bytes(b"cost-" + name.encode()),
        quality_metrics={m: metric_from_confusion(m, conf) for m in QUALITY_METRICS},
        cost_metrics={"size_mb": 1.0, "latency_p95_ms": 10.0} | cost,
        predictions=pred,
    )


# --- policy validation --------------------------------------------------------------------


def test_unknown_primary_names_it_and_lists_known() -> None:
    with pytest.raises(ValidationError) as e:
        Policy(primary="f2_macro")
    msg = str(e.value)
    assert "'f2_macro'" in msg and "accuracy" in msg and "f1_macro" in msg


def test_unknown_constraint_metric_and_bounds() -> None:
    with pytest.raises(ValidationError, match="'latency_p99'.*latency_p95_ms"):
        Policy(primary="accuracy", constraints=[{"metric": "latency_p99", "max": 5}])
    with pytest.raises(ValidationError, match="exactly one"):
        Constraint(metric="size_mb", max=1, min=0)
    with pytest.raises(ValidationError, match="exactly one"):
        Constraint(metric="size_mb")
    with pytest.raises(ValidationError):
        Policy(primary="accuracy", tests="mcnemar")  # extra fields are refused


def test_constraint_results() -> None:
    y = labels(200)
    a = cand("fast", y, corrupt(y, 0.2, 1), latency_p95_ms=20.0)
    b = cand("slow", y, corrupt(y, 0.1, 2), latency_p95_ms=81.2)
    policy = Policy(
        primary="f1_macro",
        constraints=[
            Constraint(metric="latency_p95_ms", max=50),
            {"metric": "accuracy", "min": 0.5},
        ],
    )
    s = decide(policy, [a, b], None, y, K)
    by_name = {c.name: c for c in s.candidates}
    assert by_name["fast"].eligible and not by_name["slow"].eligible
    lat = by_name["slow"].constraints[0]
    assert (lat.metric, lat.op, lat.limit, lat.value, lat.ok) == (
        "latency_p95_ms",
        "<=",
        50.0,
        81.2,
        False,
    )
    assert by_name["slow"].constraints[1].op == ">=" and by_name["slow"].constraints[1].ok
    assert s.winner == a.model and s.promote  # the better one is over budget


def test_no_candidate_meets_constraints() -> None:
    y = labels(100)
    a = cand("digits-cnn", y, y, latency_p95_ms=81.2)
    b = cand("digits-mlp", y, y, size_mb=12.0)
    policy = Policy(
        primary="f1_macro",
        constraints=[{"metric": "latency_p95_ms", "max": 50}, {"metric": "size_mb", "max": 10}],
    )
    s = decide(policy, [a, b], None, y, K)
    assert s.winner is None and not s.promote and s.comparison is None
    assert s.reason == (
        "no candidate meets the constraints: digits-cnn latency_p95_ms 81.2 > 50; digits-mlp size_mb 12 > 10."
    )


def test_missing_metric_is_a_clear_error() -> None:
    y = labels(50)
    a = cand("a", y, y)
    policy = Policy(primary="accuracy", constraints=[{"metric": "peak_memory_mb", "max": 100}])
    with pytest.raises(InvalidInput, match="candidate a has no metric 'peak_memory_mb'"):
        decide(policy, [a], None, y, K)


# --- ranking and the champion -------------------------------------------------------------


def test_no_champion_promotes_best() -> None:
    y = labels(300)
    a = cand("digits-logreg", y, corrupt(y, 0.1, 1))
    b = cand("digits-cnn", y, corrupt(y, 0.02, 2))
    s = decide(Policy(primary="f1_macro"), [a, b], None, y, K)
    assert s.winner == b.model and s.promote and s.champion is None
    f1 = b.quality_metrics["f1_macro"]
    assert s.reason == (
        f"no production model yet: digits-cnn wins on f1_macro ({f1:.3f}) and meets all constraints."
    )


def test_ties_break_on_size_then_name() -> None:
    y = labels(100)
    big = cand("a-big", y, y, size_mb=5.0)
    small = cand("z-small", y, y, size_mb=1.0)
    also = cand("b-small", y, y, size_mb=1.0)
    s = decide(Policy(primary="accuracy"), [big, small, also], None, y, K)
    assert s.winner == also.model


def test_best_is_champion_is_kept() -> None:
    y = labels(200)
    champ = cand("digits-cnn@v1", y, corrupt(y, 0.05, 1))
    other = cand("digits-logreg@v2", y, corrupt(y, 0.2, 2))
    s = decide(Policy(primary="f1_macro"), [champ, other], champ, y, K)
    assert s.winner == champ.model and not s.promote and s.comparison is None
    assert s.reason.startswith("kept digits-cnn@v1: it is still the best")


@pytest.mark.parametrize("test", ["paired_bootstrap", "mcnemar"])
def test_champion_kept_when_gain_not_significant(test: str) -> None:
    y = labels(500)
    old = corrupt(y, 0.1, 1)
    new = old.copy()
    fix = np.flatnonzero(new != y)[:2]  # the challenger fixes 2 of 500 rows
    new[fix] = y[fix]
    champ, chal = cand("digits-logreg@v1", y, old), cand("digits-cnn@v2", y, new)
    s = decide(Policy(primary="f1_macro", test=test), [champ, chal], champ, y, K)
    assert not s.promote and s.winner == champ.model
    assert s.comparison is not None and not s.comparison.significant
    assert s.comparison.gain > 0 and s.comparison.p_value >= 0.05
    assert s.reason.startswith("kept digits-logreg@v1: challenger digits-cnn@v2 gains +0.00")
    assert s.reason.endswith(">= 0.05 (not significant).")


@pytest.mark.parametrize(
    ("test", "label"), [("paired_bootstrap", "paired bootstrap"), ("mcnemar", "McNemar")]
)
def test_challenger_promoted_when_much_better(test: str, label: str) -> None:
    y = labels(500)
    champ = cand("digits-logreg@v1", y, corrupt(y, 0.15, 1))
    chal = cand("digits-cnn@v2", y, corrupt(y, 0.03, 2))
    s = decide(Policy(primary="f1_macro", test=test), [champ, chal], champ, y, K)
    assert s.promote and s.winner == chal.model
    c = s.comparison
    assert c is not None and c.significant and c.test == test
    assert (c.champion, c.challenger) == (champ.model, chal.model)
    assert c.gain == pytest.approx(chal.quality_metrics["f1_macro"] - champ.quality_metrics["f1_macro"])
    assert c.p_value < 0.01
    # one sentence naming the winner, the champion and the test
    assert s.reason.startswith("digits-cnn@v2 replaces digits-logreg@v1: f1_macro ")
    assert f"{label} p=" in s.reason and s.reason.endswith("all constraints met.")
    assert s.reason.count(". ") == 0 and s.reason.endswith(".")


def test_min_gain_blocks_small_significant_gain() -> None:
    y = labels(500)
    champ = cand("old", y, corrupt(y, 0.15, 1))
    chal = cand("new", y, corrupt(y, 0.03, 2))
    policy = Policy(primary="accuracy", test="mcnemar", min_gain=0.5)
    s = decide(policy, [champ, chal], champ, y, K)
    assert not s.promote and s.comparison is not None and s.comparison.significant
    assert "minimum gain 0.5" in s.reason


def test_champion_failing_constraints_is_replaced() -> None:
    y = labels(300)
    champ = cand("old", y, corrupt(y, 0.05, 1), latency_p95_ms=90.0)
    chal = cand("new", y, corrupt(y, 0.06, 2), latency_p95_ms=20.0)
    policy = Policy(primary="accuracy", constraints=[{"metric": "latency_p95_ms", "max": 50}])
    s = decide(policy, [champ, chal], champ, y, K)
    assert s.promote and s.winner == chal.model
    assert "no longer meets the constraints (latency_p95_ms 90 > 50)" in s.reason


# --- the paired tests ---------------------------------------------------------------------


def test_mcnemar_matches_scipy() -> None:
    y = labels(400)
    a, b = corrupt(y, 0.2, 1), corrupt(y, 0.12, 2)
    bb = int(np.sum((a == y) & (b != y)))
    cc = int(np.sum((a != y) & (b == y)))
    gain, p = paired_test("mcnemar", "accuracy", y, a, b, K, 0, 0)
    assert p == binomtest(cc, bb + cc, 0.5, alternative="greater").pvalue
    assert gain == pytest.approx(np.mean(b == y) - np.mean(a == y))
    assert paired_test("mcnemar", "accuracy", y, a, a, K, 0, 0) == (0.0, 1.0)


def test_paired_bootstrap_identical_and_deterministic() -> None:
    y = labels(300)
    a, b = corrupt(y, 0.2, 1), corrupt(y, 0.1, 2)
    assert paired_test("paired_bootstrap", "f1_macro", y, a, a, K, 500, 0) == (0.0, 1.0)
    first = paired_test("paired_bootstrap", "f1_macro", y, a, b, K, 500, 7)
    assert first == paired_test("paired_bootstrap", "f1_macro", y, a, b, K, 500, 7)
    gain, p = first
    assert gain > 0 and 1 / 501 <= p < 0.05
    # the reverse direction is not better
    assert paired_test("paired_bootstrap", "f1_macro", y, b, a, K, 500, 7)[1] > 0.99


def test_paired_test_rejects_misaligned_predictions() -> None:
    y = labels(10)
    with pytest.raises(InvalidInput, match="challenger predictions have 9 rows"):
        paired_test("mcnemar", "accuracy", y, y, y[:9], K, 10, 0)


# --- the manifest -------------------------------------------------------------------------


def test_build_decision_is_a_deterministic_manifest() -> None:
    y = labels(300)
    champ = cand("digits-logreg@v1", y, corrupt(y, 0.15, 1))
    chal = cand("digits-cnn@v2", y, corrupt(y, 0.03, 2))
    policy = Policy(primary="f1_macro", constraints=[{"metric": "size_mb", "max": 10}])
    parents = [(champ.evaluation, "evaluation"), (chal.evaluation, "evaluation")]

    def build() -> Decision:
        return build_decision("digits-select", parents, policy, [champ, chal], champ, y, K)

    d = build()
    assert d.kind == "decision" and d.promote and d.winner == chal.model
    assert d.champion == champ.model and d.policy == policy.model_dump()
    assert d.policy["constraints"] == [{"metric": "size_mb", "max": 10.0, "min": None}]
    assert [p.role for p in d.parents] == ["evaluation", "evaluation"]
    assert d.compute_id() == build().compute_id()
