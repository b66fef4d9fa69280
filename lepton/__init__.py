"""Lepton: version control for AI models.

The public API is what ``__all__`` names; a test checks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lepton.errors import (
    AmbiguousRef,
    ConfigError,
    Conflict,
    IntegrityError,
    InvalidInput,
    LeptonError,
    NotFound,
    StorageError,
)

if TYPE_CHECKING:
    from lepton.repo import Repo, Snapshot, init_repo, open_repo

__version__ = "0.1.0"

# Imported on first use: lepton.repo pulls in the registry and the table
# readers, which `import lepton` (and the CLI's start-up) should not pay for.
_FROM_REPO = frozenset({"Repo", "Snapshot", "init_repo", "open_repo"})


def __getattr__(name: str) -> Any:
    if name in _FROM_REPO:
        from lepton import repo

        value = getattr(repo, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lepton' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_REPO)


__all__ = [
    "AmbiguousRef",
    "ConfigError",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "LeptonError",
    "NotFound",
    "Repo",
    "Snapshot",
    "StorageError",
    "__version__",
    "init_repo",
    "open_repo",
]
