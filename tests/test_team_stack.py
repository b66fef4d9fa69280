"""The team stack for real: a Prefect server on PostgreSQL (its own
database), a process worker, the S3 server (moto on loopback), and a Lepton
workspace on S3 + PostgreSQL; deployments registered from
deployments/prefect.yaml exactly as users do. Then: the nightly deployment
run by hand; new data announced by `lepton watch` starting exactly one
retraining run pinned to the new version; two retraining flows at once on
the same workspace with nothing lost."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
import tomli_w
from conftest import PG_ADMIN_URL
from pipeline_helpers import prepare_data, project

from lepton.repo import open_repo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "infra"))
from teamstack import TeamStack  # noqa: E402 - infra/ is not a package

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(_moto_server, tmp_path_factory) -> Iterator[TeamStack]:  # type: ignore[no-untyped-def]
    requests.post(f"{_moto_server.endpoint}/moto-api/reset", timeout=10)
    _moto_server.make_bucket("lepton")
    s3 = _moto_server.settings().model_dump(exclude_none=True)
    with TeamStack(tmp_path_factory.mktemp("team"), PG_ADMIN_URL, s3) as st:
        (st.workspace / "project.toml").write_text(tomli_w.dumps(project()))
        (st.workspace / "project-b.toml").write_text(tomli_w.dumps(project(seed=1)))
        prepare_data(st.workspace)
        yield st


def test_deployments_are_registered_with_typed_forms(stack):  # type: ignore[no-untyped-def]
    api = stack.env["PREFECT_API_URL"]
    for name in ("retrain/nightly", "retrain/on-new-data", "watch/poll", "replay/replay", "release/release"):
        dep = requests.get(f"{api}/deployments/name/{name}", timeout=30).json()
        assert "params" in dep["parameter_openapi_schema"]["properties"], name
    nightly = requests.get(f"{api}/deployments/name/retrain/nightly", timeout=30).json()
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    poll = requests.get(f"{api}/deployments/name/watch/poll", timeout=30).json()
    assert [(s["schedule"]["interval"], s["active"]) for s in poll["schedules"]] == [(60.0, False)]
    bad = requests.post(
        f"{api}/deployments/{nightly['id']}/create_flow_run",
        json={"parameters": {"params": {"dataset": "../../etc@v1"}}},
        timeout=30,
    )
    assert bad.status_code >= 400 and "dataset" in bad.text  # refused before any run starts


def test_nightly_run_by_hand_then_new_data_starts_exactly_one_pinned_run(stack):  # type: ignore[no-untyped-def]
    stack.deployment_run("retrain/nightly")
    runs = stack.wait("retrain/nightly", 1)
    assert [r["state_type"] for r in runs] == ["COMPLETED"]
    with open_repo(stack.workspace) as repo:
        assert repo.registry.latest("bc-features").version == 1

    features = pd.read_parquet(stack.workspace / "data/features.parquet")
    features.iloc[:, 1] = features.iloc[:, 1] * 1.001  # new measurements arrive for every sample
    features.to_parquet(stack.workspace / "data/features.parquet")
    out = stack.run(
        BIN / "lepton",
        "watch",
        "bc-features",
        "data/features.parquet",
        "--key",
        "sample_id",
        "--once",
        "--quiet",
        "0",
        "--max-wait",
        "0",
    )
    assert "announced bc-features@v2 to: prefect" in out
    runs = stack.wait("retrain/on-new-data", 1)
    time.sleep(10)  # a second (wrong) run would have been created by now
    runs = stack.flow_runs("retrain/on-new-data")
    assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED", runs
    assert runs[0]["parameters"]["params"]["dataset"] == "bc-features@v2"
    with open_repo(stack.workspace) as repo:
        pinned = [r for r in repo.registry.runs() if r.params.get("dataset") == "bc-features@v2"]
        assert len(pinned) == 1 and pinned[0].status == "completed"


def test_the_poll_deployment_snapshots_new_data_and_the_trigger_retrains_on_it(stack):  # type: ignore[no-untyped-def]
    before = len(stack.flow_runs("retrain/on-new-data"))
    features = pd.read_parquet(stack.workspace / "data/features.parquet")
    features.iloc[:20, 2] = features.iloc[:20, 2] + 0.5  # corrected measurements for 20 samples
    features.to_parquet(stack.workspace / "data/features.parquet")
    stack.deployment_run("watch/poll", {"params": {"quiet_s": 0, "max_wait_s": 0}})
    polls = stack.wait("watch/poll", 1)
    assert [r["state_type"] for r in polls] == ["COMPLETED"], polls
    runs = stack.wait("retrain/on-new-data", before + 1)
    assert len(runs) == before + 1 and runs[-1]["state_type"] == "COMPLETED", runs
    assert runs[-1]["parameters"]["params"]["dataset"] == "bc-features@v3"
    with open_repo(stack.workspace) as repo:
        assert repo.registry.latest("bc-features").version == 3


def test_two_retraining_flows_at_once_lose_nothing(stack):  # type: ignore[no-untyped-def]
    before = len(stack.flow_runs("retrain/nightly"))
    stack.deployment_run("retrain/nightly", {"params": {"config": "project.toml", "reuse": False}})
    stack.deployment_run("retrain/nightly", {"params": {"config": "project-b.toml"}})
    runs = stack.wait("retrain/nightly", before + 2)
    assert all(r["state_type"] == "COMPLETED" for r in runs), [r["state"]["message"] for r in runs]
    with open_repo(stack.workspace) as repo:
        done = [r for r in repo.registry.runs() if r.status == "completed"]
        assert len(done) >= before + 3  # the first nightly, the pinned run, and these two
        versions = repo.registry.versions("bc")
        numbers = [v.version for v in versions]
        assert len(numbers) == len(set(numbers)) == numbers[-1]  # v1..vN, no gap, no duplicate
        for v in versions[-2:]:
            lineage = repo.lineage(v.ref, "upstream")
            assert any(n.kind == "dataset" for n in lineage.nodes), v.ref


CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own browser download stays off


def test_the_prefect_ui_starts_a_run_from_the_form_and_shows_leptons_artifacts(stack):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (apt-get install chromium): tests/run.sh does"
    ui = stack.env["PREFECT_API_URL"].removesuffix("/api")
    shots = ROOT / "test-output"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _run_from_the_ui(stack, page, ui, shots)
        except Exception:
            page.screenshot(path=str(shots / "prefect-ui-failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _run_from_the_ui(stack: TeamStack, page, ui: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{ui}/deployments", wait_until="networkidle")
    nightly = page.get_by_role("link", name="nightly", exact=True)
    nightly.wait_for(timeout=90_000)
    page.goto(ui + nightly.get_attribute("href"))
    page.get_by_role("button", name="Run", exact=True).click(timeout=60_000)
    page.get_by_text("Custom run", exact=True).click(timeout=30_000)
    page.wait_for_load_state("networkidle")
    page.get_by_text("RetrainParams").first.wait_for(timeout=60_000)  # the pydantic model's typed form
    page.get_by_text("a data-arrival trigger fills it in").first.wait_for(timeout=30_000)
    before = {r["id"] for r in stack.flow_runs("retrain/nightly")}
    page.get_by_role("button", name="Submit", exact=True).click()
    page.get_by_text("scheduled to start").first.wait_for(timeout=60_000)  # the UI's confirmation
    for _ in range(30):
        new = [r["id"] for r in stack.flow_runs("retrain/nightly") if r["id"] not in before]
        if new:
            break
        time.sleep(1)
    assert len(new) == 1, "the form should have created exactly one run"
    page.goto(f"{ui}/runs/flow-run/{new[0]}", wait_until="networkidle")
    done = page.get_by_text("Completed", exact=True).filter(visible=True)
    for _ in range(150):  # the worker runs it
        if done.count():
            break
        page.wait_for_timeout(2000)
        page.reload(wait_until="networkidle")
    assert done.count(), "the run started from the form did not complete"
    page.get_by_text("Artifacts", exact=True).filter(visible=True).first.click()
    page.wait_for_load_state("networkidle")
    # the run's summary and the decision's table of candidates' metrics (the per-step tables of
    # train/evaluate appear only when those steps ran: an earlier test may have cached them)
    for key in ("lepton-run", "select-table"):
        page.get_by_text(key, exact=True).filter(visible=True).first.wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "prefect-ui-run-artifacts.png"), full_page=True)
    page.get_by_text("lepton-run", exact=True).filter(visible=True).first.click()
    page.wait_for_load_state("networkidle")
    page.get_by_text("decision:").first.wait_for(timeout=30_000)  # the run's lineage summary
    page.screenshot(path=str(shots / "prefect-ui-lepton-run.png"), full_page=True)
