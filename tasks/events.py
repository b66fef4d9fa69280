"""Lepton's events as Prefect events (installed as the ``prefect`` entry
point of the ``lepton.events`` group, see pyproject.toml).

Events go to a long-running Prefect server only: deployment triggers need
one (on the embedded default an event is stored and nothing reacts, see
../shared/PREFECT-NOTES.md), and starting a temporary server to store an
event nobody reads would cost ~10 s per snapshot. So without a configured
API URL this emitter declines, and `lepton watch` starts the retraining
run itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from lepton.events import Event


def server_configured() -> bool:
    """PREFECT_API_URL set in the environment, or in the active Prefect profile."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml"))
    if not profiles.is_file() or "PREFECT_API_URL" not in profiles.read_text():
        return False
    from prefect.settings import get_current_settings  # the profile names one: ask Prefect

    return bool(get_current_settings().api.url)


def emit(event: Event) -> bool:
    if not server_configured():
        return False
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    name = event.payload.get("name", event.resource)
    sent = emit_event(
        event=event.event,
        resource={"prefect.resource.id": event.resource, "prefect.resource.name": str(name)},
        payload=event.payload,
    )
    EventsWorker.drain_all(timeout=30)  # a CLI process exits right after: deliver now
    return sent is not None
