"""Write scikit-learn's bundled wine data set (178 samples, shipped inside the
scikit-learn package: no download) as a feature table and a label table.

    python examples/make_wine.py OUT_DIR [--relabel FRACTION --seed N]

--relabel flips that fraction of labels (at least one) to another class,
as an annotator's correction would, and rewrites labels.csv only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--relabel", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    labels_path = args.out / "labels.csv"
    if args.relabel:
        labels = pd.read_csv(labels_path)
        rng = np.random.default_rng(args.seed)
        n = max(1, round(len(labels) * args.relabel))
        rows = rng.choice(len(labels), size=n, replace=False)
        classes = sorted(labels["cultivar"].unique())
        for r in rows:
            old = labels.at[r, "cultivar"]
            labels.at[r, "cultivar"] = classes[(classes.index(old) + 1) % len(classes)]
        labels.to_csv(labels_path, index=False)
        print(f"relabeled {n} of {len(labels)} samples in {labels_path}")
        return
    wine = load_wine(as_frame=True)
    features = wine.data.copy()
    features.insert(0, "sample_id", [f"wine-{i:03d}" for i in range(len(features))])
    features.to_csv(args.out / "features.csv", index=False)
    names = np.array(wine.target_names)
    labels = pd.DataFrame(
        {"sample_id": features["sample_id"], "cultivar": names[wine.target.to_numpy()]}
    )
    labels.to_csv(labels_path, index=False)
    print(f"wrote {len(features)} samples to {args.out}/features.csv and labels.csv")


if __name__ == "__main__":
    main()
