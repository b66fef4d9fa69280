"""Model components: declared interfaces, built-in scikit-learn and torch
components, and the per-project set of component types."""

from lepton.components.base import Component, ComponentTypes
from lepton.components.interface import Interface, WiringError
from lepton.components.sklearn_components import SKLEARN_COMPONENTS
from lepton.components.skops_trust import UntrustedModel
from lepton.components.torch_components import TORCH_COMPONENTS


def builtin_types() -> ComponentTypes:
    """A fresh set holding every built-in component type."""
    return ComponentTypes([*SKLEARN_COMPONENTS, *TORCH_COMPONENTS])


__all__ = [
    "Component",
    "ComponentTypes",
    "Interface",
    "UntrustedModel",
    "WiringError",
    "builtin_types",
]
