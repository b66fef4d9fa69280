"""The CLI starts fast: `import lepton` and `import lepton.cli.main` load
neither the registry, the store nor the table readers; the commands import
what they use. Checked in a fresh interpreter (this one has them loaded)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lepton.gc
from lepton.cli import maintenance

HEAVY = ("pandas", "pyarrow", "numpy", "sqlalchemy", "pydantic", "fsspec", "torch", "sklearn", "prefect")


def _loaded_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m == "lepton.repo")


def test_import_lepton_is_light() -> None:
    assert _heavy(_loaded_after("import lepton")) == []


def test_cli_start_up_is_light() -> None:
    assert _heavy(_loaded_after("import lepton.cli.main")) == []


def test_lazy_public_api_resolves() -> None:
    loaded = _loaded_after("from lepton import Repo, open_repo; assert Repo.__module__ == 'lepton.repo'")
    assert "lepton.repo" in loaded


def test_gc_default_grace_matches_the_library() -> None:
    assert maintenance.DEFAULT_GRACE == lepton.gc.DEFAULT_GRACE


def test_a_csv_snapshot_needs_no_pandas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The streaming ingest of CSV datasets and labels (new, resumed and
    unchanged versions) runs on pyarrow and numpy alone: pandas' import is
    about half a second of every `lepton data snapshot` here."""
    rows = "".join(f"{i},{i * 0.5},{i % 3}\n" for i in range(600_000))  # several chunks
    (tmp_path / "d.csv").write_text("id,x,y\n" + rows)
    (tmp_path / "l.csv").write_text("id,y\n" + "".join(f"{i},c{i % 3}\n" for i in range(600_000)))
    settings = {
        "store": {"url": str(tmp_path / "store")},
        "registry": {"url": f"sqlite:///{tmp_path / 'reg.db'}"},
    }
    statement = (
        "from lepton.config import Settings; from lepton.repo import Repo; "
        f"r = Repo(Settings.model_validate({settings!r})).ensure_ready(); "
        f"d, l = {str(tmp_path / 'd.csv')!r}, {str(tmp_path / 'l.csv')!r}; "
        "a = r.snapshot_data('d', d, key='id'); open(d, 'a').write('600000,1.0,2\\n'); "
        "b = r.snapshot_data('d', d, key='id'); c = r.snapshot_data('d', d, key='id'); "
        "assert a.created and b.created and not c.created and b.version.meta['resume']; "
        "s = r.snapshot_labels('y', l, dataset='d', key='id', label='y'); "
        "assert s.manifest.classes == {'c0': 200000, 'c1': 200000, 'c2': 200000}, s.manifest.classes"
    )
    loaded = _loaded_after(statement)
    assert "pyarrow.csv" in loaded  # the streaming ingest did run
    assert not [m for m in loaded if m.split(".")[0] == "pandas"]


@pytest.mark.parametrize("collecting", [True, False])
@pytest.mark.parametrize(
    "argv",
    [["data", "snapshot", "t", "t.csv"], ["data", "log", "t"], ["labels", "log", "l"], ["models", "list"]],
)
def test_the_console_script_collects_while_commands_run_and_leaves_the_process_as_it_was(
    monkeypatch, argv, collecting
):  # type: ignore[no-untyped-def]
    """The launcher turns the cyclic collector off only while it imports:
    the command itself runs with it on (long commands make garbage cycles),
    a data or labels command with numpy's BLAS on one thread (a model's
    training may use more); afterwards the collector
    and the environment are as the caller had them."""
    import lepton.cli.main
    from lepton.cli import launch

    seen: list[tuple[bool, str | None]] = []

    def command(args, head=None):  # type: ignore[no-untyped-def]
        seen.append((gc.isenabled(), os.environ.get("OPENBLAS_NUM_THREADS")))
        if head is not None:
            head.close()
        return 0

    monkeypatch.setattr(lepton.cli.main, "main", command)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no t.csv here: no head start begins
    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        assert launch.main(argv) == 0
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert seen == [(collecting, "1" if argv[0] in ("data", "labels") else None)]
    assert after == collecting and "OPENBLAS_NUM_THREADS" not in os.environ
