"""Events Lepton announces, such as a new dataset version, delivered to
whatever emitters are installed. Lepton itself imports no orchestrator:
emitters are entry points in the group ``lepton.events`` (this project
installs one that sends Prefect events, tasks/events.py), each a callable
taking an Event and returning True when it delivered it.

An emitter that fails is logged and skipped: the version is stored and
registered before its event is announced, and an announcement never undoes
or fails it. Set LEPTON_EVENTS=off to announce nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

GROUP = "lepton.events"
DATASET_SNAPSHOTTED = "lepton.dataset.snapshotted"
LABELSET_SNAPSHOTTED = "lepton.labelset.snapshotted"
log = logging.getLogger(__name__)

Emitter = Callable[["Event"], bool]


@dataclass(frozen=True)
class Event:
    event: str  # e.g. lepton.dataset.snapshotted
    resource: str  # e.g. lepton.dataset.digits-features
    payload: dict[str, Any] = field(default_factory=dict)


def snapshotted(kind: str, ref: str, id: str, name: str, source: str, created: bool) -> Event:
    """The event for a snapshot of ``name`` (kind 'dataset' or 'labelset')."""
    return Event(
        event=DATASET_SNAPSHOTTED if kind == "dataset" else LABELSET_SNAPSHOTTED,
        resource=f"lepton.{kind}.{name}",
        payload={"name": name, "ref": ref, "id": id, "source": source, "created": created, "kind": kind},
    )


def installed() -> list[tuple[str, Emitter]]:
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=GROUP):
        try:
            found.append((ep.name, ep.load()))
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break snapshots
            log.warning("event emitter %s cannot be loaded: %s", ep.name, e)
    return found


def emit(event: Event, emitters: Iterable[tuple[str, Emitter]] | None = None) -> list[str]:
    """Announce ``event``; returns the names of the emitters that delivered it."""
    if os.environ.get("LEPTON_EVENTS", "").lower() in ("off", "0", "false", "no"):
        return []
    delivered = []
    for name, fn in installed() if emitters is None else emitters:
        try:
            if fn(event):
                delivered.append(name)
        except Exception as e:  # noqa: BLE001 - see the module docstring
            log.warning("event %s not delivered by %s: %s", event.event, name, e)
    return delivered
