"""`lepton data ...` and `lepton labels ...`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lepton.cli import render
from lepton.cli.context import repo_from_cwd
from lepton.cli.output import out, print_json, progress, short
from lepton.data.headstart import head_start  # light: the file is read while the rest imports

if TYPE_CHECKING:
    from lepton.data.trees import Status
    from lepton.repo import Repo, Snapshot

data_app = typer.Typer(help="Version datasets: tables and file trees.", no_args_is_help=True)
labels_app = typer.Typer(help="Version labels, keyed by sample id.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Message = Annotated[str | None, typer.Option("-m", "--message", help="Note stored with the version.")]


def _report(snap: Snapshot) -> None:
    v = snap.version
    if snap.created:
        out.print(f"[green]{v.ref}[/green] {short(v.id)}  {render.summary(snap.manifest)}")
    else:
        out.print(f"unchanged: {v.ref} {short(v.id)} already holds this content")


def _log(repo: Repo, name: str, as_json: bool) -> None:
    versions = repo.log(name)
    if as_json:
        print_json(versions)
        return
    rows = [(v, render.brief(repo.load(v.id))) for v in versions]
    render.log_table(name, rows, repo.registry.aliases(name))


def _diff(ref_a: str, ref_b: str, as_json: bool) -> None:
    with repo_from_cwd() as repo:
        d = repo.diff(ref_a, ref_b)
        if as_json:
            print_json(d)
        else:
            render.diff(d, ref_a, ref_b)


@data_app.command("snapshot")
def data_snapshot(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    source: Annotated[str, typer.Argument(help="File (CSV, TSV, Parquet, JSONL) or folder; local or s3://.")],
    key: Annotated[str | None, typer.Option("--key", help="Key column of a table.")] = None,
    message: Message = None,
) -> None:
    """Snapshot a table or a file tree as a new dataset version."""
    with head_start(source, ctx.obj) as head, repo_from_cwd() as repo:
        with progress(f"snapshot {name}", unit="rows") as advance:
            snap = repo.snapshot_data(name, source, key=key, message=message, progress=advance, head=head)
    _report(snap)
    announce(snap, source)


def announce(snap: Snapshot, source: str) -> list[str]:
    """Tell the installed event emitters about a new version (lepton.events)."""
    if not snap.created:
        return []
    from lepton import events

    v = snap.version
    delivered = events.emit(events.snapshotted(v.kind, v.ref, v.id, v.name, source, snap.created))
    if delivered:
        out.print(f"announced {v.ref} to: {', '.join(delivered)}")
    return delivered


@data_app.command("log")
def data_log(name: str, as_json: Json = False) -> None:
    """History of a dataset."""
    with repo_from_cwd() as repo:
        _log(repo, name, as_json)


@data_app.command("diff")
def data_diff(ref_a: str, ref_b: str, as_json: Json = False) -> None:
    """Rows (or files) added, removed and changed between two versions."""
    _diff(ref_a, ref_b, as_json)


@data_app.command("status")
def data_status(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    source: Annotated[str, typer.Argument(help="Folder or table file to compare; local or s3://.")],
    as_json: Json = False,
) -> None:
    """What changed in SOURCE since the latest version of NAME (files whose
    size, times and inode are as last seen are not read)."""
    _status(name, source, "dataset", as_json)


STATUS_SHOWN = 50


def _status(name: str, source: str, kind: str, as_json: bool) -> None:
    with repo_from_cwd() as repo:
        st = repo.status(name, source, kind=kind)
    if as_json:
        print_json(st)
    else:
        _print_status(st)


def _print_status(st: Status) -> None:
    base = st.base or f"{st.name} (no version yet)"
    if st.layout == "table":
        what = {True: "[yellow]changed[/yellow]", False: "unchanged", None: "unknown"}[st.changed]
        out.print(f"{st.source} vs {base}: {what}")
        if st.changed is None:
            out.print("  the version records no hash of its source file; snapshot again to compare")
        return
    counts = (
        f"{len(st.added)} added, {len(st.removed)} removed, {len(st.modified)} modified, "
        f"{st.unchanged} unchanged; {st.read} file(s) read"
    )
    out.print(f"{st.source} vs {base}: {counts}")
    for label, color, paths in (
        ("added", "green", st.added),
        ("removed", "red", st.removed),
        ("modified", "yellow", st.modified),
    ):
        for p in paths[:STATUS_SHOWN]:
            out.print(f"  [{color}]{label}:[/{color}] {escape(p)}")
        if len(paths) > STATUS_SHOWN:
            out.print(f"  ... and {len(paths) - STATUS_SHOWN} more {label} (--json lists all)")


@data_app.command("checkout")
def data_checkout(
    ref: str,
    dest: Annotated[Path, typer.Argument(help="Folder (trees) or file/folder (tables).")],
) -> None:
    """Write a dataset version to DEST, every object verified."""
    with repo_from_cwd() as repo, progress(f"checkout {ref}", unit="bytes") as advance:
        path = repo.checkout(ref, dest, progress=advance)
    out.print(f"checked out {ref} to {path}")


@labels_app.command("snapshot")
def labels_snapshot(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Labelset name.")],
    source: Annotated[str, typer.Argument(help="Label table (CSV, TSV, Parquet, JSONL); local or s3://.")],
    dataset: Annotated[str, typer.Option("--dataset", help="Ref of the dataset these labels describe.")],
    key: Annotated[str, typer.Option("--key", help="Sample id column.")],
    label: Annotated[str, typer.Option("--label", help="Label column.")],
    message: Message = None,
) -> None:
    """Snapshot labels for a dataset version; every key must be a sample of it."""
    with head_start(source, ctx.obj) as head, repo_from_cwd() as repo:
        with progress(f"snapshot {name}") as advance:
            snap = repo.snapshot_labels(
                name,
                source,
                dataset=dataset,
                key=key,
                label=label,
                message=message,
                progress=advance,
                head=head,
            )
    _report(snap)
    announce(snap, source)


@labels_app.command("log")
def labels_log(name: str, as_json: Json = False) -> None:
    """History of a labelset."""
    with repo_from_cwd() as repo:
        _log(repo, name, as_json)


@labels_app.command("diff")
def labels_diff(ref_a: str, ref_b: str, as_json: Json = False) -> None:
    """Samples whose label changed (from what to what), added and removed."""
    _diff(ref_a, ref_b, as_json)


@labels_app.command("status")
def labels_status(
    name: Annotated[str, typer.Argument(help="Labelset name.")],
    source: Annotated[str, typer.Argument(help="Label table file to compare; local or s3://.")],
    as_json: Json = False,
) -> None:
    """Whether SOURCE changed since the latest version of labelset NAME (an
    unchanged file, by size, times and inode, is not read)."""
    _status(name, source, "labelset", as_json)
