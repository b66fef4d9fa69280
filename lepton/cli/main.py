"""The `lepton` command. Errors print one line `error: ...` and exit 1;
usage errors exit 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lepton.cli import pipeline, render
from lepton.cli.context import repo_from_cwd
from lepton.cli.data import data_app, labels_app
from lepton.cli.maintenance import gc
from lepton.cli.models import models_app, runs_app
from lepton.cli.output import err, out, print_json, progress
from lepton.cli.watch import watch
from lepton.data.headstart import HeadStart
from lepton.errors import LeptonError

# The command modules import the registry, the store and the table readers
# (pandas, pyarrow, SQLAlchemy) inside the commands that use them: start-up
# pays only for typer and rich (a test checks what `import lepton.cli.main` loads).

app = typer.Typer(
    name="lepton",
    help="Version control for AI models: data, labels, components, models and their lineage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
registry_app = typer.Typer(help="Registry maintenance.", no_args_is_help=True)
alias_app = typer.Typer(help="Movable names for versions (production, staging...).", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(labels_app, name="labels")
app.add_typer(registry_app, name="registry")
app.add_typer(alias_app, name="alias")
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")
app.command("run")(pipeline.run)
app.command("replay")(pipeline.replay)
app.command("deploy")(pipeline.deploy)
app.command("rollback")(pipeline.rollback_cmd)
app.command("gc")(gc)
app.command("watch")(watch)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.command()
def init(
    store: Annotated[str | None, typer.Option(help="Store URL: a folder or s3://bucket/prefix.")] = None,
    registry: Annotated[
        str | None, typer.Option(help="Registry URL: sqlite:///PATH or postgresql://...")
    ] = None,
) -> None:
    """Create lepton.toml here (default: store and SQLite registry under .lepton/)."""
    from lepton.repo import init_repo

    with init_repo(Path.cwd(), store, registry) as repo:
        out.print(f"initialised: store {repo.settings.store.url}, registry {repo.settings.registry.url}")


@app.command()
def show(ref: str, as_json: Json = False) -> None:
    """Describe one artifact version."""
    with repo_from_cwd() as repo:
        art, manifest = repo.show(ref)
        aliases = repo.registry.aliases(art.name)
        if as_json:
            print_json({"artifact": art, "manifest": manifest, "aliases": aliases})
        else:
            render.show(art, manifest, aliases)


@app.command()
def lineage(
    ref: str,
    upstream: Annotated[bool, typer.Option("--upstream", help="What this was made from (default).")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="What was made from this.")] = False,
    depth: Annotated[int | None, typer.Option("--depth", min=1, help="Levels to follow.")] = None,
    dot: Annotated[Path | None, typer.Option("--dot", help="Also write a Graphviz DOT file.")] = None,
    as_json: Json = False,
) -> None:
    """The lineage graph of an artifact, from the registry."""
    if upstream and downstream:
        err.print("usage error: choose one of --upstream and --downstream")
        raise typer.Exit(2)
    with repo_from_cwd() as repo:
        lin = repo.lineage(ref, "downstream" if downstream else "upstream", depth)
    if dot:
        dot.write_text(render.lineage_dot(lin))
    if as_json:
        print_json(lin)
    else:
        render.lineage(lin)


@app.command()
def impact(ref: str, as_json: Json = False) -> None:
    """Every labelset, model, evaluation and deployment downstream of REF."""
    with repo_from_cwd() as repo:
        lin = repo.impact(ref)
    if as_json:
        print_json(lin)
    else:
        render.impact(lin)


@app.command()
def verify(ref: Annotated[str | None, typer.Argument()] = None, as_json: Json = False) -> None:
    """Re-hash objects (all, or those of REF); report and quarantine corrupt ones."""
    with repo_from_cwd() as repo, progress("verify", unit="objects") as advance:
        report = repo.verify(ref, progress=advance)
    if as_json:
        print_json(report)
    else:
        render.verify(report)
    if not report.ok:
        raise typer.Exit(1)


@registry_app.command("rebuild")
def registry_rebuild() -> None:
    """Rebuild the registry from the store's log (versions, lineage, aliases, runs)."""
    with repo_from_cwd() as repo:
        counts = repo.rebuild_registry()
    out.print(
        f"rebuilt: {counts['artifacts']} version(s), {counts['alias_moves']} alias move(s), "
        f"{counts['runs']} run(s)"
    )


@alias_app.command("set")
def alias_set(ref: str, alias: str, reason: Annotated[str | None, typer.Option()] = None) -> None:
    """Point ALIAS of REF's name at REF (history kept)."""
    with repo_from_cwd() as repo:
        move = repo.set_alias(ref, alias, reason)
    prev = f" (was v{move.previous_version})" if move.previous_version else ""
    out.print(f"{move.name}@{move.alias} -> v{move.version}{prev}")


@alias_app.command("history")
def alias_history(
    name: str, alias: Annotated[str | None, typer.Argument()] = None, as_json: Json = False
) -> None:
    """Every move of NAME's aliases."""
    with repo_from_cwd() as repo:
        moves = repo.registry.alias_history(name, alias)
    if as_json:
        print_json(moves)
        return
    for m in moves:
        prev = f"v{m.previous_version}" if m.previous_version else "-"
        when = f"{m.moved_at:%Y-%m-%d %H:%M:%S}"
        out.print(f"{when} {m.name}@{m.alias}: {prev} -> v{m.version} {m.reason or ''}")


def main(argv: list[str] | None = None, head: HeadStart | None = None) -> int:
    """Runs a command; returns the exit code. Usage errors are handled by
    typer (exit 2); Lepton's errors become one line (exit 1). ``head``: the
    snapshot source's head start, begun by the console script
    (lepton.cli.launch), for the command's context."""
    try:
        app(args=argv, prog_name="lepton", obj=head)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except LeptonError as e:
        message = " ".join(str(e).split())
        sys.stderr.write(f"error: {message}\n")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    sys.exit(main())
