"""`lepton models compare`'s metrics when the two models share several
evaluation sets: each set's deltas, none overwritten by another's."""

from __future__ import annotations

from lepton import hashing
from lepton.cli.models import metric_deltas
from lepton.manifest import Parent
from lepton.model_manifest import Estimate, Evaluation

SET_1, SET_2, SET_3 = (hashing.hash_bytes(b) for b in (b"set 1", b"set 2", b"set 3"))


def _scored(evalset: str, **metrics: float) -> Evaluation:
    return Evaluation(
        name="ev",
        n=10,
        confidence=0.95,
        bootstrap=0,
        metrics={k: Estimate(value=v, low=v, high=v) for k, v in metrics.items()},
        per_class={},
        confusion=(),
        confusion_low=(),
        confusion_high=(),
        predictions=hashing.hash_bytes(b"p"),
        parents=(Parent(id=evalset, role="evalset"),),
    )


def test_each_shared_evaluation_set_keeps_its_own_deltas() -> None:
    a = [_scored(SET_1, accuracy=0.9, f1_macro=0.8), _scored(SET_2, accuracy=0.5)]
    a.append(_scored(SET_3, accuracy=0.1))
    b = [_scored(SET_2, accuracy=0.75), _scored(SET_1, accuracy=0.95, f1_macro=0.7)]
    deltas = metric_deltas(a, b)
    assert set(deltas) == {SET_1, SET_2}  # SET_3: only a was scored on it
    assert deltas[SET_1]["accuracy"]["delta"] == 0.95 - 0.9
    assert deltas[SET_1]["f1_macro"] == {"a": 0.8, "b": 0.7, "delta": 0.7 - 0.8}
    assert deltas[SET_2] == {"accuracy": {"a": 0.5, "b": 0.75, "delta": 0.25}}  # f1_macro: not in both
