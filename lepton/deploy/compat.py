"""Will this model run on that target? Python, packages, interface, checked
before anything is copied; every mismatch is named in one error."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lepton.errors import InvalidInput
from lepton.model_manifest import Environment, Model
from lepton.project import Target
from lepton.training.environment import current_environment

# Packages a model needs at load time, by component family.
ALWAYS = ("numpy", "lepton")
BY_PREFIX = {"sklearn.": ("scikit-learn", "skops"), "torch.": ("torch", "safetensors")}
SAME_MINOR = {"scikit-learn"}  # estimators are not portable across minor releases


class IncompatibleTarget(InvalidInput):
    """The target's environment cannot run the model."""


def required_packages(model: Model) -> list[str]:
    needed = list(ALWAYS)
    for part in model.parts:
        for prefix, pkgs in BY_PREFIX.items():
            if part.type.startswith(prefix):
                needed += [p for p in pkgs if p not in needed]
    return needed


def target_environment(target: Target) -> Environment:
    here = current_environment()
    return Environment(
        python=target.python or here.python,
        platform=here.platform,
        packages=target.packages if target.packages is not None else here.packages,
    )


def check(model: Model, target_name: str, target: Target) -> tuple[str, ...]:
    """Return the checks that passed; raise IncompatibleTarget naming every failure."""
    env = target_environment(target)
    have, want = model.environment, env
    passed, failed = [], []
    if _minor(have.python) == _minor(want.python):
        passed.append(f"python {want.python} runs a model trained on {have.python}")
    else:
        failed.append(f"python {want.python} on the target, model trained on {have.python}")
    trained_with, installed = _by_name(have.packages), _by_name(want.packages)
    for pkg in required_packages(model):
        trained = trained_with.get(canonicalize_name(pkg))
        there = installed.get(canonicalize_name(pkg))
        if there is None:
            failed.append(f"{pkg} is not installed on the target (model trained with {trained})")
        elif trained is None or _compatible(pkg, trained, there):
            passed.append(f"{pkg} {there} (trained with {trained})")
        else:
            rule = _rule(pkg, trained)
            failed.append(f"{pkg} {there} on the target, model trained with {trained} (needs {rule})")
    if target.input is not None:
        if target.input == str(model.input):
            passed.append(f"interface {target.input}")
        else:
            failed.append(f"target serves '{target.input}', model takes '{model.input}'")
    if failed:
        raise IncompatibleTarget(
            f"target '{target_name}' cannot run model {model.name} ({model.candidate}): " + "; ".join(failed)
        )
    return tuple(passed)


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def _by_name(packages: dict[str, str]) -> dict[str, str]:
    """Packages by their normalised name (PEP 503: scikit_learn is scikit-learn)."""
    return {canonicalize_name(name): version for name, version in packages.items()}


def _rule(pkg: str, trained: str) -> str:
    if pkg in SAME_MINOR:
        return "same minor release"
    if trained.startswith("0."):
        return "same 0.x minor release, not older: before 1.0 a minor release may break"
    return "same major release, not older"


def _compatible(pkg: str, trained: str, there: str) -> bool:
    try:
        a, b = Version(trained), Version(there)
    except InvalidVersion:
        return trained == there
    if pkg in SAME_MINOR:
        return (a.major, a.minor) == (b.major, b.minor)
    if a.major == 0:  # semantic versioning: before 1.0, minor releases may break
        return (b.major, b.minor) == (0, a.minor) and b.release >= a.release
    return a.major == b.major and b.release[:2] >= a.release[:2]
