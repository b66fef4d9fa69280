"""The team stack for real: a Prefect server on PostgreSQL (its own
database), a process worker, the S3 server (moto on loopback), and a Lepton
workspace on S3 + PostgreSQL; deployments registered from
deployments/prefect.yaml exactly as users do. Then: the nightly deployment
run by hand; new data announced by `lepton watch` starting exactly one
retraining run pinned to the new version; two retraining flows at once on
the same workspace with nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
import tomli_w
from conftest import PG_ADMIN_URL, _free_port
from pipeline_helpers import prepare_data, project
from sqlalchemy import create_engine, text

from lepton.repo import open_repo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


class Stack:
    def __init__(self, env: dict[str, str], workspace: Path, logs: Path) -> None:
        self.env, self.workspace, self.logs = env, workspace, logs

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> str:
        proc = subprocess.run(
            [str(a) for a in args],
            cwd=cwd or self.workspace,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]} {proc.stderr[-3000:]}"
        return proc.stdout

    def flow_runs(self, deployment: str) -> list[dict]:  # type: ignore[type-arg]
        api = self.env["PREFECT_API_URL"]
        dep = requests.get(f"{api}/deployments/name/{deployment}", timeout=30).json()
        found = requests.post(
            f"{api}/flow_runs/filter", json={"deployments": {"id": {"any_": [dep["id"]]}}}, timeout=30
        ).json()
        return [r for r in found if not r.get("auto_scheduled")]  # not the schedule's future runs

    def wait(self, deployment: str, count: int, timeout: float = 420) -> list[dict]:  # type: ignore[type-arg]
        """Wait until ``count`` runs of ``deployment`` reached a final state."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            runs = self.flow_runs(deployment)
            final = [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]
            if len(final) >= count:
                return runs
            time.sleep(2)
        logs = "\n".join(p.read_text()[-3000:] for p in self.logs.glob("*.log"))
        pytest.fail(f"{deployment}: {count} finished run(s) not seen in {timeout} s\n{logs}")


def _start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    out = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


@pytest.fixture(scope="module")
def stack(_moto_server, tmp_path_factory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("team")
    logs = base / "logs"
    logs.mkdir()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    db, schema = f"prefect_{uuid.uuid4().hex[:10]}", f"lepton_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    requests.post(f"{_moto_server.endpoint}/moto-api/reset", timeout=10)
    _moto_server.make_bucket("lepton")

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEPTON_"))}
    env |= {
        "PREFECT_HOME": str(base / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "LEPTON_WORKSPACE": str(base / "workspace"),
        "LEPTON_DATASET": "bc-features",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    server_env = env | {
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}",
        "PREFECT_UI_API_URL": env["PREFECT_API_URL"],  # the UI's own calls (else port 4200)
        "PREFECT_SERVER_API_PORT": str(port),
    }
    server_env.pop("PREFECT_API_URL")
    procs = [
        _start(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
            logs,
        )
    ]
    try:
        for _ in range(120):
            try:
                if requests.get(f"{env['PREFECT_API_URL']}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            pytest.fail("Prefect server did not start:\n" + (logs / "server.log").read_text()[-3000:])

        workspace = base / "workspace"
        workspace.mkdir()
        registry = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
        s3 = _moto_server.settings().model_dump(exclude_none=True)
        (workspace / "lepton.toml").write_text(
            tomli_w.dumps({"store": {"url": "s3://lepton/team"}, "registry": {"url": registry}, "s3": s3})
        )
        (workspace / "project.toml").write_text(tomli_w.dumps(project()))
        (workspace / "project-b.toml").write_text(tomli_w.dumps(project(seed=1)))
        prepare_data(workspace)
        st = Stack(env, workspace, logs)
        st.run(BIN / "prefect", "work-pool", "create", "lepton", "--type", "process")
        st.run(
            BIN / "prefect",
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            "deployments/prefect.yaml",
            cwd=ROOT,
        )
        procs.append(
            _start(
                "worker",
                [str(BIN / "prefect"), "worker", "start", "--pool", "lepton", "--type", "process"],
                env,
                logs,
            )
        )
        yield st
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _deployment_run(stack: Stack, name: str, params: dict | None = None) -> None:  # type: ignore[type-arg]
    args = [BIN / "prefect", "deployment", "run", name]
    if params is not None:
        import json

        args += ["--params", json.dumps(params)]
    stack.run(*args)


def test_deployments_are_registered_with_typed_forms(stack):  # type: ignore[no-untyped-def]
    api = stack.env["PREFECT_API_URL"]
    for name in ("retrain/nightly", "retrain/on-new-data", "replay/replay", "release/release"):
        dep = requests.get(f"{api}/deployments/name/{name}", timeout=30).json()
        assert "params" in dep["parameter_openapi_schema"]["properties"], name
    nightly = requests.get(f"{api}/deployments/name/retrain/nightly", timeout=30).json()
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    bad = requests.post(
        f"{api}/deployments/{nightly['id']}/create_flow_run",
        json={"parameters": {"params": {"dataset": "../../etc@v1"}}},
        timeout=30,
    )
    assert bad.status_code >= 400 and "dataset" in bad.text  # refused before any run starts


def test_nightly_run_by_hand_then_new_data_starts_exactly_one_pinned_run(stack):  # type: ignore[no-untyped-def]
    _deployment_run(stack, "retrain/nightly")
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


def test_two_retraining_flows_at_once_lose_nothing(stack):  # type: ignore[no-untyped-def]
    before = len(stack.flow_runs("retrain/nightly"))
    _deployment_run(stack, "retrain/nightly", {"params": {"config": "project.toml", "reuse": False}})
    _deployment_run(stack, "retrain/nightly", {"params": {"config": "project-b.toml"}})
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


def _run_from_the_ui(stack: Stack, page, ui: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
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
