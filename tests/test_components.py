"""Built-in components: interface wiring checks, state round trips without
pickle, deterministic torch training, refusal of untrusted or broken files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lepton.components import Component, ComponentTypes, UntrustedModel, WiringError, builtin_types
from lepton.components.interface import Interface, vector
from lepton.errors import IntegrityError, InvalidInput

CLASSES = tuple(str(i) for i in range(10))


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    x, y = load_digits(return_X_y=True)
    return x[:400].astype(np.float32), y[:400]


def make(type_name: str, **params):  # type: ignore[no-untyped-def]
    return builtin_types().get(type_name, "test").from_config(params, "test")


@pytest.mark.parametrize(
    ("chain", "fits"),
    [
        ([("reshape", {"shape": [1, 8, 8]}), ("torch.small_cnn", {})], True),
        (
            [
                ("sklearn.standard_scaler", {}),
                ("sklearn.pca", {"n_components": 16}),
                ("sklearn.logistic_regression", {}),
            ],
            True,
        ),
        ([("sklearn.standard_scaler", {}), ("torch.small_cnn", {})], False),
        ([("reshape", {"shape": [1, 7, 7]}), ("torch.small_cnn", {})], False),
        ([("sklearn.pca", {"n_components": 65})], False),
        ([("sklearn.tfidf", {})], False),
    ],
)
def test_wiring(chain, fits):  # type: ignore[no-untyped-def]
    given, upstream = vector(64), "data"
    try:
        for name, params in chain:
            given = make(name, **params).output(given, CLASSES, name, upstream)
            upstream = name
    except WiringError as e:
        assert not fits
        # the message names both ends of the bad link
        assert upstream in str(e) and name in str(e)
    else:
        assert fits
        assert given.kind == "proba" or chain[-1][0] in ("sklearn.pca",)


@pytest.mark.parametrize(
    "chain",
    [
        [("sklearn.standard_scaler", {}), ("sklearn.logistic_regression", {"max_iter": 300})],
        [("sklearn.pca", {"n_components": 8}), ("sklearn.gradient_boosting", {"n_estimators": 5})],
        [("sklearn.random_forest", {"n_estimators": 5})],
        [("torch.mlp", {"epochs": 2, "hidden": [16]})],
        [("reshape", {"shape": [1, 8, 8]}), ("torch.small_cnn", {"epochs": 1, "channels": 4})],
    ],
)
def test_fit_save_load_round_trip(chain, digits):  # type: ignore[no-untyped-def]
    x, y = digits
    fitted = []
    h = x
    for name, params in chain:
        c = make(name, **params)
        c.fit(h, y if c.supervised else None, seed=3)
        fitted.append((name, params, c))
        h = c.predict_proba(h) if c.final else c.transform(h)
    assert h.shape == (len(x), 10)
    assert np.allclose(h.sum(axis=1), 1, atol=1e-4)
    # reload every stage from its saved files only, and predict the same
    r = x
    for name, params, c in fitted:
        files = c.save()
        assert all(isinstance(v, bytes) for v in files.values())
        assert not any(b"pickle" in k.encode() for k in files)
        fresh = make(name, **params)
        fresh.load(files)
        r = fresh.predict_proba(r) if fresh.final else fresh.transform(r)
    np.testing.assert_array_equal(r, h)


def test_torch_training_is_bit_identical(digits):  # type: ignore[no-untyped-def]
    x, y = digits
    runs = []
    for _ in range(2):
        c = make("torch.mlp", epochs=2, hidden=[32])
        c.fit(x, y, seed=11)
        runs.append(c.save())
    assert runs[0] == runs[1]
    other = make("torch.mlp", epochs=2, hidden=[32])
    other.fit(x, y, seed=12)
    assert other.save() != runs[0]


def test_untrusted_skops_type_is_refused():  # type: ignore[no-untyped-def]
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    data = sio.dumps(FunctionTransformer(func=eval))
    c = make("sklearn.standard_scaler")
    with pytest.raises(UntrustedModel, match="builtins.eval"):
        c.load({"estimator.skops": data})


def test_skops_file_of_another_estimator_is_refused(digits):  # type: ignore[no-untyped-def]
    x, y = digits
    lr = make("sklearn.logistic_regression")
    lr.fit(x, y, 0)
    scaler = make("sklearn.standard_scaler")
    with pytest.raises(UntrustedModel, match="expected sklearn.preprocessing.StandardScaler"):
        scaler.load(lr.save())


def test_truncated_safetensors_is_refused(digits):  # type: ignore[no-untyped-def]
    x, y = digits
    c = make("torch.mlp", epochs=1, hidden=[8])
    c.fit(x, y, 0)
    files = c.save()
    files["weights.safetensors"] = files["weights.safetensors"][:40]
    with pytest.raises(IntegrityError, match="torch.mlp"):
        make("torch.mlp", epochs=1, hidden=[8]).load(files)


def test_bad_params_name_the_field():  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="parameter 'n_components'"):
        make("sklearn.pca", n_components=0)
    with pytest.raises(InvalidInput, match="unknown component type 'nope'"):
        builtin_types().get("nope", "candidate m1")


def test_user_component_registration():  # type: ignore[no-untyped-def]
    class Half(Component):
        type = "user.half"

        def output(self, given: Interface, classes, name, upstream):  # type: ignore[no-untyped-def]
            return given

        def fit(self, x, y, seed):  # type: ignore[no-untyped-def]
            return None

        def transform(self, x):  # type: ignore[no-untyped-def]
            return x / 2

        def save(self):  # type: ignore[no-untyped-def]
            return {}

        def load(self, files):  # type: ignore[no-untyped-def]
            return None

    class Broken(Component):
        type = "user.broken"

    types = ComponentTypes()
    types.register(Half)
    assert types.get("user.half", "t") is Half
    with pytest.raises(InvalidInput, match="does not implement"):
        types.register(Broken)
    # editing the code changes the fingerprint; the same code keeps it
    assert Half.fingerprint() == Half.fingerprint()
    assert Half.fingerprint() != builtin_types().get("reshape", "t").fingerprint()


@pytest.mark.parametrize(
    ("type_name", "params"),
    [
        ("sklearn.standard_scaler", {}),
        ("sklearn.pca", {"n_components": 8}),
        ("sklearn.logistic_regression", {"max_iter": 200}),
        ("sklearn.gradient_boosting", {"n_estimators": 3}),
        ("sklearn.random_forest", {"n_estimators": 3}),
    ],
)
def test_sklearn_state_is_byte_identical_across_fits(type_name, params, digits):  # type: ignore[no-untyped-def]
    """skops names arrays and tags nodes by memory address and stamps zip
    entries with the time; Lepton canonicalises them so a refit saves the
    same bytes (and so the same object id) and still loads."""
    x, y = digits
    saved = []
    for _ in range(2):
        c = make(type_name, **params)
        c.fit(x, y if c.supervised else None, seed=0)
        saved.append(c.save())
    assert saved[0] == saved[1]
    again = make(type_name, **params)
    again.load(saved[0])
    out = again.predict_proba(x[:5]) if again.final else again.transform(x[:5])
    ref = c.predict_proba(x[:5]) if c.final else c.transform(x[:5])
    np.testing.assert_array_equal(out, ref)


def test_torch_trainings_in_threads_of_one_process_take_turns() -> None:
    """torch's seed, thread count and determinism switch are process-wide: a
    second training thread must not change them under a running one."""
    import threading
    import time

    import torch

    from lepton.components.torch_components import deterministic

    inside, seen, order = threading.Event(), {}, []

    def first() -> None:
        with deterministic(1):
            inside.set()
            time.sleep(0.3)  # the other thread tries to enter meanwhile
            seen.update(seed=torch.initial_seed(), threads=torch.get_num_threads())
            order.append("first done")

    def second() -> None:
        inside.wait()
        with deterministic(2):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"seed": 1, "threads": 1}
    assert order == ["first done", "second in"]


@pytest.mark.parametrize("unseen", [1, 2])
@pytest.mark.parametrize(
    ("type_name", "params"),
    [
        ("sklearn.logistic_regression", {}),
        ("sklearn.random_forest", {"n_estimators": 5}),
        ("torch.mlp", {"epochs": 40, "hidden": [16], "lr": 0.01}),
    ],
)
def test_class_unseen_in_training_keeps_its_column(type_name, params, unseen, digits):  # type: ignore[no-untyped-def]
    """Wired for 3 classes, fitted on samples of two: the output still has
    one column per class, each at its own index (class 2 is not reported as
    class 1), the unseen one included; a reload from the saved files keeps it."""
    x, y = digits
    keep = (y == 0) | (y == 1)
    other = 2 if unseen == 1 else 1
    x, y = x[keep], np.where(y[keep] == 1, other, 0)
    three = ("a", "b", "c")
    c = make(type_name, **params)
    assert c.output(vector(64), three, "head", "data").shape == (3,)
    c.fit(x, y, seed=0)
    fresh = make(type_name, **params)  # never wired: knows the width only from the files
    fresh.load(c.save())
    for model in (c, fresh):
        p = model.predict_proba(x)
        assert p.shape == (len(x), 3)
        assert (p[:, unseen] == 0).all() if type_name.startswith("sklearn") else p[:, unseen].max() < 0.5
        assert (p.argmax(axis=1) == y).mean() > 0.95


@pytest.mark.parametrize(
    ("chain", "refused"),
    [
        (
            [
                ("reshape", {"shape": [5, 6]}),
                ("sklearn.standard_scaler", {}),
                ("sklearn.logistic_regression", {}),
            ],
            "reshape",
        ),
        ([("reshape", {"shape": [1, 3, 10]}), ("torch.small_cnn", {})], "torch.small_cnn"),
        ([("reshape", {"shape": [30, 1, 1]}), ("torch.small_cnn", {})], "torch.small_cnn"),
        ([("reshape", {"shape": [2, 3, 5]}), ("torch.small_cnn", {})], "torch.small_cnn"),
    ],
)
def test_wirings_that_training_cannot_run_fail_the_wiring_check(chain, refused):  # type: ignore[no-untyped-def]
    """30 features: a 2-D reshape is neither a vector nor an image, and the
    CNN's two 2x2 pools need each side at least 4."""
    given, upstream = vector(30), "data"
    with pytest.raises(WiringError) as err:
        for name, params in chain:
            given = make(name, **params).output(given, CLASSES, name, upstream)
            upstream = name
    assert name == refused and f"'{refused}'" in str(err.value)


@pytest.mark.parametrize("shape", [[1, 4, 4], [2, 5, 6], [1, 4, 16]])
def test_smallest_images_the_cnn_takes_train(shape, digits):  # type: ignore[no-untyped-def]
    x, y = digits
    n = int(np.prod(shape))
    x = np.ascontiguousarray(x[:, :n])
    given: Interface = vector(n)
    for name, params in [("reshape", {"shape": shape}), ("torch.small_cnn", {"epochs": 1, "channels": 2})]:
        c = make(name, **params)
        given = c.output(given, CLASSES, name, "up")
        c.fit(x, y if c.supervised else None, seed=0)
        x = c.predict_proba(x) if c.final else c.transform(x)
    assert x.shape == (len(y), 10)
