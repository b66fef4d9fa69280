import pandas as pd


def test_snapshot_roundtrip(repo, tmp_path):
    df = pd.DataFrame({"id": range(100), "x": [i * 0.5 for i in range(100)]})
    snap = repo.snapshot_data("t", df, key="id")
    assert snap.created and snap.version.version == 1
    back = repo.read_table("t@v1")
    pd.testing.assert_frame_equal(back, df)
