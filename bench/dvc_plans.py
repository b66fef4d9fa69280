"""The scenarios of bench/dvc_compare.py and the data they version.

What each scenario does, tool-independent (Plan, plans: sizes and the edit
made per version), and the files one tool tracks in a scenario, generated
and edited in place with bench/datagen.py (Data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import datagen as gen
from cmdtiming import sizes

SCENARIOS = ("S1", "S2", "S3", "S4", "S4t")
TREES = ("S4", "S4t")
VERSIONS = 10
MB = 1e6


@dataclass
class Plan:
    """What one scenario does, tool-independent: sizes and the edit per version."""

    name: str
    title: str
    table_rows: int = 0
    tree_files: int = 0
    text: bool = False  # trees: annotation text files, edited in part (datagen)


def plans(scale: float) -> dict[str, Plan]:
    rows = gen.rows_for_bytes(gen.GiB * scale)
    files = max(200, round(20_000 * scale))
    return {
        "S1": Plan("S1", "table append (+5% rows per version)", table_rows=rows),
        "S2": Plan("S2", "relabel (1% of labels per version)", table_rows=rows),
        "S3": Plan("S3", "sparse edits (0.1% of rows per version)", table_rows=rows),
        "S4": Plan("S4", "file tree (1% changed + 1% added per version)", tree_files=files),
        "S4t": Plan("S4t", "text file tree (1% edited in part + 1% added)", tree_files=files, text=True),
    }


@dataclass
class Data:
    """The files one tool tracks in a scenario, made and edited in ``folder``."""

    plan: Plan
    folder: Path
    variant: str  # "full" (one CSV with labels), "split" (features.csv + labels.csv), "tree"
    seed: int = 0
    files: list[str] = field(default_factory=list)

    def make(self, version: int) -> None:
        p, f, s = self.plan, self.folder, self.seed
        if version == 1:
            if self.variant == "full":
                gen.write_table(f / "table.csv", p.table_rows, gen.FULL, s)
                self.files = ["table.csv"]
            elif self.variant == "split":
                gen.write_table(f / "features.csv", p.table_rows, gen.FEATURES_ONLY, s)
                gen.write_table(f / "labels.csv", p.table_rows, gen.LABELS_ONLY, s)
                self.files = ["features.csv", "labels.csv"]
            else:
                gen.write_tree(f / "tree", p.tree_files, s, p.text)
                self.files = ["tree"]
            return
        if p.name == "S1":
            gen.append_rows(f / "table.csv", max(1, round(p.table_rows * 0.05)), version, gen.FULL, s)
        elif p.name == "S2":
            if self.variant == "full":
                gen.relabel(f / "table.csv", 0.01, version, gen.FULL, s)
            else:
                gen.relabel(f / "labels.csv", 0.01, version, gen.LABELS_ONLY, s)
        elif p.name == "S3":
            gen.edit_rows(f / "table.csv", 0.001, version, gen.FULL, s)
        else:
            gen.change_tree(f / "tree", p.tree_files, version, 0.01, s, p.text)

    def changed(self, version: int) -> list[str]:
        """The files a version changes (what DVC is told to add)."""
        if version > 1 and self.variant == "split":
            return ["labels.csv"]
        return self.files

    def nbytes(self) -> int:
        return sum(sizes(self.folder / n)[0] for n in self.files)
