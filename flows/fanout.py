"""Candidate fan-out: train every candidate at once, then evaluate every
model at once, through a Prefect task runner chosen per run:

- ``off``: one after the other in the flow's process (the default; on two
  cores a process pool's start-up costs more than it saves);
- ``threads``: a thread pool (scikit-learn releases the GIL in its numeric
  kernels; torch training is serialised inside one process, because torch's
  RNG, thread count and determinism switches are process-wide);
- ``processes``: a process pool (spawned; each task opens the repository
  itself, since only ids cross the process boundary);
- ``dask``: prefect-dask on the Dask cluster at ``dask_address`` (or dask's
  own ``scheduler-address`` setting, e.g. DASK_SCHEDULER_ADDRESS); its
  workers need this project installed and the store and registry reachable.

Results and their order do not depend on the choice: each task is keyed by
artifact ids and seeded from the project, so the same models come out.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from lepton.errors import ConfigError
from tasks import steps
from tasks.common import Job

Fanout = Literal["off", "threads", "processes", "dask"]


def make_runner(fanout: Fanout, width: int, workers: int | None, dask_address: str | None) -> Any:
    """The task runner for ``fanout`` (None for ``off``); fails before any training."""
    n = workers or max(1, min(width, os.cpu_count() or 1))
    if fanout == "off":
        return None
    if fanout == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=n)
    if fanout == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=n)
    try:
        import dask
        from prefect_dask import DaskTaskRunner
    except ImportError as e:
        raise ConfigError("fanout 'dask' needs prefect-dask: pip install 'lepton[dask]'") from e
    address = dask_address or dask.config.get("scheduler-address", None)
    if not address:
        raise ConfigError(
            "fanout 'dask' needs a Dask cluster: set the run's dask_address (tcp://HOST:8786) "
            "or DASK_SCHEDULER_ADDRESS"
        )
    return DaskTaskRunner(address=address)


def train_and_evaluate(
    job: Job, candidates: list[Any], data: dict[str, Any], comps: dict[str, Any], runner: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(trained, evaluated) per candidate, in the config's order."""
    evalset = comps["evalset"]

    def train_args(cand: Any) -> dict[str, Any]:
        return {
            "job": job,
            "candidate": cand.name,
            "dataset": data["dataset"],
            "labelset": data["labelset"],
            "evalset": evalset,
            "specs": comps["specs"][cand.name],
        }

    if runner is None:
        models = [steps.train(**train_args(c)) for c in candidates]
        return models, [steps.evaluate(job, m["model"], evalset) for m in models]
    with runner as pool:
        trained = [pool.submit(steps.train, train_args(c)) for c in candidates]
        models = [f.result() for f in trained]
        scored = [
            pool.submit(steps.evaluate, {"job": job, "model": m["model"], "evalset": evalset}) for m in models
        ]
        return models, [f.result() for f in scored]
