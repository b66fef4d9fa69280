"""Run records: one row per execution of the retraining flow (running,
then completed or failed), each also appended to the registry's log in the
store so that `lepton registry rebuild` restores them. Registry inherits
these; they share its write path (one transaction, lock waits timed) and
its journal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, select

from lepton.errors import InvalidInput, NotFound
from lepton.registry import schema as t
from lepton.registry.entities import Run
from lepton.registry.rows import iso, now, to_run


class RunRecords:
    engine: Engine
    _write: Callable[[Callable[[Connection], Any]], Any]
    _log: Callable[[str, dict[str, Any]], None]

    def start_run(
        self,
        id: str,
        *,
        flow_run_id: str | None = None,
        params: dict[str, Any] | None = None,
        creator: str | None = None,
    ) -> Run:
        row = {
            "id": id,
            "flow_run_id": flow_run_id,
            "status": "running",
            "started_at": now(),
            "ended_at": None,
            "creator": creator,
            "params": json.dumps(params or {}, sort_keys=True),
        }

        def tx(conn: Connection) -> None:
            conn.execute(t.runs.insert().values(**row))
            self._log("registry", {"event": "run", **row, "started_at": iso(row["started_at"])})

        self._write(tx)
        return self.get_run(id)

    def finish_run(self, id: str, status: str) -> Run:
        def tx(conn: Connection) -> None:
            ts = now()
            done = conn.execute(t.runs.update().where(t.runs.c.id == id).values(status=status, ended_at=ts))
            if done.rowcount != 1:  # nothing to finish: log nothing
                raise NotFound(f"no run {id}")
            self._log("registry", {"event": "run_end", "id": id, "status": status, "ended_at": iso(ts)})

        self._write(tx)
        return self.get_run(id)

    def get_run(self, id: str) -> Run:
        if "\x00" in id:
            raise InvalidInput(f"invalid run id {id!r}")
        with self.engine.connect() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.id == id)).first()
        if row is None:
            raise NotFound(f"no run {id}")
        return to_run(row)

    def runs(self, limit: int = 50) -> list[Run]:
        q = select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [to_run(r) for r in conn.execute(q)]
