"""Shared helpers for the pipeline tests: a repository folder on either
stack and a small project on scikit-learn's bundled breast_cancer set."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from lepton.config import Settings

ROOT = Path(__file__).resolve().parents[1]

PROJECT: dict[str, Any] = {
    "name": "bc",
    "seed": 0,
    "data": {"name": "bc-features", "source": "data/features.parquet", "key": "sample_id"},
    "labels": {"name": "bc-labels", "source": "data/labels.csv", "key": "sample_id", "label": "label"},
    "evaluation": {"name": "bc-eval", "fraction": 0.3, "seed": 0, "bootstrap": 200},
    "candidates": [
        {
            "name": "logreg",
            "components": [
                {"name": "scaler", "type": "sklearn.standard_scaler"},
                {"name": "head", "type": "sklearn.logistic_regression", "params": {"C": 0.5}},
            ],
        },
        {
            "name": "mlp",
            "components": [
                {"name": "scaler", "type": "sklearn.standard_scaler"},
                {"name": "mlp", "type": "torch.mlp", "params": {"hidden": [16], "epochs": 5}},
            ],
        },
    ],
    "policy": {
        "primary": "f1_macro",
        "test": "mcnemar",
        "alpha": 0.05,
        "bootstrap": 200,
        "constraints": [{"metric": "latency_p95_ms", "max": 5000.0}],
    },
    "targets": {"local": {"kind": "directory", "path": "deploy"}},
    "deploy": {"target": "local", "alias": "production"},
}


def project(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PROJECT)
    doc.update(changes)
    return doc


def write_repo(folder: Path, settings: Settings) -> Path:
    """A repository folder whose lepton.toml points at the test's stack."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"store": {"url": settings.store.url}, "registry": {"url": settings.registry.url}}
    s3 = settings.s3.model_dump(exclude_none=True)
    if settings.s3.endpoint_url:
        doc["s3"] = s3
    (folder / "lepton.toml").write_text(tomli_w.dumps(doc))
    return folder


def write_project(folder: Path, doc: dict[str, Any]) -> Path:
    path = folder / "project.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def prepare_data(folder: Path, relabel: float = 0.0, seed: int = 7) -> None:
    args = [sys.executable, str(ROOT / "examples/prepare.py"), "breast_cancer", str(folder / "data")]
    if relabel:
        args += ["--relabel", str(relabel), "--seed", str(seed)]
    subprocess.run(args, check=True, capture_output=True)
