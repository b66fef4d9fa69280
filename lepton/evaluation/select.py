"""The selection policy: constraints, the best eligible candidate, and a paired
significance test against the current champion.

Pure: candidates' metrics and predictions in, the fields of a
``lepton.model_manifest.Decision`` out (``build_decision`` wraps them).
Deterministic given the policy's seed, so a replay yields the same decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy.stats import binomtest

from lepton.errors import InvalidInput
from lepton.evaluation.metrics import (
    ALL_METRICS,
    QUALITY_METRICS,
    check_labels,
    confusion_matrix,
    metric_batch,
    metric_from_confusion,
    resampled_group_counts,
    scatter_counts,
)
from lepton.manifest import Parent
from lepton.model_manifest import CandidateResult, Comparison, ConstraintResult, Decision

SignificanceTest = Literal["paired_bootstrap", "mcnemar"]
TEST_LABELS: dict[str, str] = {"paired_bootstrap": "paired bootstrap", "mcnemar": "McNemar"}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Constraint(_Strict):
    """A budget on one metric: exactly one of ``max`` (value <= max) or ``min``."""

    metric: str
    max: float | None = None
    min: float | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in ALL_METRICS:
            known = ", ".join(ALL_METRICS)
            raise ValueError(f"unknown constraint metric {v!r}; known metrics: {known}")
        return v

    @model_validator(mode="after")
    def _one_bound(self) -> Constraint:
        if (self.max is None) == (self.min is None):
            raise ValueError(f"constraint on {self.metric!r} needs exactly one of 'max' or 'min'")
        return self

    @property
    def op(self) -> Literal["<=", ">="]:
        return "<=" if self.max is not None else ">="

    @property
    def limit(self) -> float:
        return self.max if self.max is not None else self.min  # type: ignore[return-value]

    def check(self, value: float) -> ConstraintResult:
        ok = value <= self.limit if self.op == "<=" else value >= self.limit
        return ConstraintResult(metric=self.metric, op=self.op, limit=self.limit, value=value, ok=ok)


class Policy(_Strict):
    """How to pick a winner and when it may replace the champion."""

    primary: str
    constraints: list[Constraint] = Field(default_factory=list)
    test: SignificanceTest = "paired_bootstrap"
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    min_gain: float = Field(default=0.0, ge=0.0)
    bootstrap: int = Field(default=2000, ge=1)
    seed: int = 0
    champion_alias: str = "production"

    @field_validator("primary")
    @classmethod
    def _quality(cls, v: str) -> str:
        if v not in QUALITY_METRICS:
            known = ", ".join(QUALITY_METRICS)
            raise ValueError(f"unknown primary metric {v!r}; known quality metrics: {known}")
        return v


@dataclass(frozen=True)
class CandidateInput:
    """One evaluated model: its ids, metrics and predictions on the pinned evaluation set."""

    model: str
    name: str
    evaluation: str
    cost: str
    quality_metrics: dict[str, float]
    cost_metrics: dict[str, float]
    predictions: np.ndarray = field(repr=False)

    def metric(self, metric: str) -> float:
        merged = {**self.cost_metrics, **self.quality_metrics}
        if metric not in merged:
            have = ", ".join(sorted(merged)) or "none"
            raise InvalidInput(f"candidate {self.name} has no metric {metric!r} (it has: {have})")
        return float(merged[metric])


@dataclass(frozen=True)
class Selection:
    """Everything a ``Decision`` records, apart from name, parents and policy."""

    candidates: tuple[CandidateResult, ...]
    champion: str | None
    comparison: Comparison | None
    winner: str | None
    promote: bool
    reason: str


# --- the paired tests ---------------------------------------------------------------------


def paired_test(
    test: SignificanceTest,
    primary: str,
    y_true: np.ndarray,
    pred_champion: np.ndarray,
    pred_challenger: np.ndarray,
    n_classes: int,
    bootstrap: int,
    seed: int,
) -> tuple[float, float]:
    """(gain, one-sided p-value) of challenger over champion on ``primary``.

    gain is the full-set difference challenger - champion. The p-value tests
    "the challenger is no better": paired bootstrap counts resamples (the same
    rows for both models) whose difference is <= 0; McNemar is the exact
    binomial test on the discordant pairs.
    """
    t = check_labels(y_true, n_classes, "y_true")
    a = _aligned(pred_champion, t, n_classes, "champion predictions")
    b = _aligned(pred_challenger, t, n_classes, "challenger predictions")
    gain = metric_from_confusion(primary, confusion_matrix(t, b, n_classes)) - (
        metric_from_confusion(primary, confusion_matrix(t, a, n_classes))
    )
    if test == "mcnemar":
        return gain, mcnemar_p(t, a, b)
    if test == "paired_bootstrap":
        return gain, _bootstrap_p(primary, t, a, b, n_classes, bootstrap, seed)
    raise InvalidInput(f"unknown test {test!r}; known tests: {', '.join(TEST_LABELS)}")


def _aligned(pred: np.ndarray, y_true: np.ndarray, n_classes: int, what: str) -> np.ndarray:
    p = check_labels(pred, n_classes, what)
    if p.shape != y_true.shape:
        raise InvalidInput(f"{what} have {p.size} rows but the evaluation set has {y_true.size}")
    if p.size == 0:
        raise InvalidInput("cannot compare models on an empty evaluation set")
    return p


def mcnemar_p(y_true: np.ndarray, pred_champion: np.ndarray, pred_challenger: np.ndarray) -> float:
    """Exact one-sided McNemar: P(X >= c), X ~ Binomial(b + c, 1/2); 1.0 with no discordance."""
    right_a = pred_champion == y_true
    right_b = pred_challenger == y_true
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    if b + c == 0:
        return 1.0
    return float(binomtest(c, b + c, 0.5, alternative="greater").pvalue)


def _bootstrap_p(
    primary: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, k: int, bootstrap: int, seed: int
) -> float:
    """(#{resamples with diff <= 0} + 1) / (B + 1), both models on the same resamples."""
    keys = (y * k + a) * k + b
    groups, chunks = resampled_group_counts(keys, bootstrap, seed)
    cells_a = groups // k  # true * k + pred_a
    cells_b = (groups // (k * k)) * k + groups % k  # true * k + pred_b
    not_better = 0
    for counts in chunks:
        conf_a = scatter_counts(counts, cells_a, k * k).reshape(-1, k, k)
        conf_b = scatter_counts(counts, cells_b, k * k).reshape(-1, k, k)
        diff = metric_batch(primary, conf_b) - metric_batch(primary, conf_a)
        not_better += int(np.sum(diff <= 0))
    return (not_better + 1) / (bootstrap + 1)


# --- the decision -------------------------------------------------------------------------


def evaluate_candidate(policy: Policy, cand: CandidateInput) -> CandidateResult:
    checks = tuple(c.check(cand.metric(c.metric)) for c in policy.constraints)
    return CandidateResult(
        model=cand.model,
        name=cand.name,
        evaluation=cand.evaluation,
        cost=cand.cost,
        primary=cand.metric(policy.primary),
        constraints=checks,
        eligible=all(c.ok for c in checks),
    )


def _rank_key(cand: CandidateInput, result: CandidateResult) -> tuple[float, float, str]:
    size = cand.cost_metrics.get("size_mb", math.inf)
    return (-result.primary, size, cand.name)


def _failures(result: CandidateResult) -> str:
    bad = [c for c in result.constraints if not c.ok]
    flip = {"<=": ">", ">=": "<"}
    return ", ".join(f"{c.metric} {c.value:.4g} {flip[c.op]} {c.limit:.4g}" for c in bad)


def decide(
    policy: Policy,
    candidates: Sequence[CandidateInput],
    champion: CandidateInput | None,
    y_true: np.ndarray,
    n_classes: int,
) -> Selection:
    """Apply ``policy``: constraints, best eligible by primary, then the champion test."""
    if not candidates:
        raise InvalidInput("no candidates to select from")
    ids = [c.model for c in candidates]
    if len(set(ids)) != len(ids):
        raise InvalidInput(f"candidate model ids must be distinct, got {ids}")
    results = tuple(evaluate_candidate(policy, c) for c in candidates)
    champ_id = champion.model if champion is not None else None
    eligible = [(c, r) for c, r in zip(candidates, results, strict=True) if r.eligible]
    if not eligible:
        why = "; ".join(f"{r.name} {_failures(r)}" for r in results)
        reason = f"no candidate meets the constraints: {why}."
        return Selection(results, champ_id, None, None, False, reason)
    best, best_result = min(eligible, key=lambda cr: _rank_key(*cr))
    p, v = policy.primary, best_result.primary
    if champion is None:
        reason = (
            f"no {policy.champion_alias} model yet: {best.name} wins on {p} ({v:.3f}) "
            "and meets all constraints."
        )
        return Selection(results, None, None, best.model, True, reason)
    if best.model == champion.model:
        reason = f"kept {champion.name}: it is still the best eligible candidate on {p} ({v:.3f})."
        return Selection(results, champ_id, None, champion.model, False, reason)
    return _challenge(policy, results, champion, best, y_true, n_classes)


def _challenge(
    policy: Policy,
    results: tuple[CandidateResult, ...],
    champion: CandidateInput,
    best: CandidateInput,
    y_true: np.ndarray,
    n_classes: int,
) -> Selection:
    pol, preds = policy, (champion.predictions, best.predictions)
    gain, p_value = paired_test(pol.test, pol.primary, y_true, *preds, n_classes, pol.bootstrap, pol.seed)
    significant = p_value < policy.alpha
    comparison = Comparison(
        test=pol.test,
        champion=champion.model,
        challenger=best.model,
        gain=gain,
        p_value=p_value,
        significant=significant,
    )
    champ_result = evaluate_candidate(policy, champion)
    promote = (significant and gain > policy.min_gain) or not champ_result.eligible
    reason = _challenge_reason(policy, champion, best, champ_result, comparison, promote)
    winner = best.model if promote else champion.model
    return Selection(results, champion.model, comparison, winner, promote, reason)


def _challenge_reason(
    policy: Policy,
    champion: CandidateInput,
    best: CandidateInput,
    champ_result: CandidateResult,
    comparison: Comparison,
    promote: bool,
) -> str:
    p, alpha, test = policy.primary, policy.alpha, TEST_LABELS[policy.test]
    gain, p_value = comparison.gain, comparison.p_value
    if not champ_result.eligible:
        return (
            f"{best.name} replaces {champion.name}: the champion no longer meets the constraints "
            f"({_failures(champ_result)}) and {best.name} does ({p} {gain:+.3f}, "
            f"{test} p={p_value:.3g})."
        )
    if promote:
        new, old = best.metric(p), champion.metric(p)
        return (
            f"{best.name} replaces {champion.name}: {p} {new:.3f} vs {old:.3f} ({gain:+.3f}), "
            f"{test} p={p_value:.3g} < {alpha:g}, all constraints met."
        )
    if p_value < alpha:
        return (
            f"kept {champion.name}: challenger {best.name} gains {gain:+.3f} {p}, "
            f"not above the minimum gain {policy.min_gain:g} ({test} p={p_value:.3g})."
        )
    return (
        f"kept {champion.name}: challenger {best.name} gains {gain:+.3f} {p}, "
        f"{test} p={p_value:.3g} >= {alpha:g} (not significant)."
    )


def build_decision(
    name: str,
    parents: Sequence[tuple[str, str]],
    policy: Policy,
    candidates: Sequence[CandidateInput],
    champion: CandidateInput | None,
    y_true: np.ndarray,
    n_classes: int,
    *,
    run: str | None = None,
) -> Decision:
    """Run ``decide`` and wrap it in a ``Decision`` manifest (parents as (id, role))."""
    s = decide(policy, candidates, champion, y_true, n_classes)
    return Decision(
        name=name,
        parents=tuple(Parent(id=pid, role=role) for pid, role in parents),
        run=run,
        policy=policy.model_dump(mode="json"),
        candidates=s.candidates,
        champion=s.champion,
        comparison=s.comparison,
        winner=s.winner,
        promote=s.promote,
        reason=s.reason,
    )
