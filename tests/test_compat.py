"""The deploy target check: package names as users write them, and the
version rule for packages before 1.0."""

from __future__ import annotations

import pytest

from lepton.components.interface import Interface
from lepton.deploy.compat import IncompatibleTarget, check
from lepton.model_manifest import Environment, Model, ModelPart
from lepton.project import Target

TRAINED = {"numpy": "2.1.0", "lepton": "0.1.0", "scikit-learn": "1.6.1", "skops": "0.16.0"}


def _model() -> Model:
    vector = Interface(kind="vector", shape=(4,))
    part = ModelPart(name="head", type="sklearn.logreg", spec="s", fit="f", output=vector)
    return Model(
        name="m",
        candidate="logreg",
        features=("a", "b", "c", "d"),
        classes=("x", "y"),
        input=vector,
        parts=(part,),
        seed=0,
        code="c",
        environment=Environment(python="3.11.9", platform="linux-x86_64", packages=TRAINED),
    )


def _target(**packages: str) -> Target:
    return Target(kind="directory", path="deploy", python="3.11", packages=TRAINED | packages)


def test_package_names_are_matched_as_pip_matches_them() -> None:
    spelled = {"NumPy": "2.1.0", "lepton": "0.1.0", "scikit_learn": "1.6.1", "Skops": "0.16.0"}
    target = Target(kind="directory", path="deploy", python="3.11", packages=spelled)
    assert "scikit-learn 1.6.1 (trained with 1.6.1)" in check(_model(), "t", target)


@pytest.mark.parametrize("there", ["0.17.0", "0.15.9", "1.0.0"])
def test_a_package_before_1_0_needs_the_same_minor_release(there: str) -> None:
    with pytest.raises(IncompatibleTarget, match=rf"skops {there} on the target.*0\.x minor"):
        check(_model(), "t", _target(skops=there))


def test_a_later_patch_before_1_0_and_a_later_minor_after_it_pass() -> None:
    passed = check(_model(), "t", _target(skops="0.16.3", numpy="2.3.0"))
    assert "skops 0.16.3 (trained with 0.16.0)" in passed and "numpy 2.3.0 (trained with 2.1.0)" in passed
