"""`lepton gc`: remove store objects that no version references."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from lepton.cli.context import repo_from_cwd
from lepton.cli.output import err, out, print_json

if TYPE_CHECKING:
    from lepton.gc import GcReport, Phase

# lepton.gc.DEFAULT_GRACE and MIN_GRACE, written out: importing lepton.gc for
# them would load the registry at every start of the CLI (tests check they agree).
DEFAULT_GRACE = 3600.0
MIN_GRACE = 900.0
PHASES = {"list": "listing objects", "read": "reading manifests", "remove": "removing"}
SHOWN = 20


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; remove nothing.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            metavar="SECONDS",
            help="Keep unreferenced objects younger than this: a snapshot in progress writes "
            "its objects before it registers them, and reuses recent ones as they are. Must "
            f"exceed your longest snapshot plus 10 minutes; less than {MIN_GRACE:g} is refused "
            "(see --unsafe-grace).",
        ),
    ] = DEFAULT_GRACE,
    unsafe_grace: Annotated[
        bool,
        typer.Option(
            "--unsafe-grace",
            help=f"UNSAFE: accept a --grace under {MIN_GRACE:g} s. gc can then remove objects a "
            "snapshot in progress has just reused, leaving its version without them. Only where "
            "no other process writes to the store while gc runs.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Collect even if a manifest that must be kept cannot be read "
            "(the objects only it names are then removed).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Remove objects that no artifact version, alias or run references, once
    older than the grace period; also stale temp files and unfinished uploads."""
    from lepton.gc import check_grace, collect

    check_grace(grace, unsafe=unsafe_grace)
    with repo_from_cwd() as repo, _phases() as advance:
        report = collect(repo, dry_run=dry_run, grace_seconds=grace, force=force, progress=advance)
    if as_json:
        print_json(report)
    else:
        _render(report)


@contextlib.contextmanager
def _phases() -> Iterator[Phase]:
    """One counter per phase on stderr (hidden when not a terminal)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,.0f}")]
    with Progress(
        *columns, TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal
    ) as bar:
        tasks: dict[str, int] = {}

        def advance(phase: str, n: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(PHASES.get(phase, phase), total=None)
            bar.advance(tasks[phase], n)

        yield advance


def _render(r: GcReport) -> None:
    for key, why in sorted(r.unreadable.items()):
        err.print(f"[red]warning:[/red] {key} cannot be read ({why}); collected anyway (--force)")
    verb = "would remove" if r.dry_run else "removed"
    out.print(f"{verb} {len(r.removed):,} object(s), {_size(r.freed_bytes)}")
    if r.dry_run:
        for key in r.removed[:SHOWN]:
            out.print(f"  {key}")
        if len(r.removed) > SHOWN:
            out.print(f"  ... and {len(r.removed) - SHOWN:,} more (--json lists them all)")
    out.print(
        f"scanned {r.scanned:,}: {r.reachable:,} referenced, {r.kept_young:,} unreferenced but "
        f"modified after {r.cutoff:%Y-%m-%d %H:%M:%S} UTC (kept)"
    )
    if r.put_back:
        out.print(
            f"{'would put' if r.dry_run else 'put'} back {len(r.put_back):,} referenced object(s) "
            "an interrupted gc had set aside"
        )
    if r.live_runs:
        out.print(f"runs in progress kept what they wrote: {', '.join(r.live_runs)}")
    if r.removed_tmp or r.aborted_uploads:
        out.print(
            f"{verb} {r.removed_tmp:,} stale temp file(s); "
            f"{'would abort' if r.dry_run else 'aborted'} {r.aborted_uploads:,} unfinished upload(s)"
        )
    if r.dry_run:
        out.print("dry run: nothing was removed")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover
