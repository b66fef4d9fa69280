"""Writes to an S3 store (lepton.store.objects): publishing a local file as
an object only once what was sent hashes to its key, and reusing an object
already there (refreshed first when old, so that gc leaves it).

S3 has no atomic rename: a small file goes as one PUT, a larger one as a
multipart upload that is completed only once verified, else aborted. An
object that is not complete is never visible at its final key."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

from lepton import hashing
from lepton.store import localio
from lepton.store.errors import is_missing_bucket

# Multipart part size for streamed uploads (S3's minimum is 5 MiB, at most
# 10,000 parts), fed in small writes; reads go block by block, uncached.
# Memory stays bounded whatever the object size.
PART_SIZE = 8 * 2**20
MAX_PARTS = 9_000
WRITE_BLOCK = 2**20
COPY_LIMIT = 5 * 2**30  # the largest object a single S3 CopyObject can copy


def reuse(fs: Any, path: str, note_prefix: str, fresh_for: float) -> bool:
    """True when the object at ``path`` is there and may be reused as is: one
    older than ``fresh_for`` seconds is first copied onto itself (a new
    modification time), after leaving a note ``note_prefix`` + a uuid that
    gc checks for after each delete (lepton/store/sweep.py). False when it
    is absent, removed meanwhile, or too large to copy: write it again."""
    try:
        info = fs.info(path)
    except FileNotFoundError as e:
        if is_missing_bucket(e):
            raise
        return False
    modified = info.get("LastModified")
    if modified is None or time.time() - modified.timestamp() > fresh_for:
        fs.pipe_file(f"{note_prefix}{uuid.uuid4().hex}", b"")
        if int(info.get("size", 0)) > COPY_LIMIT:
            return False
        bucket, name, _ = fs.split_path(path)
        try:
            fs.call_s3(
                "copy_object",
                Bucket=bucket,
                Key=name,
                CopySource={"Bucket": bucket, "Key": name},
                MetadataDirective="REPLACE",
            )
        except FileNotFoundError as e:  # removed meanwhile: write it again
            if is_missing_bucket(e):
                raise
            return False
    return True


def publish(fs: Any, final: str, src: str | os.PathLike[str], key: str) -> str:
    """Send ``src`` to ``final``, hashing what is sent; publish only if it
    hashes to ``key``. Returns the hash of what was read."""
    src = Path(src)
    size = os.path.getsize(src)
    if size < PART_SIZE:
        data = src.read_bytes()
        actual = hashing.hash_bytes(data)
        if actual == key:
            fs.pipe_file(final, data)
        return actual
    part = max(PART_SIZE, -(-size // MAX_PARTS))
    f = fs.open(final, "wb", block_size=part, autocommit=False)
    try:
        with f:  # closing uploads the last part; nothing is visible yet
            actual = localio.copy_hashing(src, f, WRITE_BLOCK)
        if actual == key:
            f.commit()
            return actual
    except BaseException:
        with contextlib.suppress(Exception):  # best effort; gc aborts stale uploads
            f.discard()
        raise
    f.discard()
    return actual
