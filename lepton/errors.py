"""One error root for Lepton. Each error also inherits the builtin it resembles,
so callers can catch either. Backend errors are translated at the boundary
(``raise ... from e``) and never leak raw."""

from __future__ import annotations


class LeptonError(Exception):
    """Root of every error Lepton raises on purpose."""


class NotFound(LeptonError, KeyError):
    """A ref, artifact, object or file that does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not.
        return str(self.args[0]) if self.args else ""


class AmbiguousRef(LeptonError, LookupError):
    """An id prefix that matches more than one artifact."""


class InvalidInput(LeptonError, ValueError):
    """Bad user input: a malformed file, a missing column, a bad name."""


class IntegrityError(LeptonError, OSError):
    """Stored bytes do not match their content hash."""


class Conflict(LeptonError, RuntimeError):
    """A write that collides with another (e.g. a version number taken)."""


class StorageError(LeptonError, OSError):
    """The object store cannot be reached or refuses the operation."""


class ConfigError(LeptonError, ValueError):
    """Configuration that cannot be used (bad URL, missing lepton.toml)."""
