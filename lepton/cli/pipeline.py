"""`lepton run | replay | deploy | rollback`: the commands that run the
pipeline. Prefect is imported lazily, inside the commands that need it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lepton.cli.context import repo_from_cwd
from lepton.cli.output import out, print_json, short

Config = Annotated[Path, typer.Option("--config", "-c", help="Project config (TOML).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def prefect_defaults() -> None:
    """Quiet, patient defaults for Prefect's embedded server (unless set)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def run(
    config: Config = Path("project.toml"),
    reuse: Annotated[bool, typer.Option("--reuse/--no-reuse", help="Reuse unchanged steps.")] = True,
    as_json: Json = False,
) -> None:
    """Run the retraining flow: snapshot-data -> version-components -> train
    -> evaluate -> select -> deploy."""
    from lepton.project import load_project

    repo_from_cwd().close()  # a clear error before Prefect starts if there is no repo
    load_project(config)  # and one for a bad config
    prefect_defaults()
    from flows.retrain import RetrainParams, retrain

    summary = retrain(RetrainParams(config=str(config.resolve()), repo=str(Path.cwd()), reuse=reuse))
    if as_json:
        print_json(summary)
        return
    for m in summary["models"]:
        reused = [s["name"] for s in m["stages"] if s["reused"]]
        note = f" (reused: {', '.join(reused)})" if reused else ""
        out.print(f"trained {m['candidate']}: {short(m['model'])}{note}")
    out.print(f"[bold]chosen:[/bold] {summary['winner'] or 'none'}")
    out.print(f"[bold]why:[/bold] {summary['reason']}")
    dep = summary["deployed"]
    if dep.get("deployed"):
        where = f"{dep['target']} at {dep['location']} ({dep['alias']})"
        out.print(f"[bold]deployed:[/bold] {dep['model_ref']} to {where}")
    else:
        out.print(f"[bold]deployed:[/bold] nothing ({dep.get('why')})")
    out.print(
        f"run {short(summary['run'])}, record {short(summary['record'])}, flow run {summary['flow_run_id']}"
    )


def replay(run_ref: Annotated[str, typer.Argument(metavar="RUN_ID")], as_json: Json = False) -> None:
    """Re-run a recorded run with every input pinned; report per artifact."""
    from lepton.pipeline.replay import find_record

    with repo_from_cwd() as repo:
        find_record(repo, run_ref)  # an unknown run is one line, before any flow starts
    prefect_defaults()
    from flows.replay import ReplayParams, replay_run

    report = replay_run(ReplayParams(run=run_ref, repo=str(Path.cwd())))
    if as_json:
        print_json(report)
    else:
        for item in report["items"]:
            colour = {"identical": "green", "differs": "red"}.get(item["status"], "yellow")
            where = f"  ({', '.join(item['where'])})" if item["where"] else ""
            out.print(
                f"[{colour}]{item['status']:9}[/{colour}] {item['artifact']}: "
                f"{short(item['original'])} -> {short(item['replayed'])}{where}"
            )
        verdict = "every artifact identical" if report["identical"] else "artifacts differ"
        out.print(f"[bold]{verdict}[/bold]")
    if not report["identical"]:
        raise typer.Exit(1)


def deploy(
    ref: str,
    target: Annotated[str, typer.Option("--target", help="Target name from the project config.")],
    alias: Annotated[str, typer.Option("--alias")] = "production",
    config: Config = Path("project.toml"),
) -> None:
    """Deploy a model version to a target (after the compatibility check)."""
    from lepton.pipeline.context import Context
    from lepton.pipeline.release import deploy_model
    from lepton.project import load_project

    project, root = load_project(config)
    with repo_from_cwd() as repo:
        art = repo.resolve(ref)
        result = deploy_model(Context(repo, project, root), art.id, target, alias, reason=f"deploy {art.ref}")
    out.print(f"deployed {result['model_ref']} to {target} at {result['location']} ({alias})")


def rollback_cmd(
    name: Annotated[str, typer.Argument(help="Model name (the project name).")],
    alias: Annotated[str, typer.Option("--alias")] = "production",
    target: Annotated[str | None, typer.Option("--target")] = None,
    config: Config = Path("project.toml"),
) -> None:
    """Move ALIAS back to its previous version and redeploy that bundle."""
    from lepton.pipeline.context import Context
    from lepton.pipeline.release import rollback
    from lepton.project import load_project

    project, root = load_project(config)
    if project.name != name:
        from lepton.errors import InvalidInput

        raise InvalidInput(f"{config} configures model '{project.name}', not '{name}'")
    with repo_from_cwd() as repo:
        result = rollback(Context(repo, project, root), alias, target)
    out.print(
        f"rolled back {name}@{alias} to {result['model_ref']} (was v{result['previous_version']}); "
        f"deployed to {result['target']} at {result['location']}"
    )
