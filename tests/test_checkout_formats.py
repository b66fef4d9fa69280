"""Checkout into text formats: what CSV/TSV cannot hold is refused by name."""

from __future__ import annotations

import base64
import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lepton.errors import InvalidInput


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_binary_column_is_refused_for_csv_and_tsv(repo, tmp_path, suffix):  # type: ignore[no-untyped-def]
    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "v": [b"\x00", b"\xff", b""]}), src)
    repo.snapshot_data("t", src, key="id")
    out = tmp_path / "out" / f"o{suffix}"
    with pytest.raises(InvalidInput, match=r"column 'v' holds bytes.*\.parquet"):
        repo.checkout("t", out)
    assert not out.exists() and list(out.parent.iterdir()) == []  # nothing half-written
    back = pq.read_table(repo.checkout("t", tmp_path / "o.parquet"))
    assert back.column("v").to_pylist() == [b"\x00", b"\xff", b""]
    lines = repo.checkout("t", tmp_path / "o.jsonl").read_text().splitlines()
    assert [base64.b64decode(json.loads(line)["v"]) for line in lines] == [b"\x00", b"\xff", b""]


def test_nested_bytes_are_refused_too(repo, tmp_path):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"id": [1, 2], "v": [[b"\x01"], [b"\xfe", b""]]})
    repo.snapshot_data("nb", frame, key="id")
    with pytest.raises(InvalidInput, match="column 'v' holds bytes"):
        repo.checkout("nb", tmp_path / "o.csv")


def test_cli_names_the_column(tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    from lepton.cli.main import main

    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)
    pq.write_table(pa.table({"id": [1, 2, 3], "v": [b"\x00", b"\xff", b""]}), tmp_path / "t.parquet")
    assert main(["init"]) == 0
    assert main(["data", "snapshot", "t", "t.parquet", "--key", "id"]) == 0
    capsys.readouterr()
    code = main(["data", "checkout", "t", "o.csv"])
    err = capsys.readouterr().err
    assert code != 0 and "column 'v'" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
