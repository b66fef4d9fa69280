"""The component contract. A component is one versioned part of a model:
a type (code), parameters (config), a declared interface rule, and, once
fitted, a state saved without pickle (safetensors, skops or JSON).

Subclasses must implement every abstract method; instantiating one that
does not fails at once (ABC), so a half-written component cannot be wired.
"""

from __future__ import annotations

import inspect
import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from lepton import hashing
from lepton.components.interface import Interface
from lepton.errors import InvalidInput

# inspect.getsource parses the module (ast.parse), and CPython 3.11's AST
# validator keeps a process-wide depth counter that two threads parsing at
# once corrupt ("SystemError: AST constructor recursion depth mismatch"):
# flows that train candidates on threads fingerprint their components at once.
_SOURCE_LOCK = threading.Lock()


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(ABC):
    """One stage of a model. Stages before the last transform arrays; the
    last one (``final``) returns class probabilities."""

    type: ClassVar[str]  # registered name, e.g. "sklearn.standard_scaler"
    Params: ClassVar[type[BaseModel]] = NoParams
    supervised: ClassVar[bool] = False  # does fitting read the labels?
    final: ClassVar[bool] = False  # does it output class probabilities?

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @classmethod
    def from_config(cls, params: dict[str, Any], where: str) -> Component:
        try:
            return cls(cls.Params.model_validate(params or {}))
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "params"
            raise InvalidInput(f"{where}: parameter '{field}': {first['msg']}") from e

    @classmethod
    def fingerprint(cls) -> str:
        """Hash of the code that implements this component (its class source,
        and its bases' up to Component), so editing it makes a new version."""
        parts = []
        for klass in cls.__mro__:
            if klass in (Component, ABC, object):
                break
            try:
                with _SOURCE_LOCK:
                    parts.append(inspect.getsource(klass))
            except (OSError, TypeError):
                parts.append(f"{klass.__module__}.{klass.__qualname__}")
        return hashing.hash_bytes("\n".join(parts).encode())

    # ---- interface -------------------------------------------------------
    @abstractmethod
    def output(self, given: Interface, classes: tuple[str, ...], name: str, upstream: str) -> Interface:
        """The interface this component produces from ``given``; raise
        WiringError (naming ``name`` and ``upstream``) when it cannot take it."""

    # ---- learning --------------------------------------------------------
    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        """Fit on arrays; ``y`` holds class indices when ``supervised``."""

    def transform(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.type} is a final component: use predict_proba")

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.type} is not a final component: use transform")

    def n_params(self) -> int:
        return 0

    # ---- state -----------------------------------------------------------
    @abstractmethod
    def save(self) -> dict[str, bytes]:
        """Fitted state as files (name -> bytes), never pickle."""

    @abstractmethod
    def load(self, files: dict[str, bytes]) -> None:
        """Restore fitted state from ``save()``'s files, executing no code from them."""


class ComponentTypes:
    """The component classes a project may wire, by type name. Built per
    project (no module-level registry): built-ins plus the user's own."""

    def __init__(self, classes: list[type[Component]] | None = None) -> None:
        self._by_type: dict[str, type[Component]] = {}
        for cls in classes or []:
            self.register(cls)

    def register(self, cls: type[Component]) -> type[Component]:
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            raise InvalidInput(f"{cls!r} is not a lepton Component subclass")
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            raise InvalidInput(f"component {cls.__qualname__} does not implement: {missing}")
        name = getattr(cls, "type", None)
        if not name:
            raise InvalidInput(f"component {cls.__qualname__} has no 'type' name")
        if name in self._by_type and self._by_type[name] is not cls:
            raise InvalidInput(f"component type '{name}' is registered twice")
        self._by_type[name] = cls
        return cls

    def get(self, name: str, where: str) -> type[Component]:
        try:
            return self._by_type[name]
        except KeyError:
            known = ", ".join(sorted(self._by_type))
            raise InvalidInput(f"{where}: unknown component type '{name}'; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._by_type)
