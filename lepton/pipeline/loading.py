"""Load a model straight from the store (every object verified)."""

from __future__ import annotations

from lepton.components import ComponentTypes
from lepton.deploy.bundle import LoadedModel
from lepton.errors import InvalidInput
from lepton.model_manifest import ComponentSpec, Fit, Model
from lepton.repo import Repo


def load_model(repo: Repo, model_id: str, types: ComponentTypes) -> LoadedModel:
    model = repo.load(model_id)
    if not isinstance(model, Model):
        raise InvalidInput(f"{model_id} is a {model.kind}, not a model")
    components = []
    for part in model.parts:
        spec, fit = repo.load(part.spec), repo.load(part.fit)
        assert isinstance(spec, ComponentSpec) and isinstance(fit, Fit)
        comp = types.get(spec.type, f"model part {part.name}").from_config(spec.params, part.name)
        comp.load({name: repo.store.read_bytes(key) for name, key in fit.files.items()})
        components.append(comp)
    return LoadedModel(model, model_id, components)


def fit_objects(repo: Repo, model: Model) -> list[tuple[Fit, str]]:
    """Each part's fit manifest and id."""
    out = []
    for part in model.parts:
        fit = repo.load(part.fit)
        assert isinstance(fit, Fit)
        out.append((fit, part.fit))
    return out
