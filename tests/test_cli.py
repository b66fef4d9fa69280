"""The `lepton` command end to end, in-process (main(argv)) on a fresh repo
in a temp folder: exit codes, one-line errors, --json on read commands."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lepton.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    """Run `lepton ARGS...` in a fresh folder; returns (code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _write_data(folder: Path, n: int = 200) -> None:
    frame = pd.DataFrame({"id": range(n), "x": [i * 0.25 for i in range(n)], "kind": ["a", "b"] * (n // 2)})
    frame.to_csv(folder / "data.csv", index=False)
    frame[["id", "kind"]].rename(columns={"kind": "label"}).to_csv(folder / "labels.csv", index=False)


def test_full_walkthrough(cli, tmp_path):  # type: ignore[no-untyped-def]
    _write_data(tmp_path)
    assert cli("init")[0] == 0
    assert (tmp_path / "lepton.toml").is_file()
    code, out, _ = cli("data", "snapshot", "d", "data.csv", "--key", "id", "-m", "first")
    assert code == 0 and "d@v1" in out
    code, out, _ = cli("data", "snapshot", "d", "data.csv", "--key", "id")
    assert code == 0 and "unchanged" in out
    code, out, _ = cli(
        "labels", "snapshot", "l", "labels.csv", "--dataset", "d", "--key", "id", "--label", "label"
    )
    assert code == 0 and "l@v1" in out

    labels = pd.read_csv(tmp_path / "labels.csv")
    labels.loc[[3, 4], "label"] = "c"
    labels.to_csv(tmp_path / "labels.csv", index=False)
    assert (
        cli(
            "labels",
            "snapshot",
            "l",
            "labels.csv",
            "--dataset",
            "d@v1",
            "--key",
            "id",
            "--label",
            "label",
        )[0]
        == 0
    )

    code, out, _ = cli("labels", "diff", "l@v1", "l@v2", "--json")
    d = json.loads(out)
    assert code == 0 and d["changed"] == 2
    assert sorted(s["key"] for s in d["samples"]["changed"]) == [3, 4]
    assert {"b -> c", "a -> c"} >= set(d["transitions"])

    code, out, _ = cli("data", "log", "d", "--json")
    versions = json.loads(out)
    assert [v["version"] for v in versions] == [1] and versions[0]["message"] == "first"
    code, out, _ = cli("labels", "log", "l", "--json")
    assert [v["version"] for v in json.loads(out)] == [1, 2]

    code, out, _ = cli("lineage", "l@v2", "--json")
    lin = json.loads(out)
    assert {(n["name"], n["version"]) for n in lin["nodes"]} == {("l", 2), ("d", 1)}
    assert lin["edges"][0]["role"] == "dataset"
    code, out, _ = cli("lineage", "d", "--downstream", "--dot", "g.dot")
    assert code == 0 and "l@v1" in out and "l@v2" in out
    assert "->" in (tmp_path / "g.dot").read_text()
    code, out, _ = cli("impact", "d@v1", "--json")
    assert {n["name"] for n in json.loads(out)["nodes"] if n["depth"] > 0} == {"l"}

    assert cli("alias", "set", "l@v1", "production")[0] == 0
    assert cli("alias", "set", "l@v2", "production")[0] == 0
    code, out, _ = cli("show", "l@production", "--json")
    shown = json.loads(out)
    assert shown["artifact"]["version"] == 2 and shown["manifest"]["classes"]["c"] == 2
    code, out, _ = cli("alias", "history", "l", "production", "--json")
    assert [(m["previous_version"], m["version"]) for m in json.loads(out)] == [(None, 1), (1, 2)]

    code, out, _ = cli("data", "diff", "d@v1", "d@latest", "--json")
    assert code == 0 and json.loads(out)["changed"] == 0
    code, out, _ = cli("data", "checkout", "d@v1", "out.csv")
    assert code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), pd.read_csv(tmp_path / "data.csv"))

    code, out, _ = cli("verify", "--json")
    assert code == 0 and json.loads(out)["findings"] == []
    code, out, _ = cli("registry", "rebuild")
    assert code == 0 and "3 version(s)" in out and "2 alias move(s)" in out
    code, out, _ = cli("show", "l@production", "--json")
    assert json.loads(out)["artifact"]["version"] == 2


def test_errors_are_one_line_exit_1(cli, tmp_path):  # type: ignore[no-untyped-def]
    _write_data(tmp_path)
    code, _, err = cli("data", "log", "d")
    assert code == 1 and err.startswith("error: no lepton.toml") and err.count("\n") == 1
    cli("init")
    (tmp_path / "bad.csv").write_text("id,x\n1,2\n3,4,5\n")
    code, _, err = cli("data", "snapshot", "d", "bad.csv", "--key", "id")
    assert code == 1 and err.count("\n") == 1
    assert "bad.csv" in err and "line 3" in err
    code, _, err = cli("show", "nothing@v2")
    assert code == 1 and "no artifact named 'nothing'" in err
    cli("data", "snapshot", "d", "data.csv", "--key", "id")
    code, _, err = cli("show", "d@v9")
    assert code == 1 and "no version v9" in err and "latest is v1" in err
    code, _, err = cli(
        "labels", "snapshot", "l", "labels.csv", "--dataset", "d", "--key", "id", "--label", "nope"
    )
    assert code == 1 and "label column 'nope' not found" in err
    code, _, err = cli("replay", "no-such-run")  # refused before a replay flow starts
    assert code == 1 and err == "error: no run record matches 'no-such-run' (use `lepton runs list`)\n"


def test_usage_errors_exit_2(cli):  # type: ignore[no-untyped-def]
    assert cli("data", "snapshot")[0] == 2
    assert cli("no-such-command")[0] == 2
    assert cli("lineage", "x", "--depth", "0")[0] == 2
    cli("init")
    assert cli("lineage", "x", "--upstream", "--downstream")[0] == 2


def test_verify_reports_and_quarantines_a_flipped_byte(cli, tmp_path):  # type: ignore[no-untyped-def]
    _write_data(tmp_path)
    cli("init")
    cli("data", "snapshot", "d", "data.csv", "--key", "id")
    _, out, _ = cli("show", "d", "--json")
    chunk = json.loads(out)["manifest"]["chunks"][0]["id"]
    digest = chunk.split(":")[1]
    path = tmp_path / ".lepton/store/objects/blake3" / digest[:2] / digest[2:]
    path.chmod(stat.S_IWUSR | stat.S_IRUSR)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))

    code, out, _ = cli("verify", "--json")
    report = json.loads(out)
    assert code == 1
    assert [(f["key"], f["problem"]) for f in report["findings"]] == [(chunk, "corrupt")]
    assert not path.exists()  # quarantined
    code, _, err = cli("data", "checkout", "d", "again.csv")
    assert code == 1 and chunk in err
    assert not (tmp_path / "again.csv").exists()


@pytest.mark.slow
def test_quickstart_script_runs(tmp_path):  # type: ignore[no-untyped-def]
    """The README's first command's walkthrough, as a user runs it."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("LEPTON_")}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", str(ROOT / "examples/quickstart.sh"), str(tmp_path / "qs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "relabeled: 2" in proc.stdout
    # features: manifest + chunk; labels v1: manifest + chunk + key sidecar; v2: manifest + patch
    assert "ok: 7 object(s) verified" in proc.stdout


@pytest.mark.slow
def test_pipeline_commands(cli, tmp_path, prefect_api):  # type: ignore[no-untyped-def]
    """run, runs, models, deploy, rollback, replay through the CLI."""
    from pipeline_helpers import prepare_data, project, write_project

    prepare_data(tmp_path)
    doc = project()
    doc["targets"]["second"] = {"kind": "directory", "path": "deploy-2"}
    write_project(tmp_path, doc)
    cli("init")
    code, out, err = cli("run", "--config", "project.toml", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["promote"] and summary["deployed"]["deployed"]
    code, out, _ = cli("runs", "list", "--json")
    assert [r["status"] for r in json.loads(out)] == ["completed"]
    code, out, _ = cli("runs", "show", summary["execution"], "--json")
    shown = json.loads(out)
    assert shown["flow_run_id"] == summary["flow_run_id"] and shown["reason"] == summary["reason"]
    code, out, _ = cli("models", "list", "bc", "--json")
    models = json.loads(out)
    assert [m["ref"] for m in models] == ["bc@v1", "bc@v2"]
    assert {m["candidate"] for m in models} == {"logreg", "mlp"}
    assert [m["aliases"] for m in models if m["ref"] == summary["winner"]] == [["production"]]
    code, out, _ = cli("models", "show", "bc@production", "--json")
    detail = json.loads(out)
    assert detail["dataset"] == "bc-features@v1" and detail["labelset"] == "bc-labels@v1"
    (evaluation,) = detail["evaluations"].values()
    assert set(evaluation["metrics"]) == {"accuracy", "precision_macro", "recall_macro", "f1_macro"}
    code, out, _ = cli("models", "compare", "bc@v1", "bc@v2", "--json")
    cmp = json.loads(out)
    assert cmp["params"]["candidate"] == {"a": "logreg", "b": "mlp"}
    assert {c["name"] for c in cmp["components"]} >= {"head", "mlp"}
    assert set(cmp["metrics"]) == {"accuracy", "precision_macro", "recall_macro", "f1_macro"}

    loser = next(m["ref"] for m in models if m["ref"] != summary["winner"])
    code, out, err = cli("deploy", loser, "--target", "second", "--config", "project.toml")
    assert code == 0, err
    code, out, _ = cli("show", "bc@production", "--json")
    assert json.loads(out)["artifact"]["version"] == int(loser.split("@v")[1])
    code, out, err = cli("rollback", "bc", "--alias", "production", "--config", "project.toml")
    assert code == 0, err
    code, out, _ = cli("show", "bc@production", "--json")
    assert f"bc@v{json.loads(out)['artifact']['version']}" == summary["winner"]
    code, _, err = cli("rollback", "bc", "--alias", "production", "--config", "project.toml")
    assert code == 1 and "no earlier version" in err

    code, out, err = cli("replay", summary["execution"], "--json")
    assert code == 0, err
    assert json.loads(out)["identical"] is True


def test_progress_from_many_threads_is_passed_on_in_batches_and_in_full() -> None:
    """A tree's 8 workers advance the bar once a file: rich's advance (a lock
    and speed samples) is called a few times a second, and every unit is
    passed on by the flush at the end."""
    import threading

    from lepton.cli.output import Batched

    got: list[int] = []
    batched = Batched(got.append, every=3600.0)

    def work() -> None:
        for _ in range(5_000):
            batched(3)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [3]  # the first call passes on at once; the rest waits for the due time
    batched.flush()
    assert sum(got) == 8 * 5_000 * 3 and len(got) == 2
    batched.flush()  # nothing pending: nothing passed on
    assert len(got) == 2
