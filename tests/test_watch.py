"""Data arrival: the watcher snapshots a source (local folder, or an s3://
prefix on the S3 stack) once it changed and settled, so a burst of files
makes one version; a source that never settles still gets one after the
maximum wait. Events go to installed emitters and never fail a snapshot.
`lepton watch --retrain` on the embedded default starts the retraining run
itself, pinned to the new version."""

from __future__ import annotations

import logging
import os
import time

import pytest

from lepton import events
from lepton.errors import InvalidInput
from lepton.watch import WatchSpec, poll


class Source:
    """Files dropped into a local folder, or into the S3 stack's bucket."""

    def __init__(self, repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
        self.s3 = repo.settings.store.url.startswith("s3://")
        if self.s3:
            from lepton.store.fs import open_location

            self.url = "s3://lepton/incoming"
            self.fs = open_location(self.url, repo.settings.s3).fs
        else:
            self.url = str(tmp_path / "incoming")
            os.makedirs(self.url)

    def drop(self, names: range, age_s: float = 0.0, tag: str = "") -> None:
        for i in names:
            data = f"sample {i} {tag}\n".encode() * 50
            if self.s3:
                self.fs.pipe_file(f"lepton/incoming/part{i % 4}/f{i:03d}.txt", data)
            else:
                path = os.path.join(self.url, f"part{i % 4}", f"f{i:03d}.txt")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
                t = time.time() - age_s
                os.utime(path, (t, t))


def test_a_burst_of_files_makes_one_version_once_settled(repo, tmp_path):  # type: ignore[no-untyped-def]
    src = Source(repo, tmp_path)
    spec = WatchSpec(name="incoming", source=src.url, quiet_s=60, max_wait_s=600)
    src.drop(range(10), age_s=300)
    later = time.time() + (400 if src.s3 else 0)  # S3 stamps its own (current) times
    first = poll(repo, spec, now=lambda: later)
    assert first.action == "snapshot" and first.snapshot.version.ref == "incoming@v1"
    assert poll(repo, spec).action == "none"
    src.drop(range(10, 60))  # 50 files land now
    for offset in (0, 20, 45):  # still arriving or not yet quiet for a minute (S3 times: whole seconds)
        d = poll(repo, spec, now=lambda o=offset: time.time() + o)
        assert d.action == "wait", d.reason
    assert len(repo.registry.versions("incoming")) == 1
    settled = poll(repo, spec, now=lambda: time.time() + 61)
    assert settled.action == "snapshot" and settled.snapshot.version.ref == "incoming@v2"
    assert len(settled.snapshot.manifest.files) == 60
    assert poll(repo, spec, now=lambda: time.time() + 120).action == "none"
    assert len(repo.registry.versions("incoming")) == 2


def test_a_source_that_never_settles_is_snapshotted_after_the_maximum_wait(repo, tmp_path):  # type: ignore[no-untyped-def]
    src = Source(repo, tmp_path)
    spec = WatchSpec(name="stream", source=src.url, quiet_s=5, max_wait_s=6)
    src.drop(range(1))
    time.sleep(3)
    src.drop(range(1, 3))  # files keep coming: never quiet for 5 s...
    later = time.time() + 3  # fixed now: a poll slowed by a busy machine must not see the files settle
    decision = poll(repo, spec, now=lambda: later)
    assert decision.action == "snapshot" and "changing for" in decision.reason  # ...but the first is 6 s old


def test_watch_specs_are_checked():  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="quiet"):
        WatchSpec(name="x", source="/tmp", quiet_s=100, max_wait_s=10)


def test_events_reach_every_emitter_and_a_failing_one_only_logs(caplog, monkeypatch):  # type: ignore[no-untyped-def]
    got: list[events.Event] = []

    def broken(event: events.Event) -> bool:
        raise RuntimeError("server down")

    event = events.snapshotted("dataset", "d@v2", "blake3:" + "0" * 64, "d", "/data", True)
    assert (event.event, event.resource) == ("lepton.dataset.snapshotted", "lepton.dataset.d")
    with caplog.at_level(logging.WARNING, logger="lepton.events"):
        delivered = events.emit(event, [("a", lambda e: got.append(e) or True), ("b", broken)])
    assert delivered == ["a"] and got == [event]
    assert "not delivered by b: server down" in caplog.text
    monkeypatch.setenv("LEPTON_EVENTS", "off")
    assert events.emit(event, [("a", lambda e: got.append(e) or True)]) == [] and len(got) == 1


def test_the_prefect_emitter_declines_without_a_server(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from tasks import events as prefect_events

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert ("prefect", prefect_events.emit) in events.installed()  # the project's entry point
    event = events.snapshotted("dataset", "d@v1", "blake3:" + "0" * 64, "d", "/data", True)
    assert prefect_events.emit(event) is False
    (tmp_path / "profiles.toml").write_text('active = "x"\n[profiles.x]\n')
    assert prefect_events.server_configured() is False


@pytest.mark.slow
def test_lepton_watch_retrains_on_the_embedded_default(prefect_api, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    from pipeline_helpers import prepare_data, project, write_project

    from lepton.cli.main import main
    from lepton.repo import open_repo

    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)
    assert main(["init"]) == 0
    prepare_data(tmp_path)
    write_project(tmp_path, project())
    old = time.time() - 300
    os.utime(tmp_path / "data/features.parquet", (old, old))
    args = ["watch", "bc-features", "data/features.parquet", "--key", "sample_id", "--once", "--quiet", "60"]
    assert main([*args, "--retrain", "project.toml"]) == 0
    printed = capsys.readouterr().out
    assert "bc-features@v1" in printed and "retraining on bc-features@v1" in printed
    with open_repo(tmp_path) as repo:
        runs = repo.registry.runs()
        assert len(runs) == 1 and runs[0].status == "completed"
        assert runs[0].params["dataset"] == "bc-features@v1"  # pinned to the version just taken
    assert main([*args, "--retrain", "project.toml"]) == 0  # nothing new: no second run
    assert "no change since bc-features@v1" in capsys.readouterr().out
    with open_repo(tmp_path) as repo:
        assert len(repo.registry.runs()) == 1


@pytest.mark.slow
def test_the_watch_flow_polls_the_projects_source_and_retrains_on_the_embedded_default(
    prefect_api, tmp_path, monkeypatch
):  # type: ignore[no-untyped-def]
    import pandas as pd
    from pipeline_helpers import prepare_data, project, write_project

    from flows.watch import WatchParams, watch_source
    from lepton.cli.main import main
    from lepton.repo import open_repo

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)
    assert main(["init"]) == 0
    prepare_data(tmp_path)
    write_project(tmp_path, project())
    params = WatchParams(repo=str(tmp_path), quiet_s=60, max_wait_s=600)
    waiting = watch_source(params)  # just written: not settled yet
    assert waiting["action"] == "wait" and waiting["ref"] is None
    old = time.time() - 300
    os.utime(tmp_path / "data/features.parquet", (old, old))
    first = watch_source(params)
    assert (first["action"], first["ref"], first["announced"]) == ("snapshot", "bc-features@v1", [])
    assert watch_source(params)["action"] == "none"
    features = pd.read_parquet(tmp_path / "data/features.parquet")
    features.iloc[:5, 1] += 1.0
    features.to_parquet(tmp_path / "data/features.parquet")
    second = watch_source(params.model_copy(update={"quiet_s": 0, "max_wait_s": 0}))
    assert second["ref"] == "bc-features@v2"
    with open_repo(tmp_path) as repo:
        pinned = sorted(r.params["dataset"] for r in repo.registry.runs())
        assert pinned == ["bc-features@v1", "bc-features@v2"]  # one retraining run per new version
        assert all(r.status == "completed" for r in repo.registry.runs())
