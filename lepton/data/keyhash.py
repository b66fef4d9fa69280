"""64-bit hashes of key values, equal to pandas' ``hash_pandas_object(values,
index=False)`` (key sidecars, labels' sample checks and the whole-file
reader all compare them), computed without pandas for integer keys: the
streaming ingest then needs no pandas at all, and skips a Series per chunk."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def int64_values(values: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """A 64-bit integer column without nulls as a read-only numpy array over
    its buffer (int64 or uint64 as its type; pyarrow's to_numpy imports
    pandas); None for any other type."""
    if not (pa.types.is_integer(values.type) and values.type.bit_width == 64):
        return None
    return words_of(values, np.int64 if pa.types.is_signed_integer(values.type) else np.uint64)


def words_of(values: pa.ChunkedArray | pa.Array, dtype: type) -> np.ndarray:
    """A column of fixed-width values without nulls as a read-only numpy
    array of ``dtype`` (of the same width) over its buffer (no copy, no
    pandas)."""
    if isinstance(values, pa.ChunkedArray):  # combine_chunks copies even a single chunk
        array = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    else:
        array = values
    width = np.dtype(dtype).itemsize
    return np.frombuffer(array.buffers()[1], dtype, count=len(array), offset=array.offset * width)


def key_hashes(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The hash of each value (uint64), in order. ``values`` has no nulls."""
    ints = int64_values(values)
    if ints is not None:
        h = ints.view(np.uint64).copy()
        # pandas' mix of 64-bit numbers (pandas.core.util.hashing._hash_ndarray)
        h ^= h >> _S30
        h *= _M1
        h ^= h >> _S27
        h *= _M2
        h ^= h >> _S31
        return h
    import pandas as pd  # other types: pandas' own hashing (strings: siphash)

    series = pd.Series(values.to_pandas())
    return pd.util.hash_pandas_object(series, index=False).to_numpy(np.uint64)
