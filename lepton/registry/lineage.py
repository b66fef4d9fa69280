"""Lineage queries answered by the registry with recursive SQL (portable
between SQLite and PostgreSQL), never by walking the store."""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, select, text

from lepton.registry import schema as t
from lepton.registry.entities import Edge, Lineage, LineageNode

MAX_DEPTH = 10_000
# Kinds reported by an impact query: what a change upstream can affect.
IMPACT_KINDS = ("labelset", "component", "model", "evaluation", "decision", "deployment", "run")

_WALK = """
WITH RECURSIVE walk(child_id, parent_id, role, depth) AS (
    SELECT child_id, parent_id, role, 1 FROM edges WHERE {start} = :id
    UNION
    SELECT e.child_id, e.parent_id, e.role, w.depth + 1
    FROM edges e JOIN walk w ON e.{join_col} = w.{next_col}
    WHERE w.depth < :depth
)
SELECT child_id, parent_id, role, MIN(depth) AS depth
FROM walk GROUP BY child_id, parent_id, role
"""
_UP = text(_WALK.format(start="child_id", join_col="child_id", next_col="parent_id"))
_DOWN = text(_WALK.format(start="parent_id", join_col="parent_id", next_col="child_id"))


def walk(engine: Engine, id: str, direction: str, depth: int | None = None) -> Lineage:
    """Every edge upstream (parents) or downstream (children) of ``id``."""
    if direction not in ("upstream", "downstream"):
        raise ValueError(f"direction must be upstream or downstream, not {direction!r}")
    limit = min(depth or MAX_DEPTH, MAX_DEPTH)
    query = _UP if direction == "upstream" else _DOWN
    with engine.connect() as conn:
        rows = conn.execute(query, {"id": id, "depth": limit}).all()
        edges = tuple(
            sorted(
                (Edge(child_id=r[0], parent_id=r[1], role=r[2], depth=int(r[3])) for r in rows),
                key=lambda e: (e.depth, e.role, e.child_id, e.parent_id),
            )
        )
        far = "parent_id" if direction == "upstream" else "child_id"
        depths: dict[str, int] = {}
        for e in edges:
            node = getattr(e, far)
            depths[node] = min(depths.get(node, e.depth), e.depth)
        labels = _labels(conn, [id, *depths])
    nodes = [LineageNode(id=id, depth=0, **labels.get(id, {}))]
    nodes += [
        LineageNode(id=n, depth=d, **labels.get(n, {}))
        for n, d in sorted(depths.items(), key=lambda kv: (kv[1], kv[0]))
    ]
    return Lineage(root=id, direction=direction, nodes=tuple(nodes), edges=edges)


def impact(engine: Engine, id: str) -> Lineage:
    """Everything downstream of ``id`` whose kind a change there can affect."""
    full = walk(engine, id, "downstream")
    keep = {n.id for n in full.nodes if n.depth == 0 or n.kind in IMPACT_KINDS or n.kind is None}
    return full.model_copy(
        update={
            "direction": "impact",
            "nodes": tuple(n for n in full.nodes if n.id in keep),
        }
    )


def _labels(conn, ids: list[str]) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """name/version/kind of each id (its latest registered version) and the
    run that first registered it."""
    if not ids:
        return {}
    q = (
        select(
            t.artifacts.c.id,
            t.artifacts.c.name,
            t.artifacts.c.version,
            t.artifacts.c.kind,
            t.artifacts.c.run_id,
        )
        .where(t.artifacts.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(t.artifacts.c.pk)
    )
    out: dict[str, dict] = {}
    for chunk in range(0, len(ids), 500):
        for r in conn.execute(q, {"ids": ids[chunk : chunk + 500]}):
            first_run = out.get(r.id, {}).get("run_id") or r.run_id  # the run that made it
            out[r.id] = {"name": r.name, "version": r.version, "kind": r.kind, "run_id": first_run}
    return out
