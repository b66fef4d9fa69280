"""Reading user sources: tables (CSV, TSV, Parquet, JSON Lines, or a pandas
DataFrame) and file trees, from a local path or s3://. Every failure is one
clear InvalidInput/NotFound naming the file and, where there is one, the
line, row or column."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lepton.data.chunkparse import NULL_VALUES
from lepton.data.tablefiles import check_table_file, open_table_file
from lepton.errors import InvalidInput, NotFound
from lepton.store.fs import Location

MAX_LISTED = 10


@dataclass(frozen=True)
class LoadedTable:
    """A source read into memory; ``line_of(i)`` names row i as the user sees it."""

    frame: pd.DataFrame
    source: str
    fmt: str
    # the physical line where each row starts; computed only when an error needs it
    lines: Callable[[], list[int]] | None = None

    @cached_property
    def _lines(self) -> list[int] | None:
        return self.lines() if self.lines else None

    def line_of(self, i: int) -> str:
        if self._lines is not None and i < len(self._lines):
            return f"line {self._lines[i]}"
        if self.fmt in ("csv", "tsv"):
            return f"line {i + 2}"  # 1-based, after the header line
        if self.fmt == "jsonl":
            return f"line {i + 1}"
        return f"row {i + 1}"


def read_table(location: Location, path: str, label: str | None = None) -> LoadedTable:
    """Read one table file; ``label`` is how errors name it (default: the path)."""
    src = label or path
    fs = location.fs
    fmt = check_table_file(location, path, src)
    with open_table_file(location, path, src, compression="infer") as f:
        frame, lines = _parse(f, fmt, src, partial(fs.open, path, "rb", compression="infer"))
    if fmt in ("csv", "tsv"):  # blank lines and quoted newlines shift line numbers
        lines = partial(_delimited_lines, fs, path, "," if fmt == "csv" else "\t")
    if len(frame.columns) == 0:
        raise InvalidInput(f"{src}: no columns")
    if len(frame) == 0:
        raise InvalidInput(f"{src}: no data rows (only a header)")
    frame.columns = [str(c) for c in frame.columns]
    _unique_columns(frame.columns, src)
    return LoadedTable(frame, src, fmt, lines)


def from_frame(frame: pd.DataFrame, label: str = "<DataFrame>") -> LoadedTable:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"{label}: expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0 or len(frame.columns) == 0:
        raise InvalidInput(f"{label}: the DataFrame is empty")
    _unique_columns([str(c) for c in frame.columns], label)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return LoadedTable(frame, label, "frame")


def _unique_columns(names: list[str] | pd.Index, src: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"{src}: column '{name}' appears more than once")
        seen.add(name)


def _parse(f, fmt: str, src: str, reopen: Callable[[], Any]):  # type: ignore[no-untyped-def]
    """(frame, lines): ``lines`` gives each row's line, where the parse knows it
    (``reopen``: the file again, from its start)."""
    try:
        if fmt in ("csv", "tsv"):
            return _read_delimited(f, fmt, src), None
        if fmt == "parquet":
            return _read_parquet(f, src), None
        return _read_jsonl(f, src)
    except pd.errors.EmptyDataError as e:
        raise InvalidInput(f"{src}: the file has no columns") from e
    except pd.errors.ParserError as e:
        detail = str(e).replace("Error tokenizing data. C error: ", "").strip()
        raise InvalidInput(f"{src}: malformed {fmt.upper()}: {detail}") from e
    except (EOFError, zlib.error) as e:
        raise InvalidInput(f"{src}: the compressed file is truncated or corrupt: {e}") from e
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{src}: not UTF-8 text ({_bad_utf8(reopen)})") from e
    except (pa.ArrowInvalid, OSError) as e:
        raise InvalidInput(f"{src}: not a readable {fmt} file: {e}") from e


def _read_parquet(f, src: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The file's columns held as the Arrow arrays it has (pd.ArrowDtype), so
    that storing them gives back its types and values: through numpy, NaN
    became null, nullable integers floats, decimal128(10, 2) decimal128(3, 2)
    and a struct<a: int64> with a null row struct<a: double>."""
    _unique_columns(pq.read_schema(f).names, src)  # (Arrow's own error names no column)
    f.seek(0)
    return pq.read_table(f).to_pandas(types_mapper=_as_arrow)


def _as_arrow(t: pa.DataType) -> pd.ArrowDtype | None:
    plain = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)
    return None if plain else pd.ArrowDtype(t)  # text: as before (str), lossless either way


def _bad_utf8(reopen: Callable[[], Any]) -> str:
    """Where the first invalid UTF-8 sequence of the file is: the line and
    the byte offset in the (uncompressed) file (a decode error's own offset
    is into one of the reader's buffers)."""
    with reopen() as f:
        return _first_bad_sequence(f)


def _first_bad_sequence(f) -> str:  # type: ignore[no-untyped-def]
    decoder = codecs.getincrementaldecoder("utf-8")()
    at, lines = 0, 1
    while block := f.read(1 << 20):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(block)
        except UnicodeDecodeError as e:
            bad = at - pending + e.start  # where the sequence starts in the file
            lines += (block[: max(bad - at, 0)]).count(b"\n")
            return f"bad byte at line {lines}, byte offset {bad}"
        lines += block.count(b"\n")
        at += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return (
            f"a truncated character at the end, line {lines}, byte offset {at - len(decoder.getstate()[0])}"
        )
    return "bad byte"


def _read_delimited(f, fmt: str, src: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    sep = "," if fmt == "csv" else "\t"
    # By default pandas silently turns extra fields of the first rows into an index
    # (dropped later); with index_col=False it drops them with a warning. It also
    # fills the missing fields of a short line (a truncated last line, say) with
    # NaN. Refuse both, naming the first line that has the wrong number of fields.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        # one null rule with the streaming reader (chunkparse.NULL_VALUES): only an empty field
        frame = pd.read_csv(
            f, sep=sep, encoding="utf-8", index_col=False, keep_default_na=False, na_values=NULL_VALUES
        )
    _check_header(f, frame, sep, src)
    frame = _float_texts(frame)
    too_long = any("Length of header" in str(w.message) for w in caught)
    # a short line leaves the last column empty: only then look for one
    maybe_short = frame.shape[1] > 1 and bool(frame.iloc[:, -1].isna().any())
    if too_long or maybe_short:
        f.seek(0)
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        try:
            reader = csv.reader(text, delimiter=sep)
            width = len(next(reader, []))
            bad = (r for r in reader if len(r) > width or 0 < len(r) < width)
            where = next((f"line {reader.line_num}, saw {len(r)}" for r in bad), None)
        finally:
            text.detach()  # the caller's file stays open
        if where is not None or too_long:
            where = where or "a line"
            raise InvalidInput(f"{src}: malformed {fmt.upper()}: Expected {width} fields in {where}")
    return frame


def _check_header(f, frame: pd.DataFrame, sep: str, src: str) -> None:  # type: ignore[no-untyped-def]
    """Refuse a header that names a column twice (pandas renames the second
    'a' to 'a.1'): read the header line itself where a name looks renamed."""
    names = [str(c) for c in frame.columns]
    present = set(names)
    if not any(n.rpartition(".")[0] in present and n.rpartition(".")[2].isdigit() for n in names):
        return
    f.seek(0)
    text = io.TextIOWrapper(f, encoding="utf-8", newline="")
    try:
        header = next(csv.reader(text, delimiter=sep), [])
    finally:
        text.detach()  # the caller's file stays open
    _unique_columns(header, src)


_FLOAT_WORDS = frozenset({"nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"})


def _float_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of numbers with NaN or infinity among them as floats, as the
    streaming reader (Arrow) gives them: pandas reads such words as floats
    only where they are null values, and no text is one here. Columns of
    whole numbers too wide to store as integers as text, as it gives them."""
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind in "biufcmM":
            continue
        if col.dtype == object and col.map(lambda v: isinstance(v, int) and not -(2**63) <= v < 2**64).any():
            frame[name] = col.map(str)  # whole numbers too wide for int64 and uint64: kept as text
            continue
        empty = col.eq("")
        if empty.any():  # only pandas makes one (an empty field beside too wide a number): null
            frame[name] = col = col.mask(empty)
        words = col.dropna()
        if not len(words) or not words.map(lambda v: isinstance(v, str)).all():
            continue
        if not words.str.lower().isin(_FLOAT_WORDS).any():
            continue
        try:  # Arrow's own parse of the words (pandas' refuses "nan")
            floats = pa.array(col.to_numpy(object), pa.large_string(), from_pandas=True).cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        # held as Arrow's doubles: a NaN stays apart from the empty field's null when stored
        frame[name] = pd.Series(pd.arrays.ArrowExtensionArray(floats), index=frame.index)
    return frame


def _delimited_lines(fs, path: str, sep: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The line on which each data row starts, as pandas counts rows (blank lines
    skipped, a quoted field may span lines)."""
    out: list[int] = []
    with fs.open(path, "rb", compression="infer") as f:
        reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8", newline=""), delimiter=sep)
        prev, header = 0, True
        for row in reader:
            start, prev = prev + 1, reader.line_num
            if row and header:
                header = False
            elif row:
                out.append(start)
    return out


def _read_jsonl(f, src: str):  # type: ignore[no-untyped-def]
    records, lines = [], []
    for n, raw in enumerate(io.TextIOWrapper(f, encoding="utf-8"), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw, object_pairs_hook=partial(_object, src, n))
        except json.JSONDecodeError as e:
            raise InvalidInput(f"{src}: malformed JSON on line {n}: {e.msg}") from e
        if not isinstance(rec, dict):
            raise InvalidInput(f"{src}: line {n} is not a JSON object")
        records.append(rec)
        lines.append(n)
    return pd.DataFrame.from_records(records), lambda: lines


def _object(src: str, line: int, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names no field twice (json.loads keeps the last)."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise InvalidInput(f"{src}: line {line}: field '{name}' appears more than once")
        out[name] = value
    return out


def check_key(table: LoadedTable, key: str, role: str = "key") -> None:
    """The key column exists, has no nulls and no duplicates."""
    frame = table.frame
    if key not in frame.columns:
        cols = ", ".join(map(str, frame.columns[:20]))
        raise InvalidInput(f"{table.source}: {role} column '{key}' not found; columns are: {cols}")
    nulls = frame.index[frame[key].isna()]
    if len(nulls):
        where = ", ".join(table.line_of(i) for i in nulls[:MAX_LISTED])
        raise InvalidInput(f"{table.source}: {role} column '{key}' is empty at {where}")
    column = frame[key]
    arrow = column.dtype.pyarrow_dtype if isinstance(column.dtype, pd.ArrowDtype) else None
    if column.dtype == object or (arrow is not None and pa.types.is_nested(arrow)):
        nested = column.map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray))
        if nested.any():
            where = table.line_of(int(np.flatnonzero(nested.to_numpy())[0]))
            raise InvalidInput(
                f"{table.source}: {role} column '{key}' must hold plain values, "
                f"not lists or objects (first at {where})"
            )
    dup = column.duplicated(keep=False)
    if dup.any():
        first = frame.loc[dup, key]
        shown = []
        for value, idx in first.groupby(first, sort=False).groups.items():
            lines = ", ".join(table.line_of(i) for i in list(idx)[:3])
            shown.append(f"{value!r} ({lines})")
            if len(shown) >= MAX_LISTED:
                break
        n = int(first.nunique())
        raise InvalidInput(
            f"{table.source}: {role} column '{key}' has {n} duplicate value(s): " + "; ".join(shown)
        )


# ---- file trees -------------------------------------------------------------
@dataclass(frozen=True)
class SourceFile:
    rel: str  # posix path relative to the tree root
    path: str  # path on the source filesystem
    size: int


def safe_rel(rel: str, src: str) -> str:
    """Reject relative paths that could escape a folder on checkout."""
    p = PurePosixPath(rel)
    if (
        not rel
        or "\x00" in rel
        or "\\" in rel
        or p.is_absolute()
        or any(part in ("", ".", "..") for part in rel.split("/"))
    ):
        raise InvalidInput(f"{src}: unsafe file name {rel!r}")
    return rel


def list_tree(location: Location, root: str, label: str | None = None) -> list[SourceFile]:
    src = label or root
    fs = location.fs
    if not fs.exists(root):
        raise NotFound(f"{src}: no such folder")
    if not fs.isdir(root):
        raise InvalidInput(f"{src}: is a file; a tree source must be a folder")
    files = list(_walk_local(root, src) if location.is_local else _walk_remote(fs, root, src))
    if not files:
        raise InvalidInput(f"{src}: the folder has no files")
    return sorted(files, key=lambda f: f.rel)


def _walk_local(root: str, src: str) -> Iterator[SourceFile]:
    base = Path(root).resolve()
    for folder, dirs, names in os.walk(base, followlinks=False):
        for d in list(dirs):
            full = Path(folder, d)
            if full.is_symlink():
                _check_link(full, base, src)
                dirs.remove(d)  # do not follow linked folders: they could loop
        for n in names:
            full = Path(folder, n)
            if full.is_symlink():
                _check_link(full, base, src)
            if not full.is_file():
                continue
            rel = safe_rel(full.relative_to(base).as_posix(), src)
            yield SourceFile(rel, str(full), full.stat().st_size)


def _check_link(full: Path, base: Path, src: str) -> None:
    target = full.resolve()
    if not target.is_relative_to(base):
        raise InvalidInput(f"{src}: symlink {full.relative_to(base)} points outside the folder")


def _walk_remote(fs, root: str, src: str) -> Iterator[SourceFile]:  # type: ignore[no-untyped-def]
    prefix = root.rstrip("/") + "/"
    for path, info in sorted(fs.find(root, detail=True).items()):
        if info.get("type") == "directory" or path.endswith("/"):
            continue
        yield SourceFile(safe_rel(path.removeprefix(prefix), src), path, int(info["size"]))
