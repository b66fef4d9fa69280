"""Model bundles: everything needed to serve a model, in one folder (local
or s3://), each file listed with its content hash; loading re-hashes every
file and runs no code from it.

    <target>/<model-hash-prefix>/bundle.json       file list + hashes
    <target>/<model-hash-prefix>/model.json        the model manifest (hash = model id)
    <target>/<model-hash-prefix>/parts/<name>/...  component specs and fitted state
    <target>/<model-hash-prefix>/predict.py        a small loader
    <target>/CURRENT                               which bundle is live (replaced atomically, last)
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lepton import hashing
from lepton.components import Component, ComponentTypes, builtin_types
from lepton.errors import IntegrityError, InvalidInput, NotFound
from lepton.manifest import canonical_json, parse_manifest
from lepton.model_manifest import ComponentSpec, Fit, Model
from lepton.store.fs import Location
from lepton.store.objects import ObjectStore

BUNDLE_FORMAT = 1
CURRENT = "CURRENT"
PREDICT_PY = '''"""Load this bundle and predict: python predict.py INPUT.csv [OUTPUT.csv]"""
import sys
from pathlib import Path

import pandas as pd
from lepton.deploy.bundle import load_bundle

model = load_bundle(Path(__file__).parent)  # verifies every file's hash
frame = pd.read_csv(sys.argv[1])
out = frame.assign(prediction=model.predict(frame))
out.to_csv(sys.argv[2] if len(sys.argv) > 2 else sys.stdout, index=False)
'''


def bundle_files(store: ObjectStore, model_id: str) -> dict[str, bytes]:
    """Every file of a model's bundle, from the store (each object verified)."""
    model = parse_manifest(store.read_bytes(model_id), model_id)
    if not isinstance(model, Model):
        raise InvalidInput(f"{model_id} is a {model.kind}, not a model")
    files: dict[str, bytes] = {
        "model.json": store.read_bytes(model_id),
        "predict.py": PREDICT_PY.encode(),
    }
    for part in model.parts:
        fit = parse_manifest(store.read_bytes(part.fit), part.fit)
        assert isinstance(fit, Fit)
        files[f"parts/{part.name}/spec.json"] = store.read_bytes(part.spec)
        for name, key in fit.files.items():
            files[f"parts/{part.name}/{name}"] = store.read_bytes(key)
    listing = {path: hashing.hash_bytes(data) for path, data in sorted(files.items())}
    files["bundle.json"] = canonical_json({"format": BUNDLE_FORMAT, "model": model_id, "files": listing})
    return files


def write_bundle(target: Location, model_id: str, files: dict[str, bytes]) -> str:
    """Write the bundle under the target; returns its path. The target
    serves what it did until switch_to() makes the bundle live."""
    folder = target.join(hashing.short(model_id, 16))
    for path, data in sorted(files.items()):
        if path == "bundle.json":
            continue
        _put(target, f"{folder}/{path}", data)
    _put(target, f"{folder}/bundle.json", files["bundle.json"])  # written last: the commit marker
    return folder


def switch_to(target: Location, model_id: str) -> None:
    """Point the target's CURRENT at the (already written) bundle of ``model_id``."""
    _put(target, target.join(CURRENT), hashing.short(model_id, 16).encode())


def _put(target: Location, path: str, data: bytes) -> None:
    if target.is_local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    else:
        target.fs.pipe_file(path, data)  # a single PUT: all or nothing


@dataclass
class LoadedModel:
    """A deployed model, ready to predict."""

    model: Model
    model_id: str
    components: list[Component]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes

    def inputs(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(x, pd.DataFrame):
            missing = [f for f in self.model.features if f not in x.columns]
            if missing:
                raise InvalidInput(f"input lacks feature column(s): {', '.join(missing)}")
            x = x[list(self.model.features)]
            if self.model.input.kind == "text":
                return x.iloc[:, 0].astype(str).to_numpy()
            return np.ascontiguousarray(x.to_numpy(dtype=np.float32))
        return np.asarray(x) if self.model.input.kind == "text" else np.asarray(x, dtype=np.float32)

    def predict_proba(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        h = self.inputs(x)
        for comp in self.components:
            h = comp.predict_proba(h) if comp.final else comp.transform(h)
        return h

    def predict(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[self.predict_proba(x).argmax(axis=1)]


def load_bundle(
    path: str, location: Location | None = None, types: ComponentTypes | None = None
) -> LoadedModel:
    """Load a bundle folder (or the CURRENT one under a target), verifying
    every file against bundle.json and the model id."""
    from lepton.store.fs import open_location

    loc = location or open_location(str(path))
    root = loc.root
    fs = loc.fs
    if fs.exists(f"{root}/{CURRENT}") and not fs.exists(f"{root}/bundle.json"):
        root = f"{root}/{fs.cat_file(f'{root}/{CURRENT}').decode().strip()}"
    try:
        index = json.loads(fs.cat_file(f"{root}/bundle.json"))
    except FileNotFoundError as e:
        raise NotFound(f"{path}: no bundle.json (not a Lepton bundle)") from e
    except ValueError as e:
        raise IntegrityError(f"bundle {path}: bundle.json is not JSON ({e})") from e
    listed = index.get("files") if isinstance(index, dict) else None
    if not isinstance(listed, dict) or not isinstance(index.get("model"), str):
        raise IntegrityError(f"bundle {path}: bundle.json lacks its 'model' id or 'files' list")
    files = {}
    for rel, key in listed.items():
        if not isinstance(rel, str) or ".." in rel.split("/") or rel.startswith("/"):
            raise IntegrityError(f"bundle {path}: bundle.json lists {rel!r}, outside the bundle")
        try:
            data = fs.cat_file(f"{root}/{rel}")
        except FileNotFoundError as e:
            raise IntegrityError(f"bundle {path}: {rel} is listed in bundle.json but missing") from e
        actual = hashing.hash_bytes(data)
        if actual != key:
            raise IntegrityError(f"bundle {path}: {rel} hashes to {actual}, expected {key}")
        files[rel] = data
    model_id = index["model"]
    _require(files, path, "model.json")
    if hashing.hash_bytes(files["model.json"]) != model_id:
        raise IntegrityError(f"bundle {path}: model.json does not match model id {model_id}")
    model = parse_manifest(files["model.json"], model_id)
    assert isinstance(model, Model)
    types = types or builtin_types()
    components = []
    _require(files, path, *(f"parts/{part.name}/spec.json" for part in model.parts))
    for part in model.parts:
        spec = parse_manifest(files[f"parts/{part.name}/spec.json"], part.spec)
        assert isinstance(spec, ComponentSpec)
        comp = types.get(spec.type, f"bundle part {part.name}").from_config(spec.params, part.name)
        prefix = f"parts/{part.name}/"
        try:
            comp.load(
                {
                    k.removeprefix(prefix): v
                    for k, v in files.items()
                    if k.startswith(prefix) and not k.endswith("spec.json")
                }
            )
        except KeyError as e:
            raise IntegrityError(f"bundle {path}: bundle.json does not list {prefix}{e.args[0]}") from e
        components.append(comp)
    return LoadedModel(model, model_id, components)


def _require(files: dict[str, bytes], path: str, *needed: str) -> None:
    missing = [rel for rel in needed if rel not in files]
    if missing:
        raise IntegrityError(f"bundle {path}: bundle.json does not list {', '.join(missing)}")
