"""What a labelset's rows must satisfy, checked chunk by chunk by the
streaming ingest (lepton.data.ingest): a label in every row, every key a
sample of the labelled dataset; class counts gathered on the way."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from lepton.data.linecuts import Fallback


@dataclass
class LabelRule:
    """What a labelset's rows must satisfy: ``label`` present in every row,
    every key one of the dataset's samples (``samples_of``: their sorted
    64-bit hashes, computed when first needed; their type ``key_type``).
    ``checked``: key sidecars of the previous version, which held for this
    same dataset: a chunk with one of them (a relabel keeps every chunk's
    keys) needs no check, and a relabel never reads the dataset's keys."""

    label: str
    key_type: str
    samples_of: Callable[[], np.ndarray]
    checked: frozenset[str] = frozenset()
    classes: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _samples: np.ndarray | None = None
    _samples_lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, counts: Counter) -> None:
        with self.lock:
            self.classes.update(counts)

    def samples(self) -> np.ndarray:
        with self._samples_lock:
            if self._samples is None:
                self._samples = self.samples_of()
            return self._samples

    def check_keys(self, hashes: np.ndarray, keys_id: str | None) -> None:
        if not len(hashes) or (keys_id is not None and keys_id in self.checked):
            return
        samples = self.samples()
        if not len(samples):
            raise Fallback("dataset has no samples")
        at = np.clip(np.searchsorted(samples, hashes), 0, len(samples) - 1)
        if not (samples[at] == hashes).all():
            raise Fallback("label keys that are not samples of the dataset")

    def count(self, table: pa.Table) -> Counter:
        import pyarrow.compute as pc  # here: datasets never need it (0.06 s of every snapshot's start)

        col = table.column(self.label)
        if col.null_count:
            raise Fallback("empty label")
        if any(
            test(col.type) for test in (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string)
        ):
            counted = pc.value_counts(col)  # as pandas counts them below, without pandas
            values, counts = counted.field("values").to_pylist(), counted.field("counts").to_pylist()
            return Counter({str(v): int(n) for v, n in zip(values, counts, strict=True)})
        import pandas as pd

        return Counter(pd.Series(col.to_pandas()).astype(str).value_counts().to_dict())
