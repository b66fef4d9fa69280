"""`lepton watch`: snapshot a source whenever new data has landed and settled
(lepton.watch), announce each new version, and optionally retrain."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from lepton.cli.context import repo_from_cwd
from lepton.cli.data import announce
from lepton.cli.output import out
from lepton.errors import ConfigError

RUNNERS = "lepton.runners"  # entry points: name -> callable(config, repo, dataset_ref) -> dict


def watch(
    name: Annotated[str, typer.Argument(help="Dataset the source is snapshotted into.")],
    source: Annotated[str, typer.Argument(help="Folder or table file; local or s3://bucket/prefix.")],
    key: Annotated[str | None, typer.Option("--key", help="Key column of a table.")] = None,
    quiet: Annotated[float, typer.Option(help="Snapshot once no file changed for this many seconds.")] = 60.0,
    max_wait: Annotated[
        float, typer.Option(help="...or once changes have kept arriving this long (seconds).")
    ] = 600.0,
    every: Annotated[float, typer.Option(help="Seconds between looks at the source.")] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="Look once and exit (for cron or a scheduler).")
    ] = False,
    retrain: Annotated[
        str | None,
        typer.Option(
            help="Project config: after each new version, start a retraining run pinned to it, "
            "here, unless a Prefect server took the event (its data-arrival trigger starts the run)."
        ),
    ] = None,
) -> None:
    """Watch SOURCE; snapshot it into NAME when it changed and settled."""
    from lepton.watch import WatchSpec, poll

    spec = WatchSpec(name=name, source=source, key=key, quiet_s=quiet, max_wait_s=max_wait)
    runner = _runner() if retrain else None
    last = ""
    while True:
        with repo_from_cwd() as repo:
            decision = poll(repo, spec)
            root = repo.root
        if decision.reason != last:
            out.print(decision.reason)
            last = decision.reason
        snap = decision.snapshot
        if snap is not None and snap.created:
            delivered = announce(snap, source)
            if runner is not None and not delivered:
                out.print(f"retraining on {snap.version.ref} ({retrain})")
                result = runner(retrain, str(root or "."), snap.version.ref)
                out.print(f"run {result.get('run')}: {result.get('reason')}")
        if once:
            return
        time.sleep(every)


def _runner() -> Any:
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=RUNNERS) if ep.name == "retrain"]
    if not found:
        raise ConfigError(
            f"--retrain needs a 'retrain' runner in entry point group {RUNNERS} (flows/ installed)"
        )
    return found[0].load()
