"""Translate filesystem/S3 errors into Lepton's errors at the store boundary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lepton.errors import LeptonError, NotFound, StorageError

_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403")
_NO_BUCKET = ("NoSuchBucket", "bucket does not exist")


@contextlib.contextmanager
def translate(url: str, key: str | None = None) -> Iterator[None]:
    """Re-raise backend errors as StorageError naming the store (and key)."""
    try:
        yield
    except LeptonError:
        raise
    except PermissionError as e:
        raise StorageError(f"store {url}: access refused; check the credentials ({_describe(e)})") from e
    except Exception as e:  # noqa: BLE001 - boundary: every backend error becomes ours
        raise StorageError(_message(url, key, e)) from e


def is_missing_bucket(e: BaseException) -> bool:
    """s3fs reports a missing bucket as FileNotFoundError too: tell them apart."""
    return any(s in _describe(e) for s in _NO_BUCKET)


def missing(url: str, key: str, e: FileNotFoundError) -> LeptonError:
    """NotFound for a missing object; StorageError when the bucket itself is missing."""
    if is_missing_bucket(e):
        return StorageError(_message(url, key, e))
    return NotFound(f"object {key} is not in the store {url}")


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip().rstrip(":")


def _message(url: str, key: str | None, e: BaseException) -> str:
    text = _describe(e)
    where = f"store {url}" + (f", object {key}" if key else "")
    if any(s in text for s in _NO_BUCKET):
        return f"{where}: the bucket does not exist ({text})"
    if any(s in text for s in _CREDENTIALS):
        return f"{where}: the server refused the credentials ({text})"
    return f"{where}: {text}"
