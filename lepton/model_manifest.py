"""Manifests of the retraining pipeline: component specs, fitted components,
evaluation sets, models, evaluations, costs, decisions, deployments, runs.

Everything here is deterministic given its inputs, so a replay yields the
same ids; measurements that cannot be (latency, memory, wall time) live in
``Cost`` artifacts, which a replay reports as declared non-determinism.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lepton.components.interface import Interface
from lepton.manifest import Chunk, Frozen, Manifest


class ComponentSpec(Manifest):
    """A component's type, parameters, code fingerprint and interfaces."""

    kind: Literal["component"] = "component"
    type: str
    params: dict[str, Any]
    code: str
    input: Interface
    output: Interface
    supervised: bool


class Fit(Manifest):
    """A fitted component: what was fitted (type, params, code) on what
    (parents), and its state files. It names no candidate, so identical fits
    in two candidates are one artifact."""

    kind: Literal["fit"] = "fit"
    fit_key: str
    type: str
    params: dict[str, Any]
    code: str
    seed: int
    files: dict[str, str]  # file name -> object key
    n_params: int = Field(ge=0)

    def objects(self) -> tuple[str, ...]:
        return tuple(self.files.values())


class EvalSet(Manifest):
    """The pinned evaluation set: sample ids and their labels, drawn once."""

    kind: Literal["evalset"] = "evalset"
    key: str
    label: str
    fraction: float
    seed: int
    rows: int
    classes: tuple[str, ...]
    chunks: tuple[Chunk, ...]

    def objects(self) -> tuple[str, ...]:
        return tuple(k for c in self.chunks for k in c.objects())


class Environment(Frozen):
    python: str
    platform: str
    packages: dict[str, str]


class ModelPart(Frozen):
    name: str
    type: str
    spec: str
    fit: str
    output: Interface


class Model(Manifest):
    kind: Literal["model"] = "model"
    candidate: str
    features: tuple[str, ...]
    classes: tuple[str, ...]
    input: Interface
    parts: tuple[ModelPart, ...]
    seed: int
    code: str  # fingerprint of the Lepton code that trained it
    environment: Environment


class Estimate(Frozen):
    value: float
    low: float
    high: float


class Evaluation(Manifest):
    kind: Literal["evaluation"] = "evaluation"
    n: int
    confidence: float
    bootstrap: int
    metrics: dict[str, Estimate]
    per_class: dict[str, dict[str, float]]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted
    confusion_low: tuple[tuple[float, ...], ...]  # bootstrap interval of each cell's count
    confusion_high: tuple[tuple[float, ...], ...]
    predictions: str  # object key: Parquet of sample id, label, prediction, correct

    def objects(self) -> tuple[str, ...]:
        return (self.predictions,)


class Cost(Manifest):
    """Measured cost of a model; timing fields vary run to run by nature."""

    kind: Literal["cost"] = "cost"
    metrics: dict[str, float]


class ConstraintResult(Frozen):
    metric: str
    op: Literal["<=", ">="]
    limit: float
    value: float
    ok: bool


class CandidateResult(Frozen):
    model: str
    name: str
    evaluation: str
    cost: str
    primary: float
    constraints: tuple[ConstraintResult, ...]
    eligible: bool


class Comparison(Frozen):
    test: str
    champion: str
    challenger: str
    gain: float
    p_value: float
    significant: bool


class Decision(Manifest):
    kind: Literal["decision"] = "decision"
    policy: dict[str, Any]
    candidates: tuple[CandidateResult, ...]
    champion: str | None
    comparison: Comparison | None
    winner: str | None
    promote: bool
    reason: str


class Deployment(Manifest):
    kind: Literal["deployment"] = "deployment"
    target: str
    location: str
    model: str
    checks: tuple[str, ...]
    bundle: dict[str, str]  # file name -> object key


class RunRecord(Manifest):
    """One flow instance: its parameters, inputs and outputs by id."""

    kind: Literal["run"] = "run"
    flow_run_id: str | None
    config: str  # object key of the project config, as run
    params: dict[str, Any]
    outputs: dict[str, Any]

    def objects(self) -> tuple[str, ...]:
        return (self.config,)


MODEL_MANIFEST_TYPES: tuple[type[Manifest], ...] = (
    ComponentSpec,
    Fit,
    EvalSet,
    Model,
    Evaluation,
    Cost,
    Decision,
    Deployment,
    RunRecord,
)
