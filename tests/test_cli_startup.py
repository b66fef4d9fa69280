"""The CLI starts fast: `import lepton` and `import lepton.cli.main` load
neither the registry, the store nor the table readers; the commands import
what they use. Checked in a fresh interpreter (this one has them loaded)."""

from __future__ import annotations

import json
import subprocess
import sys

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
