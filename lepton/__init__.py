"""Lepton: version control for AI models.

The public API is what ``__all__`` names; a test checks it.
"""

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
from lepton.repo import Repo, Snapshot, init_repo, open_repo

__version__ = "0.1.0"

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
