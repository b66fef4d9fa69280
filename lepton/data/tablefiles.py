"""Table files by name: their format from the extension, and the checks made
before anything reads one (kept apart from the readers, which need pandas)."""

from __future__ import annotations

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
