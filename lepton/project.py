"""The project config of a retraining flow: data and labels, the pinned
evaluation set, candidate models (wirings of components), the selection
policy and deploy targets. TOML, validated by pydantic; a bad field gets one
error naming the file and the field.

See examples/*/project.toml for complete, commented configs.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lepton.components import ComponentTypes, builtin_types
from lepton.errors import ConfigError, InvalidInput
from lepton.evaluation.select import Policy
from lepton.manifest import validate_name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(_Strict):
    name: str = Field(..., description="dataset name in the registry")
    source: str = Field(..., description="table file or folder; local (relative to the config) or s3://")
    key: str = Field(..., description="sample id column")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_name(v, "dataset name")


class LabelSource(_Strict):
    name: str
    source: str
    key: str
    label: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_name(v, "labelset name")


class EvaluationSpec(_Strict):
    name: str = Field(..., description="evaluation set name; drawn once, then pinned")
    fraction: float = Field(0.25, gt=0, lt=1)
    seed: int = 0
    bootstrap: int = Field(1000, ge=100, le=100_000)
    confidence: float = Field(0.95, gt=0.5, lt=1)


class ComponentConfig(_Strict):
    name: str
    type: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_name(v, "component name")


class Candidate(_Strict):
    name: str
    components: tuple[ComponentConfig, ...] = Field(..., min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_name(v, "candidate name")

    @model_validator(mode="after")
    def _unique(self) -> Candidate:
        names = [c.name for c in self.components]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"component names repeat: {', '.join(sorted(dup))}")
        return self


class Target(_Strict):
    kind: Literal["directory", "s3"]
    path: str = Field(..., description="folder (relative to the config) or s3://bucket/prefix")
    python: str | None = Field(None, description="Python of the target, e.g. '3.11'; default: this one")
    packages: dict[str, str] | None = Field(
        None, description="package -> installed version on the target; default: this environment"
    )
    input: str | None = Field(
        None, description="input interface the target serves, e.g. 'vector float32[64]'"
    )


class DeploySpec(_Strict):
    target: str
    alias: str = "production"


class Project(_Strict):
    name: str = Field(..., description="model name: candidates are versions of it")
    seed: int = 0
    data: DataSource
    labels: LabelSource
    features: tuple[str, ...] | None = Field(None, description="feature columns; default: all but the key")
    evaluation: EvaluationSpec
    candidates: tuple[Candidate, ...] = Field(..., min_length=1)
    policy: Policy
    targets: dict[str, Target] = Field(default_factory=dict)
    deploy: DeploySpec | None = None
    plugins: tuple[str, ...] = Field((), description="modules whose LEPTON_COMPONENTS list user components")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return validate_name(v, "project name")

    @model_validator(mode="after")
    def _refs(self) -> Project:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError("candidate names must be unique")
        names = {
            "name": self.name,
            "data.name": self.data.name,
            "labels.name": self.labels.name,
            "evaluation.name": self.evaluation.name,
        }
        seen: dict[str, str] = {}
        for field, value in names.items():
            if value in seen:
                raise ValueError(f"{field} '{value}' is also {seen[value]}: each needs its own name")
            seen[value] = field
        if self.deploy and self.deploy.target not in self.targets:
            known = ", ".join(sorted(self.targets)) or "none declared"
            raise ValueError(f"deploy.target '{self.deploy.target}' is not a declared target ({known})")
        return self

    def component_types(self) -> ComponentTypes:
        """Built-in component types plus those of the configured plugins."""
        types = builtin_types()
        for module_name in self.plugins:
            try:
                module = importlib.import_module(module_name)
            except ImportError as e:
                raise InvalidInput(f"plugins: cannot import '{module_name}': {e}") from e
            for cls in getattr(module, "LEPTON_COMPONENTS", []):
                types.register(cls)
        return types


def load_project(path: str | Path) -> tuple[Project, Path]:
    """Read and validate a project config; returns it and its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such project config")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from e
    return parse_project(doc, str(path)), path.resolve().parent


def parse_project(doc: dict[str, Any], where: str = "<config>") -> Project:
    try:
        return Project.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top)"
        msg = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: field '{field}': {msg}") from e
