"""Declared interfaces of model components, and the wiring check.

An interface says what flows between two components: its kind, its
element type and its shape (``None`` for "any size"). A component declares
how its output interface follows from its input; version-components
propagates the data's interface through the wiring and fails, before any
training, with one message naming both components when they do not fit.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lepton.errors import InvalidInput

Kind = Literal["table", "vector", "image", "proba", "text"]


class Interface(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    dtype: str = "float32"
    shape: tuple[int, ...] | None = None
    classes: tuple[str, ...] | None = None  # for kind == "proba"

    def __str__(self) -> str:
        if self.kind == "proba":
            n = len(self.classes) if self.classes is not None else "?"
            return f"class probabilities over {n} classes"
        dims = "x".join(str(d) for d in self.shape) if self.shape else "*"
        return f"{self.kind} {self.dtype}[{dims}]"

    @property
    def size(self) -> int | None:
        return math.prod(self.shape) if self.shape else None


class WiringError(InvalidInput):
    """Two wired components whose interfaces do not fit."""


def vector(n: int | None, dtype: str = "float32") -> Interface:
    return Interface(kind="vector", dtype=dtype, shape=(n,) if n is not None else None)


def proba(classes: tuple[str, ...]) -> Interface:
    return Interface(kind="proba", dtype="float32", shape=(len(classes),), classes=classes)


def require(
    got: Interface,
    kinds: tuple[str, ...],
    *,
    upstream: str,
    component: str,
    wants: str,
) -> None:
    """Fail with a message naming both components when ``got`` is not accepted."""
    if got.kind not in kinds:
        raise WiringError(f"component '{component}' expects {wants} but '{upstream}' produces {got}")
