"""Rich renderings of registry entities, manifests, diffs and lineage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.tree import Tree

from lepton.cli.output import out, short

# The classes below are imported where they are needed (isinstance), not at
# the CLI's start-up: lepton.manifest pulls in pydantic, lepton.data.diff pandas.
if TYPE_CHECKING:
    from lepton.data.diff import LabelsDiff, TableDiff, TreeDiff
    from lepton.manifest import Manifest
    from lepton.registry.entities import Alias, ArtifactVersion, Lineage, LineageNode
    from lepton.verify import VerifyReport


def summary(m: Manifest) -> str:
    from lepton.manifest import Labelset, TableDataset, TreeDataset

    if isinstance(m, TableDataset):
        key = f", key {m.key}" if m.key else ""
        return f"table: {m.rows:,} rows x {len(m.columns)} columns{key}, {len(m.chunks)} chunks"
    if isinstance(m, TreeDataset):
        return f"tree: {len(m.files):,} files, {_size(m.size)}"
    if isinstance(m, Labelset):
        return f"labels: {m.rows:,} samples, {len(m.classes)} classes in '{m.label}'"
    return m.kind


def brief(m: Manifest) -> str:
    """A few words on a version's content, for one line of a log."""
    from lepton.manifest import Labelset, TableDataset, TreeDataset

    if isinstance(m, TableDataset):
        return f"{m.rows:,} rows x {len(m.columns)} cols"
    if isinstance(m, TreeDataset):
        return f"{len(m.files):,} files, {_size(m.size)}"
    if isinstance(m, Labelset):
        return f"{m.rows:,} samples, {len(m.classes)} classes"
    return m.kind


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def log_table(name: str, versions: list[tuple[ArtifactVersion, str]], aliases: list[Alias]) -> None:
    by_version: dict[int, list[str]] = {}
    for a in aliases:
        by_version.setdefault(a.version, []).append(a.alias)
    t = Table(title=f"{name}: {len(versions)} version(s)")
    for col in ("version", "id", "created", "creator", "aliases", "content", "message"):
        t.add_column(col)
    for v, content in reversed(versions):
        t.add_row(
            f"v{v.version}",
            short(v.id),
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            v.creator or "",
            ", ".join(sorted(by_version.get(v.version, []))),
            content,
            v.message or "",
        )
    out.print(t)


def show(art: ArtifactVersion, m: Manifest, aliases: list[Alias]) -> None:
    from lepton.manifest import Labelset, TableDataset

    out.print(f"[bold]{art.ref}[/bold]  {art.kind}  {art.id}")
    out.print(f"created {art.created_at:%Y-%m-%d %H:%M:%S %Z} by {art.creator or '?'}")
    if art.message:
        out.print(f"message: {art.message}")
    if art.meta.get("source"):
        out.print(f"source:  {art.meta['source']}")
    here = sorted(a.alias for a in aliases if a.version == art.version)
    if here:
        out.print(f"aliases: {', '.join(here)}")
    out.print(summary(m))
    for p in m.parents:
        out.print(f"parent ({p.role}): {p.id}")
    if isinstance(m, TableDataset | Labelset):
        t = Table("column", "type")
        for c in m.columns:
            t.add_row(c.name + (" (key)" if c.name == getattr(m, "key", None) else ""), c.type)
        out.print(t)
    if isinstance(m, Labelset):
        t = Table("class", "samples")
        for k, n in m.classes.items():
            t.add_row(k, f"{n:,}")
        out.print(t)


def diff(d: TableDiff | TreeDiff | LabelsDiff, ref_a: str, ref_b: str) -> None:
    from lepton.data.diff import LabelsDiff, TreeDiff

    out.print(f"[bold]{ref_a}[/bold] ({short(d.a)}) -> [bold]{ref_b}[/bold] ({short(d.b)})")
    if isinstance(d, TreeDiff):
        out.print(f"files: {d.files_a:,} -> {d.files_b:,}; unchanged {d.unchanged:,}")
        for label, paths, style in (
            ("added", d.added, "green"),
            ("removed", d.removed, "red"),
            ("changed", d.changed, "yellow"),
        ):
            out.print(f"[{style}]{label}: {len(paths):,}[/{style}]")
            for p in paths[:20]:
                out.print(f"  {p}")
            if len(paths) > 20:
                out.print(f"  ... and {len(paths) - 20:,} more")
        return
    if isinstance(d, LabelsDiff):
        if d.dataset_a != d.dataset_b:
            out.print(f"dataset: {short(d.dataset_a)} -> {short(d.dataset_b)}")
        out.print(
            f"[yellow]relabeled: {d.changed:,}[/yellow]  [green]added: {d.added:,}[/green]  "
            f"[red]removed: {d.removed:,}[/red]"
        )
        for move, n in list(d.transitions.items())[:20]:
            out.print(f"  {move}: {n:,}")
        if d.samples["changed"]:
            t = Table("sample", "from", "to", title="changed labels (sample)")
            for s in d.samples["changed"]:
                t.add_row(str(s["key"]), str(s["from"]), str(s["to"]))
            out.print(t)
        return
    out.print(
        f"rows: {d.rows_a:,} -> {d.rows_b:,}; [green]added {d.added:,}[/green], "
        f"[red]removed {d.removed:,}[/red], [yellow]changed {d.changed:,}[/yellow]"
        + (f" (by key '{d.key}')" if d.key else " (by row content: no common key)")
    )
    sc = d.schema_change
    if not sc.empty:
        if sc.added:
            out.print(f"columns added: {', '.join(sc.added)}")
        if sc.removed:
            out.print(f"columns removed: {', '.join(sc.removed)}")
        for col, old, new in sc.retyped:
            out.print(f"column {col}: {old} -> {new}")
    for s in d.samples.get("changed", []):
        cols = "; ".join(f"{c}: {v['from']!r} -> {v['to']!r}" for c, v in s["columns"].items())
        out.print(f"  [yellow]~[/yellow] {d.key}={s['key']!r}: {cols}")
    for s in d.samples.get("added", []):
        out.print(f"  [green]+[/green] {s}")
    for s in d.samples.get("removed", []):
        out.print(f"  [red]-[/red] {s}")


def _node_label(n: LineageNode | None, id: str, role: str | None = None, root_run: str | None = None) -> str:
    name = f"{n.name}@v{n.version}" if n and n.name else "(unregistered)"
    kind = n.kind if n and n.kind else "?"
    via = f" [dim]as {role}[/dim]" if role else ""
    made = ""
    if n and n.run_id and root_run and n.run_id != root_run:
        made = f" [cyan](reused from run {short(n.run_id)})[/cyan]"
    return f"[bold]{kind}[/bold] {name} [dim]{short(id)}[/dim]{via}{made}"


def lineage(lin: Lineage) -> None:
    nodes = {n.id: n for n in lin.nodes}
    upstream = lin.direction == "upstream"
    nexts: dict[str, list[tuple[str, str]]] = {}
    for e in lin.edges:
        src, dst = (e.child_id, e.parent_id) if upstream else (e.parent_id, e.child_id)
        nexts.setdefault(src, []).append((dst, e.role))
    root = nodes.get(lin.root)
    run = root.run_id if root else None
    tree = Tree(_node_label(root, lin.root))
    expanded: set[str] = {lin.root}

    def grow(branch: Tree, id: str) -> None:
        for nxt, role in sorted(nexts.get(id, [])):
            if nxt not in nodes:
                continue
            if nxt in expanded and nexts.get(nxt):
                branch.add(_node_label(nodes.get(nxt), nxt, role, run) + " [dim](see above)[/dim]")
                continue
            expanded.add(nxt)
            grow(branch.add(_node_label(nodes.get(nxt), nxt, role, run)), nxt)

    grow(tree, lin.root)
    out.print(f"{lin.direction} of {short(lin.root)}:")
    out.print(tree)


def impact(lin: Lineage) -> None:
    nodes = [n for n in lin.nodes if n.depth > 0]
    root = next(n for n in lin.nodes if n.depth == 0)
    out.print(f"impact of {_node_label(root, root.id)}: {len(nodes)} artifact(s) downstream")
    t = Table("kind", "artifact", "id", "distance")
    for n in sorted(nodes, key=lambda n: (n.kind or "", n.name or "", n.version or 0)):
        t.add_row(n.kind or "?", f"{n.name}@v{n.version}" if n.name else "-", short(n.id), str(n.depth))
    out.print(t)


def verify(report: VerifyReport) -> None:
    if report.ok:
        out.print(f"[green]ok[/green]: {report.checked:,} object(s) verified")
        return
    out.print(f"[red]{len(report.findings)} problem(s)[/red] in {report.checked:,} object(s):")
    for f in report.findings:
        extra = f" (content hashes to {f.actual}; moved to {f.quarantined_to})" if f.actual else ""
        out.print(f"  {f.problem}: {f.key}{extra}")


def lineage_dot(lin: Lineage) -> str:
    """Graphviz DOT text of a lineage graph (render with `dot -Tpng`)."""
    lines = ["digraph lineage {", "  rankdir=LR; node [shape=box, fontname=Helvetica];"]
    for n in lin.nodes:
        name = f"{n.name}@v{n.version}" if n.name else "?"
        lines.append(f'  "{n.id}" [label="{n.kind or "?"}\\n{name}\\n{short(n.id)}"];')
    for e in lin.edges:
        lines.append(f'  "{e.parent_id}" -> "{e.child_id}" [label="{e.role}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
