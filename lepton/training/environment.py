"""The environment a model was trained in, and the code fingerprint."""

from __future__ import annotations

import platform
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from lepton import hashing
from lepton.model_manifest import Environment

# Packages whose versions decide whether a model loads and behaves the same.
TRACKED = ("numpy", "pandas", "pyarrow", "scikit-learn", "skops", "torch", "safetensors", "lepton")


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def package_versions(names: tuple[str, ...] = TRACKED) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def current_environment() -> Environment:
    return Environment(
        python=python_version(),
        platform=f"{platform.system().lower()}-{platform.machine()}",
        packages=package_versions(),
    )


@cache
def code_fingerprint() -> str:
    """Hash of the lepton package's own source: the training code of record."""
    root = Path(__file__).resolve().parents[1]
    h = hashing.new_hasher()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
    return hashing.finish(h)
