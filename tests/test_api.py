"""The public API is what ``lepton.__all__`` names, and the core library
never imports Prefect (nor the tasks/flows built on it)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import lepton
from lepton import errors

LEPTON = Path(lepton.__file__).parent

PUBLIC = {
    "AmbiguousRef",
    "ConfigError",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "LeptonError",
    "NotFound",
    "Repo",
    "Snapshot",
    "StorageError",
    "__version__",
    "init_repo",
    "open_repo",
}
# Layers above the core; only the CLI may import flows, lazily inside a command.
UPPER = {"prefect", "prefect_dask", "tasks", "flows"}


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(lepton.__all__) == sorted(PUBLIC)
    assert len(lepton.__all__) == len(set(lepton.__all__))


def test_every_public_name_is_importable() -> None:
    for name in lepton.__all__:
        assert getattr(lepton, name) is not None, name
    ns: dict = {}
    exec("from lepton import *", ns)  # noqa: S102 - the star import users would write
    assert set(ns) - {"__builtins__"} == PUBLIC


def test_public_errors_share_one_root_and_a_builtin() -> None:
    builtins = {
        "NotFound": KeyError,
        "AmbiguousRef": LookupError,
        "InvalidInput": ValueError,
        "IntegrityError": OSError,
        "Conflict": RuntimeError,
        "StorageError": OSError,
        "ConfigError": ValueError,
    }
    for name, builtin in builtins.items():
        cls = getattr(lepton, name)
        assert cls is getattr(errors, name)
        assert issubclass(cls, lepton.LeptonError) and issubclass(cls, builtin), name
    assert str(lepton.NotFound("plain message")) == "plain message"  # not KeyError's repr


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level package, at module level?) for each import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module_level = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(n.split(".")[0], id(node) in module_level) for n in names]
    return found


def test_core_never_imports_prefect_tasks_or_flows() -> None:
    files = sorted(LEPTON.rglob("*.py"))
    assert len(files) > 20 and LEPTON / "repo.py" in files
    offenders = []
    for path in files:
        rel = path.relative_to(LEPTON).as_posix()
        for top, at_module_level in _imports(path):
            if top not in UPPER:
                continue
            lazy_cli_flow = rel.startswith("cli/") and top == "flows" and not at_module_level
            if not lazy_cli_flow:
                offenders.append(f"lepton/{rel} imports {top}")
    assert offenders == []


def test_import_scan_sees_nested_and_module_imports(tmp_path: Path) -> None:
    """The scanner above would catch the imports it looks for."""
    src = tmp_path / "x.py"
    src.write_text("import prefect.flows\ndef f():\n    from flows import retrain\n")
    assert _imports(src) == [("prefect", True), ("flows", False)]


def test_importing_every_core_module_loads_no_prefect() -> None:
    """At run time too: import every lepton module in a fresh interpreter
    (Prefect is installed here) and check Prefect was never loaded."""
    modules = sorted(
        ".".join(("lepton", *p.relative_to(LEPTON).with_suffix("").parts)).removesuffix(".__init__")
        for p in LEPTON.rglob("*.py")
        if "migrations" not in p.parts
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(UPPER)!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert importlib.util.find_spec("prefect") is not None  # the check means something
