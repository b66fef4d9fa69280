"""Deploy and rollback under mistakes and races: nothing goes live before
every check has passed, the target serves the version the alias names, and
rollback walks the alias history as a stack even when a version was
deployed twice or another move came in between."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pipeline_helpers import prepare_data, project, write_repo
from test_pipeline import _ctx, _run_steps

from lepton.deploy.bundle import CURRENT, load_bundle
from lepton.errors import Conflict, IntegrityError, InvalidInput
from lepton.pipeline import release
from lepton.registry.entities import AliasMove


def _move(version: int, previous: int | None, reason: str | None = None) -> AliasMove:
    return AliasMove(
        name="m",
        alias="production",
        version=version,
        id=f"id{version}",
        previous_version=previous,
        moved_at=datetime.now(UTC),
        reason=reason,
    )


def test_previous_version_reads_the_history_as_a_stack() -> None:
    promote = [_move(1, None), _move(2, 1), _move(3, 2)]
    assert release.previous_version(promote) == 2
    back = [*promote, _move(2, 3, "rollback from v3 to v2")]
    assert release.previous_version(back) == 1
    assert release.previous_version([*back, _move(1, 2, "rollback from v2 to v1")]) is None


def test_a_version_deployed_twice_is_one_step_of_the_stack() -> None:
    twice = [_move(1, None), _move(2, 1), _move(2, 2)]
    assert release.previous_version(twice) == 1
    # back to v1: nothing earlier remains (before, the second v2 was popped and v1 offered again)
    assert release.previous_version([*twice, _move(1, 2, "rollback from v2 to v1")]) is None


def test_a_free_text_reason_starting_with_rollback_is_a_promotion() -> None:
    moves = [_move(1, None), _move(2, 1), _move(3, 2, "rollback candidate retrained on fixed labels")]
    assert release.previous_version(moves) == 2


@pytest.fixture
def workdir(tmp_path, backend):  # type: ignore[no-untyped-def]
    folder = write_repo(tmp_path / "repo", backend)
    prepare_data(folder)
    return folder


def _deployed(workdir):  # type: ignore[no-untyped-def]
    ctx = _ctx(workdir, project())
    out = _run_steps(ctx)
    assert out["deploy"]["deployed"], out["decision"]["reason"]
    first = out["decision"]["winner"]
    other = next(v for v in ctx.repo.registry.versions("bc") if v.id != first)
    return ctx, first, other


def test_a_refused_alias_leaves_the_target_and_the_registry_as_they_were(workdir):  # type: ignore[no-untyped-def]
    ctx, first, other = _deployed(workdir)
    current = (workdir / "deploy" / CURRENT).read_bytes()
    versions = {n: len(ctx.repo.registry.versions(n)) for n, _, _ in ctx.repo.registry.names()}
    history = ctx.repo.registry.alias_history("bc")
    for alias in ("latest", "v7", "bad name"):
        with pytest.raises(InvalidInput, match="alias|reserved"):
            release.deploy_model(ctx, other.id, "local", alias)
    assert (workdir / "deploy" / CURRENT).read_bytes() == current
    assert load_bundle(str(workdir / "deploy")).model_id == first
    assert {n: len(ctx.repo.registry.versions(n)) for n, _, _ in ctx.repo.registry.names()} == versions
    assert ctx.repo.registry.alias_history("bc") == history


def test_rollback_after_the_same_version_was_deployed_twice(workdir):  # type: ignore[no-untyped-def]
    ctx, first, other = _deployed(workdir)
    release.deploy_model(ctx, other.id, "local", "production")
    release.deploy_model(ctx, other.id, "local", "production")
    back = release.rollback(ctx, "production")
    assert back["model"] == first
    assert load_bundle(str(workdir / "deploy")).model_id == first
    with pytest.raises(InvalidInput, match="no earlier version"):
        release.rollback(ctx, "production")
    assert ctx.repo.registry.alias("bc", "production").id == first


def test_a_move_that_came_in_between_makes_the_rollback_refuse(workdir):  # type: ignore[no-untyped-def]
    ctx, first, other = _deployed(workdir)
    release.deploy_model(ctx, other.id, "local", "production")
    history = ctx.repo.registry.alias_history("bc", "production")
    # a rollback that read the alias at first's version, after another move took it elsewhere
    stale = ctx.repo.registry.by_id(first)[0].version
    with pytest.raises(Conflict, match="meanwhile"):
        release.deploy_model(ctx, first, "local", "production", reason="rollback", expect=stale)
    assert ctx.repo.registry.alias_history("bc", "production") == history
    assert load_bundle(str(workdir / "deploy")).model_id == other.id  # the target was not switched


def test_a_target_that_cannot_be_switched_leaves_the_alias_where_it_was(workdir):  # type: ignore[no-untyped-def]
    ctx, first, other = _deployed(workdir)
    pointer = workdir / "deploy" / CURRENT
    pointer.unlink()
    pointer.mkdir()  # CURRENT cannot be replaced: the switch fails inside the alias's move
    with pytest.raises(OSError):
        release.deploy_model(ctx, other.id, "local", "production")
    assert ctx.repo.registry.alias("bc", "production").id == first


def test_a_damaged_bundle_json_is_one_integrity_error_naming_the_file(workdir):  # type: ignore[no-untyped-def]
    ctx, first, _ = _deployed(workdir)
    bundle = workdir / "deploy" / (workdir / "deploy" / CURRENT).read_text()
    index = json.loads((bundle / "bundle.json").read_bytes())
    spec = next(rel for rel in index["files"] if rel.endswith("spec.json"))
    weights = next(rel for rel in index["files"] if rel.endswith((".skops", ".safetensors")))

    def without(rel: str) -> bytes:
        return json.dumps({**index, "files": {k: v for k, v in index["files"].items() if k != rel}}).encode()

    damaged = {"not JSON": b"{", "no files list": json.dumps({"model": first}).encode()}
    damaged |= {spec: without(spec), weights: without(weights)}
    original = (bundle / "bundle.json").read_bytes()
    for what, data in damaged.items():
        (bundle / "bundle.json").write_bytes(data)
        with pytest.raises(IntegrityError, match="bundle.json|lacks") as err:
            load_bundle(str(bundle))
        assert what in str(err.value) or what in ("not JSON", "no files list"), str(err.value)
    (bundle / "bundle.json").write_bytes(original)
    (bundle / weights).unlink()
    with pytest.raises(IntegrityError, match=f"{weights} is listed in bundle.json but missing"):
        load_bundle(str(bundle))
