"""How one parsed chunk of a delimited table is stored (lepton.data.ingest's
workers): whole, with its key sidecar and line sidecar, or as a patch over
the previous version's chunk with the same keys (lepton.data.samekeys,
lepton.data.patches), its line hashes kept in the patch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from lepton import hashing
from lepton.data import chunkparse, keyspan, linehash, patches, samekeys
from lepton.data.decimals import decoded
from lepton.data.keyhash import key_hashes
from lepton.data.linecuts import Fallback
from lepton.data.parquet import parquet_buffer
from lepton.manifest import Chunk

if TYPE_CHECKING:
    from lepton.data.ingest import _Job


def lines_of(job: _Job, raw: bytes | memoryview) -> linehash.Lines | None:
    """The raw chunk's line hashes, kept with what is stored of a keyed
    table's chunk so that its next edits need not parse it (lineedits)."""
    if job.key is None or job.labels is not None:
        return None
    return linehash.of(raw, job.sep, list(job.types).index(job.key))


def parse_chunk(
    job: _Job, raw: bytes | memoryview, lines: linehash.Lines | None = None
) -> tuple[Chunk, np.ndarray | None, keyspan.Span | None]:
    """A new chunk parsed whole and staged: its entry, its keys' sorted
    hashes (None where they are a previous chunk's: read if needed), and
    its integer key span. Its float columns other than the key and the
    label are parsed as stored decimals (lepton.data.decimals) where they
    are; they are divided into floats only to compare it with a previous
    chunk, for a patch; it is stored as parsed (``stored``), not encoded again."""
    kept = {job.key, job.labels.label if job.labels is not None else None}
    floats = [n for n, t in job.types.items() if t == pa.float64() and n not in kept]
    stored = chunkparse.parse_typed(raw, job.sep, job.types, floats)
    if job.key is None:
        return Chunk(id=job.staging.put(parquet_buffer(stored)), rows=stored.num_rows), None, None
    col = stored.column(job.key)
    if col.null_count:
        raise Fallback("empty key")
    span = keyspan.of_column(col) if job.labels is None else None
    # the rows as floats where they are compared with a previous chunk's (else same_keys looks no further)
    table = decoded(stored) if span is not None and span in job.by_span else stored
    same = samekeys.same_keys(job.store, job.by_span, table, job.key, span)
    if same is not None:  # a previous chunk's keys, in order: its key sidecar is this chunk's
        candidate, chain, changed = same
        hashes_of_lines = None if lines is None else lines.hashes
        chunk = samekeys.patch_changed(
            job.staging, table, candidate, chain, changed, candidate.keys, hashes_of_lines
        )  # type: ignore[arg-type]
        if chunk is None:
            chunk = whole(job, stored, candidate.keys, lines)  # type: ignore[arg-type]
        return chunk, None, span  # its key hashes: the candidate's, read if needed (sidecars)
    hashes = np.sort(key_hashes(col))
    sidecar = hashes.tobytes()
    keys_id = hashing.hash_bytes(sidecar, threads=False)
    if keys_id not in job.by_keys:  # else a previous chunk's keys: stored already, not staged again
        job.staging.put(sidecar)  # staged: visible only if the whole table is valid
    if job.labels is not None:
        job.labels.check_keys(hashes, keys_id)
        counts = job.labels.count(table)
    chunk = _as_patch(job, table, keys_id, lines)
    if chunk is None:
        chunk = whole(job, stored, keys_id, lines)
    if job.labels is not None:
        job.labels.add(counts)
    return chunk, hashes, span


def whole(job: _Job, table: pa.Table, keys_id: str, lines: linehash.Lines | None) -> Chunk:
    """The chunk stored whole, with its key sidecar's id and its line sidecar."""
    lines_id = None
    if lines is not None and len(lines) == table.num_rows:
        lines_id = job.staging.put(linehash.sidecar(lines))
    return Chunk(id=job.staging.put(parquet_buffer(table)), rows=table.num_rows, keys=keys_id, lines=lines_id)


def _as_patch(job: _Job, table: pa.Table, keys_id: str, lines: linehash.Lines | None) -> Chunk | None:
    """The chunk as a patch over the previous version's chunk with the same
    keys (or below it: lepton.data.patches), when the keys are in the same
    order and few rows differ."""
    candidate = job.by_keys.get(keys_id)
    if candidate is None:
        return None
    table = decoded(table)  # (compared with the candidate's rows; as it is if decoded already)
    chain = patches.read_chain(job.store, candidate)
    hashes_of_lines = None if lines is None or len(lines) != table.num_rows else lines.hashes
    return samekeys.patch(job.staging, table, job.key, candidate, chain, keys_id, hashes_of_lines)  # type: ignore[arg-type]
