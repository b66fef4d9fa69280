"""Diffs between two versions. Chunks that both versions share hold the same
rows, so only the chunks that differ are read: the cost of a diff follows
the size of the change, not of the table."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from lepton.data.chunks import canonical, plain_nested, read_chunks, row_hashes
from lepton.errors import InvalidInput
from lepton.manifest import Chunk, Labelset, Manifest, TableDataset, TreeDataset
from lepton.store.objects import ObjectStore

SAMPLE = 10


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class SchemaChange(Model):
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()  # (column, old type, new type)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.retyped)


class TableDiff(Model):
    kind: str = "table"
    a: str
    b: str
    key: str | None
    rows_a: int
    rows_b: int
    added: int
    removed: int
    changed: int
    chunks_shared: int
    schema_change: SchemaChange
    samples: dict[str, list[dict[str, Any]]]


class TreeDiff(Model):
    kind: str = "tree"
    a: str
    b: str
    files_a: int
    files_b: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int


class LabelsDiff(Model):
    kind: str = "labels"
    a: str
    b: str
    dataset_a: str | None
    dataset_b: str | None
    added: int
    removed: int
    changed: int
    transitions: dict[str, int]  # "old -> new": count
    samples: dict[str, list[dict[str, Any]]]


def diff(store: ObjectStore, a: Manifest, b: Manifest, a_id: str, b_id: str):  # type: ignore[no-untyped-def]
    if isinstance(a, TreeDataset) and isinstance(b, TreeDataset):
        return diff_trees(a, b, a_id, b_id)
    if isinstance(a, Labelset) and isinstance(b, Labelset):
        return diff_labels(store, a, b, a_id, b_id)
    if isinstance(a, TableDataset) and isinstance(b, TableDataset):
        return diff_tables(store, a, b, a_id, b_id)
    kind_a = getattr(a, "layout", a.kind)
    kind_b = getattr(b, "layout", b.kind)
    raise InvalidInput(f"cannot diff a {kind_a} against a {kind_b}")


def diff_trees(a: TreeDataset, b: TreeDataset, a_id: str, b_id: str) -> TreeDiff:
    fa = {f.path: f.id for f in a.files}
    fb = {f.path: f.id for f in b.files}
    return TreeDiff(
        a=a_id,
        b=b_id,
        files_a=len(fa),
        files_b=len(fb),
        added=tuple(sorted(fb.keys() - fa.keys())),
        removed=tuple(sorted(fa.keys() - fb.keys())),
        changed=tuple(sorted(p for p in fa.keys() & fb.keys() if fa[p] != fb[p])),
        unchanged=sum(1 for p in fa.keys() & fb.keys() if fa[p] == fb[p]),
    )


def _schema_change(a: TableDataset | Labelset, b: TableDataset | Labelset) -> SchemaChange:
    ta = {c.name: c.type for c in a.columns}
    tb = {c.name: c.type for c in b.columns}
    return SchemaChange(
        added=tuple(c for c in tb if c not in ta),
        removed=tuple(c for c in ta if c not in tb),
        retyped=tuple((c, ta[c], tb[c]) for c in ta if c in tb and ta[c] != tb[c]),
    )


def _unshared(a: tuple[Chunk, ...], b: tuple[Chunk, ...]) -> tuple[list[Chunk], list[Chunk], int]:
    """Chunks of a and of b not matched by an identical chunk on the other side."""
    left = Counter(c.ident for c in a)
    right = Counter(c.ident for c in b)
    shared = left & right
    only_a, only_b, budget_a, budget_b = [], [], Counter(shared), Counter(shared)
    for c in a:
        if budget_a[c.ident]:
            budget_a[c.ident] -= 1
        else:
            only_a.append(c)
    for c in b:
        if budget_b[c.ident]:
            budget_b[c.ident] -= 1
        else:
            only_b.append(c)
    return only_a, only_b, sum(shared.values())


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.head(SAMPLE).to_dict("records")]


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray | list | tuple | dict):
        return plain_nested(v)
    if hasattr(v, "item"):
        return v.item()
    if v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return v


def _load_changed(store, a, b):  # type: ignore[no-untyped-def]
    only_a, only_b, shared = _unshared(a.chunks, b.chunks)
    return read_chunks(store, only_a), read_chunks(store, only_b), shared


def diff_tables(store: ObjectStore, a: TableDataset, b: TableDataset, a_id: str, b_id: str) -> TableDiff:
    schema = _schema_change(a, b)
    da, db, shared = _load_changed(store, a, b)
    common = [c.name for c in a.columns if c.name in {x.name for x in b.columns}]
    key = a.key if a.key and a.key == b.key else None
    if key:
        added, removed, changed, samples = _by_key(da, db, key, common)
    else:
        added, removed, changed, samples = _by_content(da, db, common)
    return TableDiff(
        a=a_id,
        b=b_id,
        key=key,
        rows_a=a.rows,
        rows_b=b.rows,
        added=added,
        removed=removed,
        changed=changed,
        chunks_shared=shared,
        schema_change=schema,
        samples=samples,
    )


def _by_key(da: pd.DataFrame, db: pd.DataFrame, key: str, common: list[str]):  # type: ignore[no-untyped-def]
    ia = da.set_index(key, drop=False) if len(da) else da
    ib = db.set_index(key, drop=False) if len(db) else db
    ka, kb = set(ia.index), set(ib.index)
    add_keys = [k for k in ib.index if k not in ka]
    rem_keys = [k for k in ia.index if k not in kb]
    both = [k for k in ib.index if k in ka]
    changed_rows: list[dict[str, Any]] = []
    n_changed = 0
    if both:
        left = ia.loc[both, common].reset_index(drop=True)
        right = ib.loc[both, common].reset_index(drop=True)
        differs = {c: _differs(left[c], right[c]) for c in common}
        diff_mask = np.logical_or.reduce([*differs.values(), np.zeros(len(both), dtype=bool)])
        n_changed = int(diff_mask.sum())
        for i in diff_mask.nonzero()[0][:SAMPLE]:
            cols = {
                c: {"from": _plain(left.at[i, c]), "to": _plain(right.at[i, c])}
                for c in common
                if differs[c][i]
            }
            changed_rows.append({"key": _plain(both[i]), "columns": cols})
    samples = {
        "added": _records(ib.loc[add_keys[:SAMPLE]]) if add_keys else [],
        "removed": _records(ia.loc[rem_keys[:SAMPLE]]) if rem_keys else [],
        "changed": changed_rows,
    }
    return len(add_keys), len(rem_keys), n_changed, samples


def _differs(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Per row: does the value differ? A retyped column is compared by value
    (3 and 3.0 are the same value), not by its typed hash."""
    if a.dtype == b.dtype:
        return row_hashes(a.to_frame(), None, exact=True) != row_hashes(b.to_frame(), None, exact=True)
    return np.array([not _same(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)])


def _same(x: Any, y: Any) -> bool:
    if _missing(x) or _missing(y):
        return _missing(x) and _missing(y)
    try:
        return bool(canonical(x) == canonical(y))
    except (TypeError, ValueError):
        return False


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _by_content(da: pd.DataFrame, db: pd.DataFrame, common: list[str]):  # type: ignore[no-untyped-def]
    """Without a key, rows are compared as a multiset of their content."""
    ha = row_hashes(da[common], None, exact=True) if len(da) else []
    hb = row_hashes(db[common], None, exact=True) if len(db) else []
    ca, cb = Counter(ha.tolist() if len(da) else []), Counter(hb.tolist() if len(db) else [])
    extra_b, extra_a = cb - ca, ca - cb

    def pick(frame: pd.DataFrame, hashes, extra: Counter) -> list[int]:  # type: ignore[no-untyped-def]
        left, rows = Counter(extra), []
        for i, h in enumerate(hashes.tolist() if len(frame) else []):
            if left[h]:
                left[h] -= 1
                rows.append(i)
        return rows

    add_rows = pick(db, hb, extra_b)
    rem_rows = pick(da, ha, extra_a)
    samples = {
        "added": _records(db.iloc[add_rows[:SAMPLE]]) if add_rows else [],
        "removed": _records(da.iloc[rem_rows[:SAMPLE]]) if rem_rows else [],
        "changed": [],
    }
    return len(add_rows), len(rem_rows), 0, samples


def diff_labels(store: ObjectStore, a: Labelset, b: Labelset, a_id: str, b_id: str) -> LabelsDiff:
    da, db, _ = _load_changed(store, a, b)
    ka, kb = a.key, b.key
    la = da.set_index(ka)[a.label] if len(da) else pd.Series(dtype=object)
    lb = db.set_index(kb)[b.label] if len(db) else pd.Series(dtype=object)
    both = la.index.intersection(lb.index)
    old, new = la.loc[both].astype(str), lb.loc[both].astype(str)
    moved = old != new
    transitions = Counter(f"{o} -> {n}" for o, n in zip(old[moved], new[moved], strict=True))
    changed = [
        {"key": _plain(k), "from": o, "to": n}
        for k, o, n in zip(old[moved].index[:SAMPLE], old[moved][:SAMPLE], new[moved][:SAMPLE], strict=True)
    ]
    added = lb.index.difference(la.index)
    removed = la.index.difference(lb.index)
    return LabelsDiff(
        a=a_id,
        b=b_id,
        dataset_a=a.parent("dataset"),
        dataset_b=b.parent("dataset"),
        added=len(added),
        removed=len(removed),
        changed=int(moved.sum()),
        transitions=dict(transitions.most_common()),
        samples={
            "changed": changed,
            "added": [{"key": _plain(k), "label": str(lb[k])} for k in added[:SAMPLE]],
            "removed": [{"key": _plain(k), "label": str(la[k])} for k in removed[:SAMPLE]],
        },
    )
