"""Built-in scikit-learn components, saved with skops (never pickle).

Loading checks every type the file names against an exact allow-list
(skops_trust) before skops builds anything: a file naming any other type (a
custom class, a builtin function, a numpy function) is refused with
UntrustedModel naming the file and the type.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lepton import hashing
from lepton.components.base import Component
from lepton.components.interface import Interface, WiringError, proba, require, vector
from lepton.components.skops_trust import UntrustedModel, skops_loads
from lepton.errors import IntegrityError

STATE_FILE = "estimator.skops"
CLASSES_FILE = "classes.json"  # a final component's class count: {"n_classes": k}


def skops_dumps(estimator: Any) -> bytes:
    """skops bytes made reproducible: skops writes a zip whose entries carry
    the current time, so the same estimator would hash differently on every
    save. Entries are rewritten in name order with a fixed timestamp."""
    import skops.io as sio

    return canonical_zip(sio.dumps(estimator))


def canonical_zip(data: bytes) -> bytes:
    """Rewrite a skops zip deterministically: array files (which skops names
    after object addresses) renamed by content hash, references and object
    ids in schema.json rewritten to match, entries sorted, timestamps fixed."""
    src = zipfile.ZipFile(io.BytesIO(data))
    files = {name: src.read(name) for name in src.namelist()}
    schema = files.pop("schema.json").decode()
    renamed: dict[str, bytes] = {}
    for name, content in sorted(files.items()):
        new = f"{hashing.hash_bytes(content).split(':')[1][:32]}{Path(name).suffix}"
        schema = schema.replace(f'"{name}"', f'"{new}"')
        renamed[new] = content
    renamed["schema.json"] = json.dumps(_renumber(json.loads(schema), {})).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(renamed):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, renamed[name])
    return out.getvalue()


def _renumber(node: Any, ids: dict[int, int]) -> Any:
    """skops tags nodes with ``__id__`` = id(obj), a memory address; only
    equality between ids matters (shared references), so number them in
    order of first appearance."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "__id__" and isinstance(v, int):
                out[k] = ids.setdefault(v, len(ids) + 1)
            else:
                out[k] = _renumber(v, ids)
        return out
    if isinstance(node, list):
        return [_renumber(v, ids) for v in node]
    return node


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SklearnComponent(Component):
    """A scikit-learn estimator as a component. Subclasses say how to build it."""

    accepts: ClassVar[tuple[str, ...]] = ("vector", "table")
    estimator_class: ClassVar[str]  # dotted path, checked again after loading

    def __init__(self, params: BaseModel) -> None:
        super().__init__(params)
        self.estimator: Any = None
        self.n_classes: int | None = None  # a final one's: known from its wiring, kept in its state

    def make(self, seed: int) -> Any:
        raise NotImplementedError

    def output(self, given: Interface, classes: tuple[str, ...], name: str, upstream: str) -> Interface:
        require(given, self.accepts, upstream=upstream, component=name, wants=self.wants())
        if self.final:
            self.n_classes = len(classes)
            return proba(classes)
        return self.transformed(given, name, upstream)

    def wants(self) -> str:
        return "a numeric feature vector"

    def transformed(self, given: Interface, name: str, upstream: str) -> Interface:
        return vector(given.size)

    def fit(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        self.estimator = self.make(seed)
        if self.supervised:
            self.estimator.fit(x, y)
        else:
            self.estimator.fit(x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        out = self.estimator.transform(x)
        if hasattr(out, "toarray"):
            out = out.toarray()
        return np.asarray(out, dtype=np.float32)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """One column per class: scikit-learn returns columns only for the
        classes it saw in training (``classes_``), which are placed at their
        own index; a class it never saw gets probability 0."""
        out = np.asarray(self.estimator.predict_proba(x), dtype=np.float32)
        seen = np.asarray(self.estimator.classes_, dtype=np.int64)
        width = self._class_width()
        if len(seen) == width:  # sorted and distinct: every class, in order
            return out
        spread = np.zeros((len(out), width), dtype=np.float32)
        spread[:, seen] = out
        return spread

    def _class_width(self) -> int:
        """Columns of a final one's probabilities: every class of its wiring,
        and at least every class it saw in training."""
        return max(self.n_classes or 0, int(np.max(self.estimator.classes_)) + 1)

    def n_params(self) -> int:
        total = 0
        for key, value in vars(self.estimator).items():
            if key.endswith("_") and isinstance(value, np.ndarray) and value.dtype != object:
                total += value.size
        for tree in np.ravel(getattr(self.estimator, "estimators_", [])):
            total += int(getattr(getattr(tree, "tree_", None), "node_count", 0))
        return total

    def save(self) -> dict[str, bytes]:
        files = {STATE_FILE: skops_dumps(self.estimator)}
        if self.final:
            files[CLASSES_FILE] = json.dumps({"n_classes": self._class_width()}).encode()
        return files

    def load(self, files: dict[str, bytes]) -> None:
        est = skops_loads(files[STATE_FILE], f"{self.type} state {STATE_FILE}")
        got = f"{type(est).__module__}.{type(est).__qualname__}"
        if not got.endswith(self.estimator_class.rsplit(".", 1)[-1]):
            raise UntrustedModel(f"{self.type} state holds a {got}, expected {self.estimator_class}")
        if CLASSES_FILE in files:  # absent in fits saved before it was kept
            self.n_classes = _class_count(files[CLASSES_FILE], f"{self.type} state {CLASSES_FILE}")
        self.estimator = est


def _class_count(data: bytes, where: str) -> int:
    try:
        n = json.loads(data)["n_classes"]
    except (ValueError, TypeError, KeyError) as e:
        raise IntegrityError(f"{where}: not a class count: {e}") from e
    if type(n) is not int or n < 1:
        raise IntegrityError(f"{where}: n_classes must be a positive integer, got {n!r}")
    return n


class StandardScaler(SklearnComponent):
    type = "sklearn.standard_scaler"
    estimator_class = "sklearn.preprocessing.StandardScaler"

    def make(self, seed: int) -> Any:
        from sklearn.preprocessing import StandardScaler as Est

        return Est()


class PCAParams(_Params):
    n_components: int = Field(32, ge=1, description="output dimensions")


class PCA(SklearnComponent):
    type = "sklearn.pca"
    Params = PCAParams
    estimator_class = "sklearn.decomposition.PCA"

    def transformed(self, given: Interface, name: str, upstream: str) -> Interface:
        k = self.params.n_components
        if given.size is not None and k > given.size:
            raise WiringError(
                f"component '{name}' asks for {k} PCA components but '{upstream}' "
                f"produces only {given} ({given.size} features)"
            )
        return vector(k)

    def make(self, seed: int) -> Any:
        from sklearn.decomposition import PCA as Est

        return Est(n_components=self.params.n_components, random_state=seed)


class LogisticParams(_Params):
    C: float = Field(1.0, gt=0)
    max_iter: int = Field(1000, ge=1)


class LogisticRegression(SklearnComponent):
    type = "sklearn.logistic_regression"
    Params = LogisticParams
    supervised = True
    final = True
    estimator_class = "sklearn.linear_model.LogisticRegression"

    def make(self, seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression as Est

        return Est(C=self.params.C, max_iter=self.params.max_iter, random_state=seed)


class BoostingParams(_Params):
    n_estimators: int = Field(100, ge=1)
    learning_rate: float = Field(0.1, gt=0)
    max_depth: int = Field(3, ge=1)


class GradientBoosting(SklearnComponent):
    type = "sklearn.gradient_boosting"
    Params = BoostingParams
    supervised = True
    final = True
    estimator_class = "sklearn.ensemble.GradientBoostingClassifier"

    def make(self, seed: int) -> Any:
        from sklearn.ensemble import GradientBoostingClassifier as Est

        p = self.params
        return Est(
            n_estimators=p.n_estimators,
            learning_rate=p.learning_rate,
            max_depth=p.max_depth,
            random_state=seed,
        )


class ForestParams(_Params):
    n_estimators: int = Field(100, ge=1)
    max_depth: int | None = Field(None, ge=1)


class RandomForest(SklearnComponent):
    type = "sklearn.random_forest"
    Params = ForestParams
    supervised = True
    final = True
    estimator_class = "sklearn.ensemble.RandomForestClassifier"

    def make(self, seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier as Est

        p = self.params
        return Est(n_estimators=p.n_estimators, max_depth=p.max_depth, random_state=seed, n_jobs=1)


class TfidfParams(_Params):
    max_features: int = Field(20_000, ge=1)
    ngram_max: int = Field(1, ge=1, le=3)


class Tfidf(SklearnComponent):
    type = "sklearn.tfidf"
    Params = TfidfParams
    accepts = ("text",)
    estimator_class = "sklearn.feature_extraction.text.TfidfVectorizer"

    def wants(self) -> str:
        return "text"

    def transformed(self, given: Interface, name: str, upstream: str) -> Interface:
        return vector(None)  # the vocabulary is at most max_features wide

    def make(self, seed: int) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer as Est

        p = self.params
        return Est(max_features=p.max_features, ngram_range=(1, p.ngram_max), dtype=np.float32)


SKLEARN_COMPONENTS: list[type[Component]] = [
    StandardScaler,
    PCA,
    LogisticRegression,
    GradientBoosting,
    RandomForest,
    Tfidf,
]
