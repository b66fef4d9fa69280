"""Write one of scikit-learn's bundled data sets (shipped inside the
scikit-learn package: nothing is downloaded) as a feature table and a label
table, the way a team's data lands: features.parquet + labels.csv.

    python examples/prepare.py digits OUT_DIR
    python examples/prepare.py breast_cancer OUT_DIR
    python examples/prepare.py digits OUT_DIR --relabel 0.01 --seed 7   # an annotator's fixes
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets

LOADERS = {
    "digits": datasets.load_digits,
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
}


def write(name: str, out: Path) -> None:
    bunch = LOADERS[name](as_frame=True)
    features = bunch.data.copy()
    features.columns = [str(c).replace(" ", "_") for c in features.columns]
    ids = [f"{name}-{i:05d}" for i in range(len(features))]
    features.insert(0, "sample_id", ids)
    names = np.asarray(bunch.target_names).astype(str)
    labels = pd.DataFrame({"sample_id": ids, "label": names[bunch.target.to_numpy()]})
    out.mkdir(parents=True, exist_ok=True)
    features.to_parquet(out / "features.parquet", index=False)
    labels.to_csv(out / "labels.csv", index=False)
    print(f"{name}: {len(features)} samples, {features.shape[1] - 1} features -> {out}")


def relabel(out: Path, fraction: float, seed: int) -> None:
    path = out / "labels.csv"
    labels = pd.read_csv(path, dtype={"label": str})
    rng = np.random.default_rng(seed)
    n = max(1, round(len(labels) * fraction))
    rows = rng.choice(len(labels), size=n, replace=False)
    classes = sorted(labels["label"].unique())
    for r in rows:
        old = labels.at[r, "label"]
        labels.at[r, "label"] = classes[(classes.index(old) + 1) % len(classes)]
    labels.to_csv(path, index=False)
    print(f"relabeled {n} of {len(labels)} samples in {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=sorted(LOADERS))
    ap.add_argument("out", type=Path)
    ap.add_argument("--relabel", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.relabel:
        relabel(args.out, args.relabel, args.seed)
    else:
        write(args.dataset, args.out)


if __name__ == "__main__":
    main()
