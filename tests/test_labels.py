"""Labelsets on both real stacks: keyed labels checked against a table or a
tree dataset, relabeling without copying data, label diffs and lineage."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lepton.errors import InvalidInput
from lepton.manifest import Labelset, Parent
from lepton.repo import Repo

CLASSES = np.array(["bird", "cat", "dog"])
N = 2_000


def objects(repo: Repo) -> set[str]:
    return set(repo.store.iter_keys())


def samples(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": np.arange(n) * 3 + 1, "x": rng.normal(size=n)})


def labels_for(ids, seed: int = 1) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": list(ids), "label": CLASSES[rng.integers(0, 3, len(ids))]})


@pytest.fixture
def dataset(repo):  # type: ignore[no-untyped-def]
    return repo.snapshot_data("samples", samples(), key="id")


def test_labels_for_a_table_dataset(repo, dataset, tmp_path):
    labels = labels_for(samples()["id"])
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    snap = repo.snapshot_labels("labels", path, dataset="samples@v1", key="id", label="label")
    m = snap.manifest
    assert isinstance(m, Labelset)
    assert snap.created and snap.version.kind == "labelset" and snap.version.version == 1
    assert (m.key, m.label, m.rows) == ("id", "label", N)
    assert m.classes == dict(sorted(Counter(labels["label"]).items()))
    assert sum(m.classes.values()) == N
    assert m.parents == (Parent(id=dataset.version.id, role="dataset"),)
    meta = dict(snap.version.meta)
    assert meta.pop("source_key").startswith("blake3:")  # what `lepton labels status` compares
    assert meta == {"source": str(path), "dataset": "samples@v1"}
    pd.testing.assert_frame_equal(repo.read_table("labels"), labels)
    # the same labels file again is no new version
    again = repo.snapshot_labels("labels", path, dataset="samples", key="id", label="label")
    assert not again.created and again.version.id == snap.version.id


def test_labels_for_a_tree_dataset_are_keyed_by_path(repo, tmp_path):
    src = tmp_path / "images"
    paths = [f"{c}/img-{i}.png" for c in ("a", "b") for i in range(20)]
    for p in paths:
        (src / p).parent.mkdir(parents=True, exist_ok=True)
        (src / p).write_bytes(p.encode())
    repo.snapshot_data("images", src)
    labels = pd.DataFrame({"path": paths, "label": [p.split("/")[0] for p in paths]})
    snap = repo.snapshot_labels("image-labels", labels, dataset="images", key="path", label="label")
    assert snap.manifest.classes == {"a": 20, "b": 20}
    wrong = labels.copy()
    wrong.loc[3, "path"] = "a/missing.png"
    with pytest.raises(InvalidInput, match=r"1 label key\(s\) are not samples .*'a/missing\.png'"):
        repo.snapshot_labels("image-labels", wrong, dataset="images", key="path", label="label")


def test_labels_for_unknown_samples_name_them_with_lines(repo, dataset, tmp_path):
    labels = labels_for(samples()["id"][:10])
    labels.loc[3, "id"] = 5  # not a sample: ids are 1, 4, 7, ...
    labels.loc[7, "id"] = 6
    labels.loc[8, "id"] = 999_999
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    before = objects(repo)
    with pytest.raises(InvalidInput) as e:
        repo.snapshot_labels("labels", path, dataset="samples", key="id", label="label")
    msg = str(e.value)
    assert str(path) in msg and "3 label key(s) are not samples of dataset samples@v1" in msg
    assert "5 (line 5), 6 (line 9), 999999 (line 10)" in msg
    assert objects(repo) == before
    assert not any(name == "labels" for name, _, _ in repo.registry.names())


def test_labels_need_a_keyed_dataset(repo, tmp_path):
    repo.snapshot_data("nokey", samples(50))
    with pytest.raises(InvalidInput, match="dataset nokey@v1 has no key column"):
        repo.snapshot_labels("l", labels_for(range(50)), dataset="nokey", key="id", label="label")
    repo.snapshot_labels("l", labels_for([1]), dataset=_keyed(repo), key="id", label="label")
    with pytest.raises(InvalidInput, match="is a labelset, not a dataset"):
        repo.snapshot_labels("l2", labels_for([1]), dataset="l", key="id", label="label")


def _keyed(repo: Repo) -> str:
    return repo.snapshot_data("keyed", samples(10), key="id").version.ref


def test_label_column_problems(repo, dataset):
    labels = labels_for(samples()["id"][:5])
    with pytest.raises(InvalidInput, match="label column 'species' not found; columns are: id, label"):
        repo.snapshot_labels("l", labels, dataset="samples", key="id", label="species")
    with pytest.raises(InvalidInput, match="cannot also be the key"):
        repo.snapshot_labels("l", labels, dataset="samples", key="id", label="id")
    labels.loc[2, "label"] = None
    with pytest.raises(InvalidInput, match="label column 'label' is empty at row 3"):
        repo.snapshot_labels("l", labels, dataset="samples", key="id", label="label")


def test_relabel_one_percent_stores_only_label_chunks(repo, dataset):
    ids = samples()["id"]
    v1 = labels_for(ids)
    first = repo.snapshot_labels("labels", v1, dataset="samples", key="id", label="label")
    before = objects(repo)
    v2 = v1.copy()
    rng = np.random.default_rng(5)
    rows = rng.choice(N, size=N // 100, replace=False)
    flip = {"bird": "cat", "cat": "dog", "dog": "bird"}
    v2.loc[rows, "label"] = v2.loc[rows, "label"].map(flip)
    second = repo.snapshot_labels("labels", v2, dataset="samples", key="id", label="label")
    assert second.created and second.version.version == 2
    assert second.manifest.parent("dataset") == dataset.version.id
    # the data was not copied: one dataset version, and the store gained only
    # the new label chunks and the labelset manifest
    assert [v.version for v in repo.log("samples")] == [1]
    new = objects(repo) - before
    assert new == {c.id for c in second.manifest.chunks} - before | {second.version.id}
    assert not new & {c.id for c in dataset.manifest.chunks}
    assert len(new) <= 3
    # the diff names each relabeled sample with its old and new label
    d = repo.diff("labels@v1", "labels@v2")
    assert (d.added, d.removed, d.changed) == (0, 0, N // 100)
    assert d.dataset_a == d.dataset_b == dataset.version.id
    expected = Counter(f"{v1.at[r, 'label']} -> {v2.at[r, 'label']}" for r in rows)
    assert d.transitions == dict(expected)
    assert len(d.samples["changed"]) == 10
    old, new_labels = v1.set_index("id")["label"], v2.set_index("id")["label"]
    for s in d.samples["changed"]:
        assert s["key"] in set(v1.loc[rows, "id"])
        assert (s["from"], s["to"]) == (old[s["key"]], new_labels[s["key"]])
    # lineage: the labelset sits on the dataset; the dataset's impact lists both versions
    up = repo.lineage("labels@v2")
    assert dataset.version.id in {n.id for n in up.nodes if n.depth == 1}
    assert {(e.parent_id, e.role) for e in up.edges} == {(dataset.version.id, "dataset")}
    impact = {(n.name, n.version) for n in repo.impact("samples@v1").nodes if n.depth > 0}
    assert impact == {("labels", 1), ("labels", 2)}
    assert first.version.id != second.version.id


def test_labels_diff_added_and_removed_samples(repo, dataset):
    ids = list(samples()["id"])
    v1 = labels_for(ids[:100])
    v2 = pd.concat([v1.iloc[10:], labels_for(ids[100:105], seed=9)], ignore_index=True)
    repo.snapshot_labels("labels", v1, dataset="samples", key="id", label="label")
    repo.snapshot_labels("labels", v2, dataset="samples", key="id", label="label")
    d = repo.diff("labels@v1", "labels@v2")
    assert (d.added, d.removed, d.changed) == (5, 10, 0)
    assert {s["key"] for s in d.samples["added"]} == set(ids[100:105])
    assert {s["key"] for s in d.samples["removed"]} == set(ids[:10])
    assert {s["label"] for s in d.samples["removed"]} <= set(CLASSES)


def test_labels_follow_a_new_dataset_version(repo, dataset, tmp_path: Path):
    grown = samples(N + 10)
    v2 = repo.snapshot_data("samples", grown, key="id")
    labels = labels_for(grown["id"].iloc[-10:])
    with pytest.raises(InvalidInput, match="10 label key"):
        repo.snapshot_labels("l", labels, dataset="samples@v1", key="id", label="label")
    snap = repo.snapshot_labels("l", labels, dataset="samples@latest", key="id", label="label")
    assert snap.manifest.parent("dataset") == v2.version.id
    assert snap.version.meta["dataset"] == "samples@v2"


def test_scattered_relabels_store_patches_not_copies(repo):
    """Nine versions each relabeling 1% of samples, scattered over every chunk:
    each version stores about 1% of the rows (patch chunks), reads back exactly,
    and diffs across the chain report the right samples."""
    rng = np.random.default_rng(3)
    n = 70_000
    repo.snapshot_data("px", pd.DataFrame({"id": np.arange(n), "x": rng.random(n)}), key="id")
    labels = pd.DataFrame({"id": np.arange(n), "label": rng.integers(0, 5, n).astype(str)})
    first = repo.snapshot_labels("pl", labels.copy(), dataset="px", key="id", label="label")
    label_objects = lambda m: set(m.objects())  # noqa: E731
    size = lambda keys: sum(repo.store.size(k) for k in keys)  # noqa: E731
    base_size = size(label_objects(first.manifest))
    stored = set(label_objects(first.manifest))
    versions = [labels.copy()]
    for _ in range(9):
        rows = rng.choice(n, n // 100, replace=False)
        labels.loc[rows, "label"] = np.where(labels.loc[rows, "label"] == "0", "1", "0")
        snap = repo.snapshot_labels("pl", labels.copy(), dataset="px", key="id", label="label")
        stored |= label_objects(snap.manifest)
        versions.append(labels.copy())
    # nine full copies would be ~10x; a chain of nine 1% patches ~1.5x, the
    # binary-counter folding (lepton.data.patches: reads through popcount(n)
    # patches instead of n) holds ~2.3x their rows
    assert size(stored) <= 2.0 * base_size
    assert max(c.depth for c in snap.manifest.chunks) <= 3
    assert any(c.base is not None for c in snap.manifest.chunks)
    for v, expected in enumerate(versions, start=1):
        pd.testing.assert_frame_equal(repo.read_table(f"pl@v{v}"), expected)
    d = repo.diff("pl@v1", "pl@v10")
    truth = (versions[0]["label"] != versions[-1]["label"]).sum()
    assert d.changed == truth
    assert repo.verify().ok


@pytest.mark.usefixtures("half_size_chunks")
def test_a_relabel_against_the_same_dataset_reads_none_of_its_keys(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Relabelled chunks keep their keys, which were checked against this very
    dataset version: the dataset's keys are not read again. A new key, or
    another dataset version, is checked as ever."""
    from lepton.data import fileingest

    big = pd.DataFrame({"id": np.arange(200_000) * 3 + 1, "x": 0.5})
    data = tmp_path / "d.csv"
    big.to_csv(data, index=False)
    repo.snapshot_data("big", data, key="id")
    labels = labels_for(big["id"])
    path = tmp_path / "l.csv"
    labels.to_csv(path, index=False)
    first = repo.snapshot_labels("l", path, dataset="big@v1", key="id", label="label")
    assert len(first.manifest.chunks) > 1
    reads: list[int] = []
    real = fileingest.sample_hashes
    monkeypatch.setattr(fileingest, "sample_hashes", lambda *a: reads.append(1) or real(*a))
    labels.loc[::50, "label"] = "cat"
    labels.to_csv(path, index=False)
    second = repo.snapshot_labels("l", path, dataset="big@v1", key="id", label="label")
    assert second.created and reads == []
    assert second.manifest.classes == dict(sorted(Counter(labels["label"]).items()))
    # a key that is no sample: its chunk's keys are new, so they are checked
    bad = labels.copy()
    bad.loc[10, "id"] = 2
    bad.to_csv(path, index=False)
    with pytest.raises(InvalidInput, match=r"1 label key\(s\) are not samples"):
        repo.snapshot_labels("l", path, dataset="big@v1", key="id", label="label")
    # a new dataset version without some samples: every label key is checked against it
    big.iloc[:-5].to_csv(data, index=False)
    repo.snapshot_data("big", data, key="id")
    labels.to_csv(path, index=False)
    with pytest.raises(InvalidInput, match=r"5 label key\(s\) are not samples of dataset big@v2"):
        repo.snapshot_labels("l", path, dataset="big@v2", key="id", label="label")
    assert [v.version for v in repo.log("l")] == [1, 2]


def test_label_keys_are_compared_as_the_datasets_key_type(repo, tmp_path):  # type: ignore[no-untyped-def]
    """1.0 is the sample 1 of an integer key, "7" the sample 7; not their text."""
    repo.snapshot_data("ints", pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5]}), key="id")
    floats = pd.DataFrame({"id": [1.0, 3.0], "label": ["a", "b"]})
    assert repo.snapshot_labels("lf", floats, dataset="ints", key="id", label="label").created
    (tmp_path / "l.jsonl").write_text('{"id": "2", "label": "a"}\n{"id": "3", "label": "b"}\n')
    got = repo.snapshot_labels("lt", tmp_path / "l.jsonl", dataset="ints", key="id", label="label")
    assert got.created
    texts = pd.DataFrame({"id": ["1", "x"], "label": ["a", "b"]})
    with pytest.raises(InvalidInput, match=r"1 label key\(s\) are not samples.*'x' \(row 2\)"):
        repo.snapshot_labels("lx", texts, dataset="ints", key="id", label="label")
    assert not repo.registry.has_name("lx")


def test_numeric_looking_keys_of_a_text_key_say_why_they_miss(repo, tmp_path):  # type: ignore[no-untyped-def]
    """A text key such as 007 read as the number 7 misses its sample: the
    error says the file's keys were read as numbers."""
    (tmp_path / "ds.csv").write_text("id,f\n007,1\n008,2\nA1,3\n")
    repo.snapshot_data("ds", tmp_path / "ds.csv", key="id")
    as_text = pd.DataFrame({"id": ["007", "A1"], "label": ["a", "b"]})
    assert repo.snapshot_labels("l", as_text, dataset="ds", key="id", label="label").created
    (tmp_path / "l.csv").write_text("id,label\n007,a\n008,b\n")
    # the streaming reader reads a text key as text, however its values look
    csv = repo.snapshot_labels("l2", tmp_path / "l.csv", dataset="ds", key="id", label="label")
    assert sorted(repo.read_table(csv.version.ref)["id"]) == ["007", "008"]
    # the whole-file reader (here for gzip) reads them as numbers, and says so
    (tmp_path / "l.csv.gz").write_bytes(gzip.compress((tmp_path / "l.csv").read_bytes()))
    with pytest.raises(InvalidInput, match=r"l\.csv\.gz: 2 label key.*was read as numbers.*007 reads as 7"):
        repo.snapshot_labels("l3", tmp_path / "l.csv.gz", dataset="ds", key="id", label="label")
