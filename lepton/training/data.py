"""Training inputs: the pinned evaluation set and the arrays the components
are fitted and scored on.

The evaluation set is drawn once (stratified, seeded) from the labelled
samples and stored as its own artifact with the labels it had; every later
run reuses it, so every candidate, now and later, is scored on the same
samples. It is never re-drawn silently: a new draw is a new version,
asked for explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lepton.components.interface import Interface, vector
from lepton.data.chunks import read_chunks, write_chunks
from lepton.errors import InvalidInput
from lepton.manifest import Labelset, Parent, TableDataset
from lepton.model_manifest import EvalSet
from lepton.store.objects import ObjectStore


@dataclass(frozen=True)
class Arrays:
    """Everything a training run reads, as arrays aligned by sample."""

    features: tuple[str, ...]
    classes: tuple[str, ...]
    interface: Interface
    x_fit: np.ndarray  # every non-evaluation sample (unsupervised fitting)
    x_train: np.ndarray  # non-evaluation samples that have a label
    y_train: np.ndarray  # class indices
    x_eval: np.ndarray
    y_eval: np.ndarray
    eval_keys: np.ndarray


def draw_evalset(
    store: ObjectStore,
    name: str,
    labels: pd.DataFrame,
    labelset: Labelset,
    dataset_id: str,
    labelset_id: str,
    fraction: float,
    seed: int,
) -> EvalSet:
    """A stratified, seeded sample of the labelled keys, with their labels."""
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    by_class = labels.groupby(labels[labelset.label].astype(str), sort=True).indices
    for _cls, idx in sorted(by_class.items()):
        n = max(1, round(len(idx) * fraction))
        picked.extend(rng.choice(np.sort(idx), size=min(n, len(idx)), replace=False).tolist())
    frame = labels.iloc[sorted(picked)][[labelset.key, labelset.label]].reset_index(drop=True)
    frame[labelset.label] = frame[labelset.label].astype(str)
    _, chunks = write_chunks(store, frame, labelset.key, f"evaluation set {name}")
    return EvalSet(
        name=name,
        key=labelset.key,
        label=labelset.label,
        fraction=fraction,
        seed=seed,
        rows=len(frame),
        classes=tuple(sorted(frame[labelset.label].unique())),
        chunks=chunks,
        parents=(Parent(id=dataset_id, role="dataset"), Parent(id=labelset_id, role="labelset")),
    )


def check_classes(labelset: Labelset, labelset_ref: str, evalset: EvalSet, evalset_ref: str) -> None:
    """Labels whose classes differ from the evaluation set's cannot be scored on it."""
    got, want = set(labelset.classes), set(evalset.classes)
    if got != want:
        extra = ", ".join(sorted(got - want)) or "none"
        missing = ", ".join(sorted(want - got)) or "none"
        raise InvalidInput(
            f"labelset {labelset_ref} has classes that differ from evaluation set {evalset_ref}: "
            f"new classes: {extra}; missing classes: {missing}. "
            "Draw a new evaluation set (evaluation.name) to score against these labels."
        )


def feature_columns(dataset: TableDataset, requested: tuple[str, ...] | None, ref: str) -> tuple[str, ...]:
    names = [c.name for c in dataset.columns]
    if requested is None:
        return tuple(n for n in names if n != dataset.key)
    missing = [f for f in requested if f not in names]
    if missing:
        raise InvalidInput(f"features: column(s) {', '.join(missing)} not in dataset {ref}")
    return requested


def data_interface(dataset: TableDataset, features: tuple[str, ...], ref: str) -> Interface:
    """vector float32[n] for numeric columns; text for one string column."""
    types = {c.name: c.type for c in dataset.columns}
    kinds = {f: types[f] for f in features}
    textual = [f for f, t in kinds.items() if "string" in t or t == "object"]
    if textual and len(features) == 1:
        return Interface(kind="text", dtype="str")
    if textual:
        raise InvalidInput(
            f"dataset {ref}: feature column(s) {', '.join(textual)} are not numeric; "
            "list numeric columns in 'features', or a single text column"
        )
    return vector(len(features))


def load_arrays(
    store: ObjectStore,
    dataset: TableDataset,
    labelset: Labelset,
    evalset: EvalSet,
    features: tuple[str, ...],
    interface: Interface,
    dataset_ref: str,
) -> Arrays:
    if dataset.key is None:
        raise InvalidInput(f"dataset {dataset_ref} has no key column; snapshot it with a key")
    frame = read_chunks(store, dataset.chunks, [dataset.key, *features])
    labels = read_chunks(store, labelset.chunks, [labelset.key, labelset.label])
    held = read_chunks(store, evalset.chunks, [evalset.key, evalset.label])
    keys = frame[dataset.key].astype(str)
    eval_keys = held[evalset.key].astype(str)
    unknown = ~eval_keys.isin(set(keys))
    if unknown.any():
        first = ", ".join(eval_keys[unknown].head(5))
        raise InvalidInput(
            f"evaluation set {evalset.name} holds {int(unknown.sum())} sample(s) missing from "
            f"dataset {dataset_ref} (first: {first}); draw a new evaluation set"
        )
    classes = evalset.classes
    index = {c: i for i, c in enumerate(classes)}
    in_eval = keys.isin(set(eval_keys))
    label_of = dict(zip(labels[labelset.key].astype(str), labels[labelset.label].astype(str), strict=True))
    train_mask = ~in_eval & keys.map(lambda k: k in label_of)
    y_train = np.array([index[label_of[k]] for k in keys[train_mask]], dtype=np.int64)
    require_training_samples(classes, y_train, list(label_of.values()), evalset.name)
    as_x = _as_text if interface.kind == "text" else _as_numeric
    by_key = frame.set_index(keys)
    return Arrays(
        features=features,
        classes=classes,
        interface=interface,
        x_fit=as_x(frame.loc[~in_eval.to_numpy(), list(features)]),
        x_train=as_x(frame.loc[train_mask.to_numpy(), list(features)]),
        y_train=y_train,
        x_eval=as_x(by_key.loc[eval_keys, list(features)]),
        y_eval=np.array([index[v] for v in held[evalset.label].astype(str)], dtype=np.int64),
        eval_keys=eval_keys.to_numpy(),
    )


def require_training_samples(
    classes: tuple[str, ...], y_train: np.ndarray, labels: list[str], evalset: str
) -> None:
    """A class with no training sample cannot be learnt: a model fitted
    without it would score every sample on the other classes only (or, with
    its columns shifted, mislabel them), so training is refused first."""
    seen = np.bincount(y_train, minlength=len(classes))
    missing = [c for c, n in zip(classes, seen, strict=True) if n == 0]
    if missing:
        total = pd.Series(labels, dtype=object).value_counts()
        named = "; ".join(
            f"'{c}' ({int(total.get(c, 0))} labelled sample(s) in all, none outside evaluation set {evalset})"
            for c in missing
        )
        raise InvalidInput(
            f"class(es) with no training samples: {named}. Label more samples of each "
            "(new ones train: the evaluation set is pinned), or relabel them to another class"
        )


def _as_numeric(frame: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(frame.to_numpy(dtype=np.float32))


def _as_text(frame: pd.DataFrame) -> np.ndarray:
    return frame.iloc[:, 0].astype(str).to_numpy()
