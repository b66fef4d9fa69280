"""train: fit a candidate's components, reusing every fit whose spec and
inputs did not change (looked up by a fit key in the memo), and write the
model manifest pinning component fits, data, labels, seed, code and
environment."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lepton import hashing
from lepton.manifest import Parent, canonical_json
from lepton.model_manifest import Fit, Model, ModelPart
from lepton.store.objects import ObjectStore
from lepton.training.components import Stage
from lepton.training.data import Arrays
from lepton.training.environment import code_fingerprint, current_environment


class Memo(Protocol):
    """fit key -> artifact id, for reuse."""

    def memo_get(self, key: str) -> str | None: ...

    def memo_put(self, key: str, artifact_id: str, kind: str) -> None: ...


class Registrar(Protocol):
    """Registers a manifest (stores it, then indexes it); returns its id."""

    def __call__(self, manifest, *, meta: dict | None = None) -> str: ...  # type: ignore[no-untyped-def]


@dataclass(frozen=True)
class Inputs:
    dataset: str
    labelset: str
    evalset: str
    seed: int


@dataclass(frozen=True)
class StageResult:
    name: str
    fit: str
    reused: bool
    seconds: float


@dataclass(frozen=True)
class Trained:
    model: Model
    stages: tuple[StageResult, ...]

    @property
    def train_time_s(self) -> float:
        return sum(s.seconds for s in self.stages)


def fit_key(
    stage: Stage,
    inputs: Inputs,
    upstream_fit: str | None,
    label_dependent: bool,
    features: tuple[str, ...],
) -> str:
    """What a fit depends on: the spec's content (not its name), the data
    and which of its columns, in which order, the split, the labels only if
    this or an upstream stage reads them, the upstream fit, and the seed.
    The spec's input interface gives only the number of features, so two
    column lists of one length would otherwise share their fits."""
    s = stage.spec
    doc = {
        "type": s.type,
        "params": s.params,
        "code": s.code,
        "input": s.input.model_dump(mode="json"),
        "dataset": inputs.dataset,
        "features": list(features),
        "evalset": inputs.evalset,
        "labelset": inputs.labelset if label_dependent else None,
        "upstream": upstream_fit,
        "seed": inputs.seed,
    }
    return hashing.hash_bytes(canonical_json(doc))


def train_candidate(
    store: ObjectStore,
    memo: Memo,
    register: Registrar,
    *,
    model_name: str,
    candidate: str,
    stages: list[Stage],
    spec_ids: list[str],
    arrays: Arrays,
    inputs: Inputs,
    run_id: str | None,
) -> Trained:
    h_fit, h_train = arrays.x_fit, arrays.x_train
    upstream: str | None = None
    label_dependent = False
    results, parts = [], []
    for stage, spec_id in zip(stages, spec_ids, strict=True):
        comp = stage.component
        label_dependent |= comp.supervised
        key = fit_key(stage, inputs, upstream, label_dependent, arrays.features)
        found = memo.memo_get(key)
        started = time.perf_counter()
        if found is not None:
            fit = _load_fit(store, found)
            comp.load({name: store.read_bytes(obj) for name, obj in fit.files.items()})
            fit_id, reused, seconds = found, True, 0.0
        else:
            x = h_train if comp.supervised else h_fit
            comp.fit(x, arrays.y_train if comp.supervised else None, inputs.seed)
            seconds = time.perf_counter() - started
            files = {name: store.put_bytes(data) for name, data in sorted(comp.save().items())}
            parents = [Parent(id=inputs.dataset, role="dataset")]
            parents.append(Parent(id=inputs.evalset, role="evalset"))
            if label_dependent:
                parents.append(Parent(id=inputs.labelset, role="labelset"))
            if upstream:
                parents.append(Parent(id=upstream, role="input"))
            fit = Fit(
                name=f"{model_name}.fit.{stage.spec.type}",
                fit_key=key,
                type=stage.spec.type,
                params=stage.spec.params,
                code=stage.spec.code,
                seed=inputs.seed,
                files=files,
                n_params=comp.n_params(),
                parents=tuple(parents),
                run=run_id,
            )
            fit_id = register(fit, meta={"train_time_s": round(seconds, 6)})
            memo.memo_put(key, fit_id, "fit")
            reused = False
        if not comp.final:
            h_fit, h_train = comp.transform(h_fit), comp.transform(h_train)
        results.append(StageResult(stage.name, fit_id, reused, seconds))
        parts.append(
            ModelPart(
                name=stage.name,
                type=stage.spec.type,
                spec=spec_id,
                fit=fit_id,
                output=stage.spec.output,
            )
        )
        upstream = fit_id
    parents = [
        Parent(id=inputs.dataset, role="dataset"),
        Parent(id=inputs.labelset, role="labelset"),
        Parent(id=inputs.evalset, role="evalset"),
        *(Parent(id=p.spec, role=f"spec.{p.name}") for p in parts),
        *(Parent(id=p.fit, role=f"component.{p.name}") for p in parts),
    ]
    model = Model(
        name=model_name,
        candidate=candidate,
        features=arrays.features,
        classes=arrays.classes,
        input=arrays.interface,
        parts=tuple(parts),
        seed=inputs.seed,
        code=code_fingerprint(),
        environment=current_environment(),
        parents=tuple(parents),
        run=run_id,
    )
    return Trained(model, tuple(results))


def _load_fit(store: ObjectStore, fit_id: str) -> Fit:
    from lepton.manifest import parse_manifest

    fit = parse_manifest(store.read_bytes(fit_id), fit_id)
    assert isinstance(fit, Fit)
    return fit


def predict_proba(stages_loaded: list, x: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    """Run loaded components end to end."""
    h = x
    for comp in stages_loaded:
        h = comp.predict_proba(h) if comp.final else comp.transform(h)
    return h
