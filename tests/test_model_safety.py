"""Loading a model runs no code from its file: a skops file may name only the
exact types the built-in components save (not any ``numpy.``/``sklearn.``
name), trees are bounds-checked, and every shipped component still loads."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from lepton.components import UntrustedModel, builtin_types
from lepton.components.sklearn_components import STATE_FILE, skops_dumps
from lepton.components.skops_trust import untrusted_nodes


def make(type_name: str, **params):  # type: ignore[no-untyped-def]
    return builtin_types().get(type_name, "test").from_config(params, "test")


def _json(value: Any) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def _with_attribute(data: bytes, name: str, node: dict[str, Any]) -> bytes:
    """The skops file with one more attribute on its estimator, rezipped."""
    src = zipfile.ZipFile(io.BytesIO(data))
    files = {n: src.read(n) for n in src.namelist()}
    schema = json.loads(files["schema.json"])
    schema["content"]["content"][name] = node
    key = {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
    schema["content"]["key_types"]["content"].append(key)
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for n, content in files.items():
            dst.writestr(n, content)
    return out.getvalue()


def _runstring(code: str) -> dict[str, Any]:
    """A node skops builds by calling numpy.testing's runstring (exec) on ``code``."""
    empty: dict[str, Any] = {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": {},
        "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": []},
    }
    return {
        "__class__": "runstring",
        "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_json(code), empty],
        },
    }


def test_skops_file_calling_a_numpy_function_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    import skops.io as sio

    scaler = make("sklearn.standard_scaler")
    scaler.fit(np.random.default_rng(0).random((20, 3), dtype=np.float32), None, 0)
    marker = tmp_path / "PWNED"
    bad = _with_attribute(
        scaler.save()[STATE_FILE], "x", _runstring(f"open({str(marker)!r}, 'w').write('ran')")
    )
    # every name in it starts with numpy./sklearn./builtins.: a prefix list let it through
    assert sio.get_untrusted_types(data=bad) == ["numpy.testing._private.utils.runstring"]
    with pytest.raises(UntrustedModel) as err:
        make("sklearn.standard_scaler").load({STATE_FILE: bad})
    assert STATE_FILE in str(err.value)
    assert "numpy.testing._private.utils.runstring" in str(err.value)
    assert not marker.exists()


def test_trusted_type_under_another_node_kind_is_refused() -> None:
    """Trust is per node kind: a Tree may be rebuilt from its saved state,
    not called as a constructor with the file's arguments."""
    scaler = make("sklearn.standard_scaler")
    scaler.fit(np.ones((4, 2), dtype=np.float32), None, 0)
    node = _runstring("")
    node.update(__module__="sklearn.tree._tree", __class__="Tree")
    bad = _with_attribute(scaler.save()[STATE_FILE], "x", node)
    assert untrusted_nodes(bad, "test") == {"sklearn.tree._tree.Tree (as ConstructorFromReduceNode)"}
    with pytest.raises(UntrustedModel, match=r"sklearn.tree._tree.Tree \(as ConstructorFromReduceNode\)"):
        make("sklearn.standard_scaler").load({STATE_FILE: bad})


def test_not_a_skops_file_is_one_clear_error() -> None:
    with pytest.raises(UntrustedModel, match=f"sklearn.pca state {STATE_FILE}: not a skops file"):
        make("sklearn.pca").load({STATE_FILE: b"not a zip"})


def test_tree_with_a_link_out_of_bounds_is_refused() -> None:
    x, y = load_digits(return_X_y=True)
    forest = make("sklearn.random_forest", n_estimators=2)
    forest.fit(x[:200].astype(np.float32), y[:200], 0)
    tree = forest.estimator.estimators_[1].tree_
    state = tree.__getstate__()
    state["nodes"]["left_child"][0] = 0  # the root is its own child: predict never ends
    tree.__setstate__(state)
    with pytest.raises(UntrustedModel, match="tree 1 has node links or features out of bounds"):
        make("sklearn.random_forest", n_estimators=2).load({STATE_FILE: skops_dumps(forest.estimator)})


def test_boosting_stages_wider_than_the_init_predictions_are_refused() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    boost = make("sklearn.gradient_boosting", n_estimators=2)
    boost.fit(x.astype(np.float32), y, 0)
    est = boost.estimator
    est.estimators_ = np.concatenate([est.estimators_, est.estimators_], axis=1)  # 2 columns, binary
    with pytest.raises(UntrustedModel, match="boosting stages do not match"):
        make("sklearn.gradient_boosting", n_estimators=2).load({STATE_FILE: skops_dumps(est)})


def _data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    dx, dy = load_digits(return_X_y=True)
    bx, by = load_breast_cancer(return_X_y=True)
    three = by.copy()
    three[:40] = 2
    return {
        "digits": (dx[:400].astype(np.float32), dy[:400]),
        "breast_cancer": (bx.astype(np.float32), by),
        "three_classes": (bx.astype(np.float32), three),
    }


# every shipped scikit-learn component, in the configurations of the examples and tests
SHIPPED = [
    ("sklearn.standard_scaler", {}),
    ("sklearn.pca", {"n_components": 2}),
    ("sklearn.pca", {"n_components": 8}),
    ("sklearn.pca", {"n_components": 29}),
    ("sklearn.logistic_regression", {"C": 0.5}),
    ("sklearn.logistic_regression", {"max_iter": 200}),
    ("sklearn.gradient_boosting", {"n_estimators": 5}),
    ("sklearn.gradient_boosting", {"n_estimators": 5, "max_depth": 2}),
    ("sklearn.random_forest", {"n_estimators": 3}),
    ("sklearn.random_forest", {"n_estimators": 3, "max_depth": 3}),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("type_name", "params"), SHIPPED)
def test_every_shipped_component_round_trips(type_name: str, params: dict[str, Any]) -> None:
    for x, y in _data().values():
        fitted = make(type_name, **params)
        fitted.fit(x, y if fitted.supervised else None, 0)
        files = fitted.save()
        assert untrusted_nodes(files[STATE_FILE], "test") == set()
        again = make(type_name, **params)
        again.load(files)
        out = again.predict_proba(x) if again.final else again.transform(x)
        ref = fitted.predict_proba(x) if fitted.final else fitted.transform(x)
        np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("params", [{}, {"ngram_max": 2, "max_features": 5}])
def test_tfidf_round_trips(params: dict[str, Any]) -> None:
    texts = np.array(["the cat sat", "a dog ran far", "cats and dogs", "the end of it"] * 5)
    fitted = make("sklearn.tfidf", **params)
    fitted.fit(texts, None, 0)
    again = make("sklearn.tfidf", **params)
    again.load(fitted.save())
    np.testing.assert_array_equal(again.transform(texts), fitted.transform(texts))
