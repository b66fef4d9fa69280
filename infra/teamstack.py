"""The team stack driven from Python, for the tests and the benchmarks: a
Prefect server on its own PostgreSQL database, a process work pool with N
workers, a Lepton workspace whose store is on an S3 server and whose
registry is a fresh PostgreSQL schema, and deployments registered from
deployments/prefect.yaml with `prefect deploy --all`, exactly as users do.
Everything it creates (database, schema, processes) is removed on exit.

    with TeamStack(base, pg_admin_url, s3_settings, workers=2) as stack:
        ...write project files into stack.workspace...
        stack.deployment_run("retrain/nightly", {"params": {...}})
        runs = stack.wait("retrain/nightly", 1)

`infra/stack.sh` is the long-running version of the same stack for people.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import tomli_w
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StackError(RuntimeError):
    """The stack did not start, or runs did not finish in time (the message ends with the logs)."""


class TeamStack:
    def __init__(
        self,
        base: Path,
        pg_admin_url: str,
        s3: dict[str, Any],
        *,
        store_url: str = "s3://lepton/team",
        workers: int = 1,
        dataset: str = "bc-features",
        env: dict[str, str] | None = None,
    ) -> None:
        self.base, self.pg_admin_url, self.s3, self.store_url = base, pg_admin_url, s3, store_url
        self.workers = workers
        self.workspace = base / "workspace"
        self.logs = base / "logs"
        self.db = f"prefect_{uuid.uuid4().hex[:10]}"
        self.schema = f"lepton_{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEPTON_"))}
        self.env = (
            inherited
            | {
                "PREFECT_HOME": str(base / "prefect-home"),
                "PREFECT_API_URL": f"http://127.0.0.1:{self.port}/api",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "LEPTON_WORKSPACE": str(self.workspace),
                "LEPTON_DATASET": dataset,
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            }
            | (env or {})
        )
        self.api = self.env["PREFECT_API_URL"]
        self.registry_url = f"{pg_admin_url}?options=-csearch_path%3D{self.schema}"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")

    # ---- lifecycle ----------------------------------------------------------
    def __enter__(self) -> TeamStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.workspace.mkdir(parents=True, exist_ok=True)
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db}"'))
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        try:
            self._start_server()
            (self.workspace / "lepton.toml").write_text(
                tomli_w.dumps(
                    {"store": {"url": self.store_url}, "registry": {"url": self.registry_url}, "s3": self.s3}
                )
            )
            self.run(BIN / "prefect", "work-pool", "create", "lepton", "--type", "process")
            deploy = ["--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"]
            self.run(BIN / "prefect", *deploy, cwd=ROOT)
            for i in range(self.workers):
                worker = [BIN / "prefect", "worker", "start", "--pool", "lepton", "--type", "process"]
                self._start(f"worker-{i + 1}", [*worker, "--name", f"worker-{i + 1}"], self.env)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self._procs:
            p.terminate()
        for p in self._procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        self._admin.dispose()

    def _start(self, name: str, args: list[Any], env: dict[str, str]) -> None:
        out = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the process
        self._procs.append(
            subprocess.Popen([str(a) for a in args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        )

    def _start_server(self) -> None:
        pg = self.pg_admin_url.split("://", 1)[1].rsplit("/", 1)[0]
        server_env = {k: v for k, v in self.env.items() if k != "PREFECT_API_URL"} | {
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{pg}/{self.db}",
            "PREFECT_UI_API_URL": self.api,  # the UI's own calls (else port 4200)
            "PREFECT_SERVER_API_PORT": str(self.port),
        }
        serve = [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        self._start("server", serve, server_env)
        for _ in range(120):
            try:
                if requests.get(f"{self.api}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise StackError("Prefect server did not start\n" + self.log_tail())

    # ---- driving it ---------------------------------------------------------
    def run(self, *args: Any, cwd: Path | None = None, timeout: float = 300) -> str:
        proc = subprocess.run(
            [str(a) for a in args],
            cwd=cwd or self.workspace,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise StackError(f"{args} exited {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-3000:]}")
        return proc.stdout

    def deployment_run(self, name: str, params: dict[str, Any] | None = None) -> None:
        args: list[Any] = [BIN / "prefect", "deployment", "run", name]
        if params is not None:
            args += ["--params", json.dumps(params)]
        self.run(*args)

    def flow_runs(self, deployment: str) -> list[dict[str, Any]]:
        """The deployment's runs, oldest first (not the schedule's future runs)."""
        dep = requests.get(f"{self.api}/deployments/name/{deployment}", timeout=30).json()
        found = requests.post(
            f"{self.api}/flow_runs/filter",
            json={"deployments": {"id": {"any_": [dep["id"]]}}, "sort": "EXPECTED_START_TIME_ASC"},
            timeout=30,
        ).json()
        return [r for r in found if not r.get("auto_scheduled")]

    def wait(self, deployment: str, count: int, timeout: float = 420) -> list[dict[str, Any]]:
        """Wait until ``count`` runs of ``deployment`` reached a final state."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            runs = self.flow_runs(deployment)
            if sum(r["state_type"] in FINAL for r in runs) >= count:
                return runs
            time.sleep(2)
        raise StackError(f"{deployment}: {count} finished run(s) not seen in {timeout} s\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-chars:]}" for p in sorted(self.logs.glob("*.log")))
