"""The streaming ingest stores scattered in-place edits and relabels as
patches over the previous version's chunks, and takes labelsets with their
checks (labels present, keys samples of the dataset, class counts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lepton.data import patches
from lepton.errors import InvalidInput
from lepton.manifest import Chunk

N = 60_000


def _table(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {f"f{i}": rng.random(n).round(6) for i in range(6)}
    return pd.DataFrame({"id": np.arange(n) + 1_000_000, **cols, "label": rng.integers(0, 10, n)})


def _stored(repo) -> set[str]:  # type: ignore[no-untyped-def]
    return set(repo.store.iter_keys())


def _new_bytes(repo, before: set[str]) -> int:  # type: ignore[no-untyped-def]
    return sum(repo.store.size(k) for k in _stored(repo) - before)


def _edit(frame: pd.DataFrame, rng: np.random.Generator, share: float) -> None:
    rows = rng.choice(N - 1, size=int(N * share), replace=False)  # scattered, and the last row:
    rows = np.append(rows, N - 1)  # every chunk edited, the small last one too
    frame.loc[rows, "f3"] = rng.random(len(rows)).round(6)


def test_sparse_edits_store_patches_and_read_back_exactly(repo, tmp_path):  # type: ignore[no-untyped-def]
    frame = _table()
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    before = _stored(repo)
    repo.snapshot_data("t", path, key="id")
    first_bytes = _new_bytes(repo, before)
    rng = np.random.default_rng(1)
    for version in range(2, 12):
        _edit(frame, rng, 0.001)
        frame.to_csv(path, index=False)
        before = _stored(repo)
        snap = repo.snapshot_data("t", path, key="id")
        grown = _new_bytes(repo, before)
        assert all(c.base is not None for c in snap.manifest.chunks), "every chunk was edited"
        assert grown < 0.1 * first_bytes, f"v{version} stored {grown} bytes of {first_bytes}"
        # folded as a binary counter: after 10 edits, not a chain of 10 (edits per chunk vary: +1)
        edits = version - 1
        assert max(c.depth for c in snap.manifest.chunks) <= edits.bit_length() + 1, version
        pd.testing.assert_frame_equal(repo.read_table(f"t@v{version}"), frame)
    assert max(c.depth for c in snap.manifest.chunks) < 10
    pd.testing.assert_frame_equal(repo.read_table("t@v2").drop(columns="f3"), frame.drop(columns="f3"))


def test_a_patch_that_would_pass_the_chain_bound_stores_the_chunk_whole(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(patches, "MAX_DEPTH", 1)
    frame = _table()
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    rng = np.random.default_rng(2)
    _edit(frame, rng, 0.02)  # many rows, then few: the few are not folded into the many
    frame.to_csv(path, index=False)
    second = repo.snapshot_data("t", path, key="id")
    assert all(c.depth == 1 for c in second.manifest.chunks)
    _edit(frame, rng, 0.0005)
    frame.to_csv(path, index=False)
    third = repo.snapshot_data("t", path, key="id")
    assert any(c.base is None for c in third.manifest.chunks)
    assert max(c.depth for c in third.manifest.chunks) <= 1
    pd.testing.assert_frame_equal(repo.read_table("t@v3"), frame)


def _chain(sizes: list[int]) -> tuple[Chunk, patches.Chain]:
    """A chunk entry with patches of these sizes (oldest first), disjoint rows."""
    entry, held, start = Chunk(id="root", rows=1000), [], 0
    for i, n in enumerate(sizes):
        entry = Chunk(id=f"p{i}", rows=1000, base=entry)
        held.append(np.arange(start, start + n))
        start += n
    return entry, patches.Chain(pa.table({"x": [0]}), held[::-1])


def test_patches_fold_like_a_binary_counter() -> None:
    """Even edits of 10 rows: after n edits the chain is popcount(n) patches
    deep, each folded patch holding the rows of those it replaced."""
    sizes: list[int] = []
    for n in range(1, 40):
        candidate, chain = _chain(sizes)
        parent, positions = patches.place(candidate, chain.positions, np.arange(90_000, 90_010), 100_000)  # type: ignore[misc]
        folded = candidate.depth - parent.depth
        assert parent.depth + 1 == bin(n).count("1"), n
        assert len(positions) == 10 + sum(sizes[len(sizes) - folded :]), n
        sizes = [*sizes[: len(sizes) - folded], len(positions)]


def test_a_patch_is_placed_whole_past_the_share_or_depth_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    candidate, chain = _chain([200])
    assert (
        patches.place(candidate, chain.positions, np.arange(900, 1001), 1000) is None
    )  # folded: 301 rows > 25%
    candidate, chain = _chain([100])
    parent, positions = patches.place(candidate, chain.positions, np.arange(900, 960), 1000)  # type: ignore[misc]
    assert parent.id == "root" and len(positions) == 160
    monkeypatch.setattr(patches, "MAX_DEPTH", 1)
    candidate, chain = _chain([200])
    assert patches.place(candidate, chain.positions, np.arange(900, 910), 1000) is None  # over it: depth 2


def _labelled(repo, tmp_path, n: int = N):  # type: ignore[no-untyped-def]
    frame = _table(n)
    frame.drop(columns="label").to_csv(tmp_path / "features.csv", index=False)
    repo.snapshot_data("features", tmp_path / "features.csv", key="id")
    labels = frame[["id", "label"]].copy()
    labels.to_csv(tmp_path / "labels.csv", index=False)
    return labels


def test_relabel_goes_through_the_streaming_ingest_as_patches(repo, tmp_path):  # type: ignore[no-untyped-def]
    labels = _labelled(repo, tmp_path)
    first = repo.snapshot_labels("l", tmp_path / "labels.csv", dataset="features", key="id", label="label")
    counts = labels["label"].astype(str).value_counts()
    assert first.manifest.classes == {k: int(v) for k, v in sorted(counts.items())}
    assert all(c.keys for c in first.manifest.chunks), "taken by the streaming ingest (key sidecars)"
    rng = np.random.default_rng(2)
    rows = rng.choice(N, size=N // 100, replace=False)
    labels.loc[rows, "label"] = (labels.loc[rows, "label"] + 1) % 10
    labels.to_csv(tmp_path / "labels.csv", index=False)
    before = _stored(repo)
    second = repo.snapshot_labels("l", tmp_path / "labels.csv", dataset="features", key="id", label="label")
    assert all(c.base is not None for c in second.manifest.chunks)
    label_bytes = sum(repo.store.size(c.id) for c in first.manifest.chunks)
    assert _new_bytes(repo, before) < 0.2 * label_bytes
    counts = labels["label"].astype(str).value_counts()
    assert second.manifest.classes == {k: int(v) for k, v in sorted(counts.items())}
    pd.testing.assert_frame_equal(repo.read_table("l@v2"), labels)
    assert "source_key" in second.version.meta


def test_streamed_labels_match_the_whole_file_path(repo, tmp_path):  # type: ignore[no-untyped-def]
    labels = _labelled(repo, tmp_path, n=5_000)
    streamed = repo.snapshot_labels("a", tmp_path / "labels.csv", dataset="features", key="id", label="label")
    whole = repo.snapshot_labels("b", labels, dataset="features", key="id", label="label")
    assert streamed.manifest.classes == whole.manifest.classes
    assert streamed.manifest.rows == whole.manifest.rows
    pd.testing.assert_frame_equal(repo.read_table("a"), repo.read_table("b"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: f.__setitem__("label", f["label"].astype(object).where(f.index != 4321, None)),
            "empty at line 4323",
        ),
        (
            lambda f: f.__setitem__("id", f["id"].where(f.index != 777, 42)),
            r"not samples of dataset .*42 \(line 779\)",
        ),
    ],
)
def test_bad_labels_get_the_whole_file_readers_error_and_store_nothing(repo, tmp_path, edit, message):  # type: ignore[no-untyped-def]
    labels = _labelled(repo, tmp_path, n=20_000)
    edit(labels)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    before = _stored(repo)
    with pytest.raises(InvalidInput, match=message):
        repo.snapshot_labels("l", tmp_path / "labels.csv", dataset="features", key="id", label="label")
    assert _stored(repo) == before
    assert not repo.registry.has_name("l")


def test_reused_label_chunks_are_checked_against_a_newer_dataset(repo, tmp_path):  # type: ignore[no-untyped-def]
    labels = _labelled(repo, tmp_path)
    repo.snapshot_labels("l", tmp_path / "labels.csv", dataset="features", key="id", label="label")
    features = pd.read_csv(tmp_path / "features.csv")
    features[features["id"] != labels["id"].iloc[100]].to_csv(tmp_path / "features.csv", index=False)
    repo.snapshot_data("features", tmp_path / "features.csv", key="id")
    with pytest.raises(InvalidInput, match=rf"not samples of dataset features@v2.*{labels['id'].iloc[100]}"):
        repo.snapshot_labels("l", tmp_path / "labels.csv", dataset="features", key="id", label="label")


def test_staged_objects_are_published_or_removed_never_left_in_tmp(repo, tmp_path):  # type: ignore[no-untyped-def]
    from lepton.store import sweep

    frame = _table(20_000)
    frame.to_csv(tmp_path / "t.csv", index=False)
    snap = repo.snapshot_data("t", tmp_path / "t.csv", key="id")
    assert all(repo.store.exists(k) for k in snap.manifest.objects())
    frame.loc[len(frame)] = frame.iloc[5]  # a duplicate key: rejected after every chunk was staged
    frame.to_csv(tmp_path / "t.csv", index=False)
    before = _stored(repo)
    with pytest.raises(InvalidInput, match="duplicate"):
        repo.snapshot_data("t", tmp_path / "t.csv", key="id")
    assert _stored(repo) == before
    assert not [e for e in sweep.list_tmp(repo.store) if "stage-" in e.name]


def test_a_new_version_keyed_by_another_column_is_stored_whole(repo):  # type: ignore[no-untyped-def]
    repo.snapshot_data("k", pd.DataFrame({"a": range(3000), "x": 1.0}), key="a")
    second = repo.snapshot_data("k", pd.DataFrame({"b": range(3000), "x": 1.0}), key="b")
    assert second.created and all(c.base is None for c in second.manifest.chunks)
    assert list(repo.read_table("k@v2").columns) == ["b", "x"]


def test_a_zero_that_changes_sign_is_a_change(repo, tmp_path):  # type: ignore[no-untyped-def]
    """Rows are compared bit for bit: -0.0 == 0.0 as numbers, but a version
    that wrote -0.0 reads back -0.0."""
    frame = _table()
    frame.loc[5, "f3"] = 0.0
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    frame.loc[5, "f3"] = -0.0
    frame.to_csv(path, index=False)
    snap = repo.snapshot_data("t", path, key="id")
    assert any(c.base is not None for c in snap.manifest.chunks)
    assert np.signbit(repo.read_table("t@v2")["f3"].iloc[5])
    assert not np.signbit(repo.read_table("t@v1")["f3"].iloc[5])


def test_edits_in_place_find_their_chunks_by_key_range_without_hashing_keys(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A chunk whose integer key range is one previous chunk's, with exactly
    its keys in order, takes that chunk's key sidecar: its keys are neither
    hashed nor sorted again."""
    from lepton.data import chunkwrite

    frame = _table()
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    first = repo.snapshot_data("t", path, key="id")
    hashed: list[int] = []
    real = chunkwrite.key_hashes
    monkeypatch.setattr(chunkwrite, "key_hashes", lambda col: hashed.append(len(col)) or real(col))
    _edit(frame, np.random.default_rng(4), 0.001)
    frame.to_csv(path, index=False)
    snap = repo.snapshot_data("t", path, key="id")
    assert hashed == []
    assert all(c.base is not None for c in snap.manifest.chunks)
    assert [c.keys for c in snap.manifest.chunks] == [c.keys for c in first.manifest.chunks]
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), frame)


def test_a_key_repeated_inside_its_chunks_range_is_a_duplicate(repo, tmp_path):  # type: ignore[no-untyped-def]
    """The same key range but not the same keys: the keys are hashed and
    checked as any new chunk's, and the repeat is named."""
    frame = _table()
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    before = _stored(repo)
    frame.loc[100, "id"] = frame.loc[101, "id"]
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInput, match=r"duplicate value\(s\): 1000101"):
        repo.snapshot_data("t", path, key="id")
    assert _stored(repo) == before


def test_rows_reordered_inside_a_chunk_read_back_in_their_new_order(repo, tmp_path):  # type: ignore[no-untyped-def]
    frame = _table()
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    order = np.arange(N)
    order[[200, 300]] = order[[300, 200]]  # the same keys and key range, in another order
    frame = frame.iloc[order].reset_index(drop=True)
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), frame)


@pytest.mark.parametrize("seed", range(6))
def test_changes_over_a_chain_match_those_against_its_rows(seed: int) -> None:
    """changed_over compares with a chain's base and patches in place; it
    must find what changed_rows finds against the rows put together,
    including rows a later patch set back, and refuse other keys."""
    rng = np.random.default_rng(seed)
    n = 500
    base = pa.table({"id": np.arange(n), "x": rng.random(n), "y": rng.integers(0, 9, n)})
    layers, held, rows = [], [], base.to_pandas()
    for _ in range(int(rng.integers(1, 4))):
        pos = np.sort(rng.choice(n, int(rng.integers(1, 40)), replace=False))
        layer = rows.iloc[pos].copy()
        layer["x"] = np.where(
            rng.random(len(pos)) < 0.3, base.column("x").to_numpy()[pos], rng.random(len(pos))
        )
        rows.iloc[pos] = layer
        layers.append(pa.Table.from_pandas(layer, preserve_index=False).cast(base.schema))
        held.append(pos)
    chain = patches.Chain(base, held[::-1], tuple(layers))
    assert chain.rows.equals(pa.Table.from_pandas(rows, preserve_index=False).cast(base.schema))
    part = rows.copy()
    edit = rng.choice(n, 20, replace=False)
    part.loc[edit, "y"] = part.loc[edit, "y"] + rng.integers(0, 2, 20)  # some unchanged
    part.loc[held[0][:3], "x"] = base.column("x").to_numpy()[held[0][:3]]  # back to the base's values
    table = pa.Table.from_pandas(part, preserve_index=False).cast(base.schema)
    got = patches.changed_over(chain, table, "id")
    assert got is not None
    np.testing.assert_array_equal(got, patches.changed_rows(chain.rows, table, "id"))
    swapped = part.copy()
    swapped.loc[[held[-1][0], (held[-1][0] + 1) % n], "id"] = swapped.loc[
        [(held[-1][0] + 1) % n, held[-1][0]], "id"
    ].to_numpy()
    assert (
        patches.changed_over(
            chain, pa.Table.from_pandas(swapped, preserve_index=False).cast(base.schema), "id"
        )
        is None
    )
