"""Table files by name: their format from the extension, and the checks made
before anything reads one (kept apart from the readers, which need pandas)."""

from __future__ import annotations

from typing import Any

from lepton.errors import InvalidInput, NotFound
from lepton.store.fs import Location

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def table_format(path: str) -> str:
    name = path.lower().removesuffix(".gz")
    for ext, fmt in TABLE_FORMATS.items():
        if name.endswith(ext):
            return fmt
    known = ", ".join(sorted(TABLE_FORMATS))
    raise InvalidInput(f"{path}: unknown table format; use one of {known} (optionally .gz)")


def open_table_file(location: Location, path: str, src: str, **options: Any) -> Any:
    """``path`` opened to be read (``options``: fsspec's, e.g. compression);
    a file its checks passed that cannot be opened (permissions, say) is one
    InvalidInput naming it."""
    try:
        return location.fs.open(path, "rb", **options)
    except OSError as e:
        raise InvalidInput(f"{src}: cannot read: {e.strerror or e}") from e


def check_table_file(location: Location, path: str, src: str) -> str:
    """The file exists, is a file, has a known format and is not empty; returns its format."""
    fs = location.fs
    if not fs.exists(path):
        raise NotFound(f"{src}: no such file")
    if fs.isdir(path):
        raise InvalidInput(f"{src}: is a folder; a table source must be one file")
    fmt = table_format(path)
    if fs.size(path) == 0:
        raise InvalidInput(f"{src}: the file is empty")
    return fmt
