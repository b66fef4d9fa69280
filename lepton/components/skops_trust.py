"""What a skops file may name before Lepton lets skops build it.

skops builds a file's objects from type names written in its schema.json
(``ConstructorFromReduceNode`` calls the named type with arguments from the
file), so a type list is only safe if it is exact: module prefixes such as
``numpy.`` let in functions like ``numpy.testing._private.utils.runstring``
(which calls exec). Every node of the schema must name one of the types the
built-in components actually save, under the node kind that saves it; the
list was collected by saving every shipped component in the configurations
the examples and tests use (skops 0.16, scikit-learn 1.9). Anything else is
refused, before skops reads the file, with one error naming the file and
the type(s).

Trees are trusted (forests and boosting need them), and scikit-learn walks
their node links without bounds checks, so every loaded tree's links and
feature indices are checked before the estimator is returned.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from lepton.errors import IntegrityError

# node kind (skops' __loader__) -> the type names it may build
TRUSTED: dict[str, frozenset[str]] = {
    "ObjectNode": frozenset(
        {
            # the estimators the components fit
            "sklearn.preprocessing._data.StandardScaler",
            "sklearn.decomposition._pca.PCA",
            "sklearn.linear_model._logistic.LogisticRegression",
            "sklearn.ensemble._gb.GradientBoostingClassifier",
            "sklearn.ensemble._forest.RandomForestClassifier",
            "sklearn.feature_extraction.text.TfidfVectorizer",
            # what they hold
            "sklearn.feature_extraction.text.TfidfTransformer",
            "sklearn.tree._classes.DecisionTreeClassifier",
            "sklearn.tree._classes.DecisionTreeRegressor",
            "sklearn.dummy.DummyClassifier",
            "sklearn._loss.loss.HalfBinomialLoss",
            "sklearn._loss.loss.HalfMultinomialLoss",
            "sklearn._loss.link.Interval",
            "sklearn._loss.link.LogitLink",
            "sklearn._loss.link.MultinomialLogit",
        }
    ),
    "TreeNode": frozenset({"sklearn.tree._tree.Tree"}),
    "LossNode": frozenset(
        {"sklearn._loss._loss.CyHalfBinomialLoss", "sklearn._loss._loss.CyHalfMultinomialLoss"}
    ),
    "RandomStateNode": frozenset({"numpy.random.mtrand.RandomState"}),
    "NdArrayNode": frozenset({"numpy.ndarray", "numpy.float32", "numpy.float64", "numpy.int64"}),
    "TypeNode": frozenset({"builtins.str", "numpy.float32"}),
    "DictNode": frozenset({"builtins.dict"}),
    "ListNode": frozenset({"builtins.list"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "JsonNode": frozenset({"builtins.str"}),
}
TRUSTED_NAMES = frozenset().union(*TRUSTED.values())


class UntrustedModel(IntegrityError):
    """A model file names a type outside the trusted list."""


def skops_loads(data: bytes, where: str) -> Any:
    """Build the estimator in a skops file whose every type is on TRUSTED."""
    import skops.io as sio

    refused = sorted(untrusted_nodes(data, where))
    if refused:
        raise UntrustedModel(f"{where}: refusing to load untrusted type(s): {', '.join(refused)}")
    try:
        unknown = set(sio.get_untrusted_types(data=data))
        if not unknown <= TRUSTED_NAMES:  # skops saw a node the schema walk did not
            raise UntrustedModel(f"{where}: refusing to load untrusted type(s): {', '.join(sorted(unknown))}")
        est = sio.loads(data, trusted=sorted(unknown))
        check_trees(est, where)
    except UntrustedModel:
        raise
    except Exception as e:  # noqa: BLE001 - skops raises whatever a malformed schema trips
        raise UntrustedModel(f"{where}: not a loadable skops file: {e}") from e
    return est


def untrusted_nodes(data: bytes, where: str) -> set[str]:
    """Every ``module.Class`` in the schema not trusted for its node kind."""
    try:
        schema = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise UntrustedModel(f"{where}: not a skops file: {e}") from e
    refused = set()
    for node in _nodes(schema):
        name = f"{node.get('__module__')}.{node.get('__class__')}"
        loader = node["__loader__"]
        if not isinstance(loader, str) or name not in TRUSTED.get(loader, ()):
            refused.add(f"{name} (as {loader})")
    return refused


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict that skops would build an object from, wherever it sits."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_trees(est: Any, where: str) -> None:
    """Refuse trees whose links or feature indices scikit-learn would follow
    out of bounds (its Cython predict loops do not check them)."""
    n_features = getattr(est, "n_features_in_", None)
    flat = np.ravel(np.asarray(getattr(est, "estimators_", []), dtype=object))
    for label, member in [("tree", est), *((f"tree {i}", m) for i, m in enumerate(flat))]:
        tree = getattr(member, "tree_", None)
        if tree is not None and not _tree_ok(tree, n_features):
            raise UntrustedModel(f"{where}: {label} has node links or features out of bounds")
    if hasattr(est, "_raw_predict_init") and n_features is not None:
        # boosting adds column k of each stage into the init estimator's
        # predictions, unchecked: the stage width must be that width
        stages = est.estimators_
        if not (isinstance(stages, np.ndarray) and stages.ndim == 2 and stages.size):
            raise UntrustedModel(f"{where}: boosting stages are not a 2-D array of trees")
        width = est._raw_predict_init(np.zeros((1, n_features), dtype=np.float32)).shape[1]
        if stages.shape[1] != width:
            raise UntrustedModel(
                f"{where}: boosting stages do not match the init estimator's {width} outputs"
            )


def _tree_ok(tree: Any, n_features: int | None) -> bool:
    from sklearn.tree._tree import Tree

    if type(tree) is not Tree or n_features is None or not 0 < tree.node_count <= tree.capacity:
        return False
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    here = np.arange(tree.node_count)
    leaf = left == -1
    inner = ~leaf
    return bool(
        (right[leaf] == -1).all()
        and (left[inner] > here[inner]).all()  # children come after their parent: no cycles
        and (right[inner] > here[inner]).all()
        and (left < tree.node_count).all()
        and (right < tree.node_count).all()
        and (feature[inner] >= 0).all()
        and (feature[inner] < n_features).all()
    )
