"""version-components: turn each candidate's wiring into component spec
versions, checking that every link fits before anything is trained."""

from __future__ import annotations

from dataclasses import dataclass

from lepton.components import Component, ComponentTypes
from lepton.components.interface import Interface, WiringError
from lepton.model_manifest import ComponentSpec
from lepton.project import Candidate, Project


@dataclass(frozen=True)
class Stage:
    """One wired component of a candidate: its spec and a configured instance."""

    name: str
    registry_name: str
    spec: ComponentSpec
    component: Component


def plan_candidate(
    project: Project,
    candidate: Candidate,
    types: ComponentTypes,
    data: Interface,
    classes: tuple[str, ...],
) -> list[Stage]:
    """Specs for every stage, with interfaces propagated from the data.
    Raises WiringError naming both components at the first misfit."""
    stages: list[Stage] = []
    given, upstream = data, f"data ({project.data.name})"
    for i, cfg in enumerate(candidate.components):
        where = f"candidates.{candidate.name}.components.{cfg.name}"
        cls = types.get(cfg.type, where)
        component = cls.from_config(cfg.params, where)
        produced = component.output(given, classes, cfg.name, upstream)
        last = i == len(candidate.components) - 1
        if last and produced.kind != "proba":
            raise_last(cfg.name, produced, candidate.name)
        spec = ComponentSpec(
            name=f"{project.name}.{candidate.name}.{cfg.name}",
            type=cfg.type,
            params=component.params.model_dump(mode="json"),
            code=cls.fingerprint(),
            input=given,
            output=produced,
            supervised=cls.supervised,
        )
        stages.append(Stage(cfg.name, spec.name, spec, component))
        given, upstream = produced, cfg.name
    return stages


def raise_last(name: str, produced: Interface, candidate: str) -> None:
    raise WiringError(
        f"candidate '{candidate}': its last component '{name}' produces {produced}, "
        "but a model must end in class probabilities"
    )
