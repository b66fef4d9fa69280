"""gc on inputs and timings that once broke it."""

from __future__ import annotations

import pytest
from test_gc import _age_all, _frame

from lepton.gc import GcRefused, collect
from lepton.store import sweep
from lepton.store.objects import LOG

# ---- registry log records of the wrong shape ---------------------------------------------
BAD_RECORDS = {
    "list": b"[]",
    "null": b"null",
    "number-id": b'{"event": "register", "id": 5}',
    "list-id": b'{"event": "register", "id": ["x"]}',
    "not-a-key": b'{"event": "alias", "id": "not-a-key"}',
    "no-id": b'{"event": "register", "name": "d", "version": 2}',
}


def test_log_records_of_the_wrong_shape_stop_gc_by_name(repo):  # type: ignore[no-untyped-def]
    """Valid JSON that is not a register/alias record with an object key is
    as unreadable as invalid JSON: gc cannot know what it names, so it
    refuses, naming each record, and --force gets past them."""
    repo.snapshot_data("d", _frame(1), key="id")
    orphan = repo.store.put_bytes(b"lost")
    _age_all(repo.store)
    base = repo.store.location.join(LOG, "registry")
    paths = {}
    for i, (name, data) in enumerate(BAD_RECORDS.items()):
        paths[name] = f"{base}/20990101T00000{i}.000000Z-{name}.json"
        repo.store.fs.pipe_file(paths[name], data)
    with pytest.raises(GcRefused, match="removed nothing") as err:
        collect(repo, dry_run=False)
    assert all(p in str(err.value) for p in list(paths.values())[:5]) and "and 1 more" in str(err.value)
    assert orphan in sweep.list_objects(repo.store)
    forced = collect(repo, dry_run=False, force=True)
    assert set(forced.unreadable) == set(paths.values())
    assert "not a JSON object" in forced.unreadable[paths["list"]]
    assert "5" in forced.unreadable[paths["number-id"]]
    assert "not-a-key" in forced.unreadable[paths["not-a-key"]]
    assert forced.removed == [orphan]
    assert repo.verify("d").ok
