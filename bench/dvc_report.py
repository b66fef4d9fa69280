"""The figures of bench/dvc_compare.py, summed up and reported.

Statistics over repeats (median, min, max), the issue's targets checked
against them, the markdown report and the PNG plot, and the writing of the
results (.json, .md, .png).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

import limits as lim
from dvc_plans import MB, TREES

# The targets.
STORE_RATIO_TARGET = {"S1": 1.15, "S2": 1.10, "S3": 2.0, "S4": 1.10, "S4t": 1.10}
FAR_BELOW = 0.5  # "far below DVC's figure": at most half of it
READ_HASH_FRACTION = 0.5
FAR_NOTES = {
    ("S2", "dvc-split"): "informative: DVC's best layout, labels in their own file",
    ("S4", "dvc"): "DVC also stores only the changed/new files; random (incompressible) files leave "
    "no room below it but compression or dedup inside files",
}
PEAK_MEMORY_TARGET_MB = 2000.0


# ---- aggregation -------------------------------------------------------------
def stats(values: list[float]) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1].get("error") if runs else "no run"}
    s: dict = {
        "snapshot_v1_s": stats([r["snapshot_s"][0] for r in ok]),
        "snapshot_next_s": stats([t for r in ok for t in r["snapshot_s"][1:]]),
        "snapshot_total_s": stats([sum(r["snapshot_s"]) for r in ok]),
        "snapshot_peak_rss_mb": stats([max(r["snapshot_rss_mb"]) for r in ok]),
        "v1_MBps": stats([r["bytes"][0] / r["snapshot_s"][0] / MB for r in ok]),
        "next_MBps": stats(
            [b / t / MB for r in ok for b, t in zip(r["bytes"][1:], r["snapshot_s"][1:], strict=True)]
        ),
        "store_bytes": stats([r["store_bytes"] for r in ok]),
        "store_alloc_bytes": stats([r["store_alloc_bytes"] for r in ok]),
        "last_version_bytes": stats([r["bytes"][-1] for r in ok]),
        "alone_bytes": stats([r.get("alone_bytes") for r in ok]),
        "status_s": stats([r["status_s"] for r in ok]),
        "status_note": ok[-1]["status_note"],
        "checkout_s": stats([r["checkout_s"] for r in ok]),
        "checkout_parquet_s": stats([r.get("checkout_parquet_s") for r in ok]),
    }
    if s["alone_bytes"]:
        s["store_ratio"] = s["store_bytes"]["median"] / s["alone_bytes"]["median"]
    return s


def med(s: dict | None, key: str) -> float | None:
    if not s or "error" in s or not s.get(key):
        return None
    return s[key]["median"]


def targets(result: dict) -> list[dict]:
    rows: list[dict] = []
    sc = result["scenarios"]

    def add(target: str, figure: str, ok: bool | None, note: str = "") -> None:
        rows.append({"target": target, "figure": figure, "result": _verdict(ok), "note": note})

    for name, limit in STORE_RATIO_TARGET.items():
        if name not in sc:
            continue
        t = sc[name]["summary"]
        lep = t.get("lepton", {})
        ratio = lep.get("store_ratio")
        add(
            f"{name} store after 10 versions <= {limit}x the last version alone",
            "n/a"
            if ratio is None
            else f"{ratio:.2f}x ({_mb(med(lep, 'store_bytes'))} / {_mb(med(lep, 'alone_bytes'))})",
            None if ratio is None else ratio <= limit,
        )
        for dv in ("dvc", "dvc-split"):
            if dv not in t:
                continue
            a, b = med(lep, "store_bytes"), med(t[dv], "store_bytes")
            frac = None if a is None or b is None else a / b
            add(
                f"{name} store far below {dv}'s (<= {FAR_BELOW:.0%} of it)",
                "n/a" if frac is None else f"{frac:.0%} ({_mb(a)} vs {_mb(b)})",
                None if frac is None else frac <= FAR_BELOW,
                FAR_NOTES.get((name, dv), ""),
            )
    limit = result["limits"]["read_hash_limit_MBps"]
    floor = result["limits"].get("csv_to_parquet")
    floor_note = (
        ""
        if floor is None
        else f"; pyarrow alone, CSV -> Parquet: {floor['MBps']['median']:,.0f} MB/s = "
        f"{floor['MBps']['median'] / limit:.0%} of the limit"
    )
    for name, versions in (
        ("S1", (("v1", "first 1 GiB version"), ("next", "next versions (+5%)"))),
        ("S3", (("next", "next versions (0.1% of rows edited)"),)),  # (its first version: as S1's)
    ):
        if name not in sc:
            continue
        t = sc[name]["summary"]
        lep, dvc = t.get("lepton", {}), t.get("dvc", {})
        for which, what in versions:
            a, b = med(lep, f"snapshot_{which}_s"), med(dvc, f"snapshot_{which}_s")
            add(
                f"{name} snapshot time, {what}: no slower than dvc add",
                "n/a" if a is None or b is None else f"{a:.2f} s vs {b:.2f} s ({a / b:.2f}x)",
                None if a is None or b is None else a <= b,
            )
        for which, what in versions:
            rate = med(lep, f"{which}_MBps")
            add(
                f"{name} snapshot throughput, {what}: >= {READ_HASH_FRACTION:.0%} of read+hash limit",
                "n/a" if rate is None else f"{rate:,.0f} MB/s = {rate / limit:.0%} of {limit:,.0f} MB/s",
                None if rate is None else rate >= READ_HASH_FRACTION * limit,
                "version bytes / wall time; limit: "
                + result["limits"]["read_hash_limit_kind"]
                + (floor_note if which == "v1" else ""),
            )
    for name in (n for n in TREES if n in sc):
        t = sc[name]["summary"]
        a, b = med(t.get("lepton"), "status_s"), med(t.get("dvc"), "status_s")
        add(
            f"{name} no-change status faster than dvc status",
            ("n/a" if a is None else f"{a:.2f} s") + (f" vs {b:.2f} s" if b is not None else ""),
            None if a is None or b is None else a < b,
            "" if a is not None else t.get("lepton", {}).get("status_note", ""),
        )
    mem = result.get("memory_test")
    if mem:
        lep = mem.get("lepton", {})
        peak = lep.get("maxrss_mb")
        add(
            f"Peak memory of a {mem['bytes'] / 1e9:.2f} GB table snapshot "
            f"< {PEAK_MEMORY_TARGET_MB / 1000:.0f} GB",
            "n/a"
            if peak is None
            else f"{peak:,.0f} MB" + (" (killed at the cap)" if lep.get("killed") else ""),
            None
            if peak is None
            else (peak < PEAK_MEMORY_TARGET_MB and not lep.get("killed") and lep.get("rc") == 0),
            "" if mem["bytes"] >= 4.5e9 else "scaled down: the target is for 5 GB",
        )
    return rows


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _mb(b: float | None) -> str:
    return "n/a" if b is None else f"{b / MB:,.1f} MB"


# ---- report --------------------------------------------------------------------
TOOLS = ("lepton", "dvc", "dvc-split")


def _cell(s: dict | None, key: str, fmt: Callable[[float], str]) -> str:
    if not s or "error" in s:
        return "error" if s else "-"
    v = s.get(key)
    if not v:
        return "n/a"
    if v["n"] > 1 and v["min"] != v["max"]:
        return f"{fmt(v['median'])} [{fmt(v['min'])}-{fmt(v['max'])}]"
    return fmt(v["median"])


def markdown(result: dict) -> str:
    p = result["params"]
    lines = [
        "# Lepton vs DVC",
        "",
        f"scale {p['scale']} ({'full size' if p['scale'] == 1 else 'scaled down'}), "
        f"{p['repeats']} repeat(s), "
        f"page cache: {result['cache_note']}.",
        f"Machine: {result['machine']['cpus']} CPUs, {result['machine']['mem_gb']:.0f} GB RAM, "
        f"{result['machine']['platform']}; {result['versions']['dvc']}; "
        f"lepton {result['versions']['lepton']}.",
        f"Start-up of a no-op command: lepton {result['startup_s']['lepton']:.2f} s, "
        f"dvc {result['startup_s']['dvc']:.2f} s (`--help`). Cells: median [min-max] over repeats "
        "(next versions: over versions 2-10 of every repeat).",
        "",
        lim.table(result["limits"]["measured"]),
        "",
        f"Read+hash limit used below: {result['limits']['read_hash_limit_MBps']:,.0f} MB/s "
        f"({result['limits']['read_hash_limit_kind']}).",
        "",
    ]
    floor = result["limits"].get("csv_to_parquet")
    if floor:
        got = floor["MBps"]
        lines += [
            f"Columnar floor: pyarrow alone (every thread) turns the cold {floor['file_mib']} MiB CSV "
            f"into Parquet (zstd -1, no dictionaries) at {got['median']:,.0f} MB/s "
            f"[{got['min']:,.0f}-{got['max']:,.0f}], "
            f"{got['median'] / result['limits']['read_hash_limit_MBps']:.0%} of the read+hash limit: "
            "what storing a first version as columns costs with nothing versioned.",
            "",
        ]

    def s1(x: float) -> str:
        return f"{x:.2f}"

    def mb(x: float) -> str:
        return f"{x / MB:,.1f}"

    def rate(x: float) -> str:
        return f"{x:,.0f}"

    def mem(x: float) -> str:
        return f"{x:,.0f}"

    for name, sc in result["scenarios"].items():
        summ = sc["summary"]
        tools = [t for t in TOOLS if t in summ]
        lines += [
            f"## {name}: {sc['title']}",
            "",
            f"First version: {sc['first_version_bytes'] / MB:,.1f} MB, "
            f"last: {sc['last_version_bytes'] / MB:,.1f} MB.",
            "",
            "| | " + " | ".join(tools) + " |",
            "|---|" + "---:|" * len(tools),
        ]
        metrics = [
            ("snapshot v1 (s)", "snapshot_v1_s", s1),
            ("snapshot per next version (s)", "snapshot_next_s", s1),
            ("snapshot throughput v1 (MB/s)", "v1_MBps", rate),
            ("snapshot throughput next (MB/s)", "next_MBps", rate),
            ("snapshot peak RSS (MB)", "snapshot_peak_rss_mb", mem),
            ("store after 10 versions (MB)", "store_bytes", mb),
            ("last version alone (MB)", "alone_bytes", mb),
            ("no-change status (s)", "status_s", s1),
            ("checkout latest, CSV/files (s)", "checkout_s", s1),
            ("checkout latest, Parquet (s)", "checkout_parquet_s", s1),
        ]
        for label, key, fmt in metrics:
            cells = [_cell(summ.get(t), key, fmt) for t in tools]
            if all(c in ("n/a", "-") for c in cells):
                continue
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        ratios = [summ[t].get("store_ratio") for t in tools]
        lines.append(
            "| store / last version alone | "
            + " | ".join("-" if r is None else f"{r:.2f}x" for r in ratios)
            + " |"
        )
        for t in tools:
            if "error" in summ[t]:
                lines += ["", f"{t} failed: `{summ[t]['error'].splitlines()[0][:300]}`"]
            elif summ[t].get("status_note", "ok") != "ok":
                lines += ["", f"{t} status: {summ[t]['status_note']}"]
        lines.append("")
    if result.get("memory_test"):
        m = result["memory_test"]
        lines += [f"## Memory: snapshot of a {m['bytes'] / 1e9:.2f} GB table", ""]
        for t in ("lepton", "dvc"):
            if t in m:
                r = m[t]
                lines.append(
                    f"- {t}: {r['wall_s']:.1f} s, peak RSS {r['maxrss_mb']:,.0f} MB"
                    + (" (killed at the cap)" if r["killed"] else "")
                    + (f", exit {r['rc']}" if r["rc"] else "")
                )
        lines.append("")
    lines += ["## Targets", "", "| target | figure | result | note |", "|---|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['figure']} | {t['result']} | {t['note']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    panels = [
        ("snapshot, first version (s)", "snapshot_v1_s", 1.0),
        ("snapshot per next version (s)", "snapshot_next_s", 1.0),
        ("store after 10 versions (MB)", "store_bytes", 1 / MB),
        ("no-change status (s)", "status_s", 1.0),
        ("checkout of the latest version (s)", "checkout_s", 1.0),
        ("snapshot peak RSS (MB)", "snapshot_peak_rss_mb", 1.0),
    ]
    colors = {"lepton": "#4c72b0", "dvc": "#dd8452", "dvc-split": "#c44e52"}
    names = list(result["scenarios"])
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    width = 0.27
    for ax, (title, key, mult) in zip(axes.flat, panels, strict=True):
        for i, tool in enumerate(TOOLS):
            for j, name in enumerate(names):
                s = result["scenarios"][name]["summary"].get(tool)
                if s is None:
                    continue
                x = j + (i - 1) * width
                v = s.get(key) if "error" not in s else None
                if not v:
                    ax.text(
                        x,
                        0.02,
                        "n/a",
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        fontsize=7,
                        rotation=90,
                    )
                    continue
                y = v["median"] * mult
                err = [[y - v["min"] * mult], [v["max"] * mult - y]]
                ax.bar(x, y, width, color=colors[tool], yerr=err, capsize=2)
        ax.set_xticks(range(len(names)), names)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[t]) for t in TOOLS]
    fig.legend(
        handles, ["lepton", "dvc", "dvc-split (S2: labels in their own file)"], loc="upper right", ncol=3
    )
    p = result["params"]
    fig.suptitle(
        f"Lepton vs DVC {result['versions']['dvc']}, scale {p['scale']}, {p['repeats']} repeat(s), "
        f"{result['machine']['cpus']} CPUs, cache {result['cache_mode']} (median, min-max bars; log scale)",
        fontsize=10,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)


def write_report(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(result, indent=2))
    md = markdown(result)
    Path(f"{out}.md").write_text(md)
    plot(result, Path(f"{out}.png"))
    print()
    print(md)
    print(f"wrote {out}.json, {out}.md, {out}.png")
