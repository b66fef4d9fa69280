"""deploy and rollback: check the target, publish the bundle, move the alias."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lepton import hashing
from lepton.deploy import compat
from lepton.deploy.bundle import bundle_files, switch_to, write_bundle
from lepton.errors import InvalidInput, NotFound
from lepton.manifest import Parent
from lepton.model_manifest import Decision, Deployment, Model
from lepton.pipeline.context import Context
from lepton.project import Target
from lepton.registry.entities import AliasMove
from lepton.registry.registry import validate_alias
from lepton.store.fs import Location, open_location

ROLLBACK = "rollback"
_ROLLBACK_RE = re.compile(r"^rollback from v(\d+) to v(\d+)$")


def target_location(ctx: Context, target: Target) -> Location:
    if target.kind == "s3":
        if not target.path.startswith("s3://"):
            raise InvalidInput(f"target path {target.path!r}: an s3 target needs s3://bucket/prefix")
        return open_location(target.path, ctx.repo.settings.s3)
    path = Path(target.path)
    return open_location(str(path if path.is_absolute() else (ctx.root / path).resolve()))


def deploy_model(
    ctx: Context,
    model_id: str,
    target_name: str,
    alias: str,
    *,
    decision_id: str | None = None,
    reason: str | None = None,
    expect: int | None = None,
) -> dict[str, Any]:
    """Check everything first: the target, the model, the alias and the
    compatibility (nothing is written if one fails). Then write the bundle,
    record the deployment, and move the alias; the target's CURRENT switches
    to the bundle under the alias's lock, as the move commits, so concurrent
    deploys leave the target serving the version the alias names.
    ``expect``: the version the alias must still be at (a rollback)."""
    if target_name not in ctx.project.targets:
        known = ", ".join(sorted(ctx.project.targets)) or "none"
        raise InvalidInput(f"no deploy target '{target_name}' in the project config (targets: {known})")
    target = ctx.project.targets[target_name]
    model = ctx.manifest(model_id)
    if not isinstance(model, Model):
        raise InvalidInput(f"{ctx.ref(model_id)} is a {model.kind}, not a model")
    validate_alias(alias)
    version = _model_version(ctx, model_id)
    checks = compat.check(model, target_name, target)
    location = target_location(ctx, target)
    files = bundle_files(ctx.repo.store, model_id)
    folder = write_bundle(location, model_id, files)
    parents = [Parent(id=model_id, role="model")]
    if decision_id:
        parents.append(Parent(id=decision_id, role="decision"))
    deployment = Deployment(
        name=f"{ctx.project.name}.deploy.{target_name}",
        target=target_name,
        location=_url(location, folder),
        model=model_id,
        checks=checks,
        bundle={path: hashing.hash_bytes(data) for path, data in sorted(files.items())},
        parents=tuple(parents),
        run=ctx.run_id,
    )
    snap = ctx.repo.commit(deployment, run_id=ctx.run_id)
    move = ctx.repo.registry.set_alias(
        ctx.project.name,
        alias,
        version,
        creator=ctx.repo.creator,
        reason=reason,
        expect=expect,
        then=lambda: switch_to(location, model_id),
    )
    return {
        "deployment": snap.version.id,
        "model": model_id,
        "model_ref": f"{ctx.project.name}@v{version}",
        "target": target_name,
        "location": deployment.location,
        "alias": alias,
        "previous_version": move.previous_version,
    }


def _url(location: Location, folder: str) -> str:
    return folder if location.is_local else f"s3://{folder}"


def _model_version(ctx: Context, model_id: str) -> int:
    for row in ctx.repo.registry.by_id(model_id):
        if row.name == ctx.project.name:
            return row.version
    raise NotFound(f"model {model_id} is not a version of {ctx.project.name}")


def deploy(ctx: Context, decision_id: str) -> dict[str, Any]:
    """The flow's last step: deploy the decision's winner if it was promoted."""
    decision = ctx.manifest(decision_id)
    assert isinstance(decision, Decision)
    spec = ctx.project.deploy
    if spec is None:
        return {"deployed": False, "why": "no deploy section in the project config"}
    if not decision.promote or decision.winner is None:
        return {"deployed": False, "why": decision.reason}
    out = deploy_model(
        ctx,
        decision.winner,
        spec.target,
        spec.alias,
        decision_id=decision_id,
        reason=decision.reason,
    )
    return {"deployed": True, **out}


def rollback(ctx: Context, alias: str, target_name: str | None = None) -> dict[str, Any]:
    """Move ALIAS back to the version it pointed at before its last move,
    and redeploy that version's bundle."""
    name = ctx.project.name
    current = ctx.repo.registry.alias(name, alias)
    history = ctx.repo.registry.alias_history(name, alias)
    previous = previous_version(history)
    if previous is None or previous == current.version:
        raise InvalidInput(
            f"{name}@{alias} has no earlier version to roll back to (it is at v{current.version})"
        )
    target = target_name or (ctx.project.deploy.target if ctx.project.deploy else None)
    if target is None:
        raise InvalidInput("rollback needs a deploy target: pass --target or add [deploy] to the config")
    model_id = ctx.repo.registry.get(name, previous).id
    reason = f"{ROLLBACK} from v{current.version} to v{previous}"
    return deploy_model(ctx, model_id, target, alias, reason=reason, expect=current.version)


def previous_version(history: Iterable[AliasMove]) -> int | None:
    """The version before the current one, treating the alias history as a
    stack: a promotion pushes (a move to the version already on top pushes
    nothing), a rollback pops (so rolling back twice goes two promotions
    back, not back and forth)."""
    stack: list[int] = []
    for move in history:
        if move.version is None:
            continue
        if _is_rollback(move) and stack:
            stack.pop()
        if not stack or stack[-1] != move.version:
            stack.append(move.version)
    return stack[-2] if len(stack) >= 2 else None


def _is_rollback(move: AliasMove) -> bool:
    """A move rollback() made: its reason as rollback writes it, naming the
    versions the move went from and to (a free-text reason that merely
    starts with "rollback" is a promotion)."""
    m = _ROLLBACK_RE.match(move.reason or "")
    return m is not None and int(m[2]) == move.version and int(m[1]) == move.previous_version
