"""Watching a source (a local folder or file, an s3:// prefix or object) for
new data, and snapshotting it once it has settled.

The decision is stateless, so that a loop (`lepton watch`) and a scheduled
flow that polls once per run decide alike, and a restart loses nothing:

1. `Repo.status` says whether the source differs from the latest version
   (unchanged files are not read: the state cache, or S3 listings);
2. if it does, the source must have been quiet for ``quiet_s`` (no file
   newer than that), so that 50 files landing within a minute make one
   snapshot, not 50;
3. unless changes have been arriving for ``max_wait_s`` without a pause,
   in which case it is snapshotted anyway (a source that never settles
   still gets versions).

Times are the files' own modification times (local clock, or S3's
LastModified) against the clock given, by default this machine's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lepton.errors import InvalidInput

if TYPE_CHECKING:
    from lepton.repo import Repo, Snapshot


@dataclass(frozen=True)
class WatchSpec:
    name: str  # the dataset the source is snapshotted into
    source: str  # local path or s3:// URL
    key: str | None = None  # key column (tables)
    quiet_s: float = 60.0
    max_wait_s: float = 600.0

    def __post_init__(self) -> None:
        if self.quiet_s < 0 or self.max_wait_s < self.quiet_s:
            raise InvalidInput(
                f"watch {self.source}: need 0 <= quiet ({self.quiet_s} s) <= max wait ({self.max_wait_s} s)"
            )


@dataclass(frozen=True)
class Decision:
    action: str  # "none" (no change), "wait" (changes still arriving), "snapshot"
    reason: str
    snapshot: Snapshot | None = None


def poll(repo: Repo, spec: WatchSpec, now: Callable[[], float] = time.time) -> Decision:
    """One look at the source; snapshots it when it changed and has settled."""
    status = repo.status(spec.name, spec.source)
    if status.layout == "table":
        changed = status.changed is not False
    else:
        changed = bool(status.added or status.removed or status.modified)
    if not changed:
        return Decision("none", f"{spec.source}: no change since {status.base}")
    times = _mtimes(repo, spec.source)
    since = _latest_time(repo, spec.name)
    fresh = [t for t in times if since is None or t > since]
    t = now()
    newest = max(times, default=0.0)
    first = min(fresh, default=newest)
    if t - newest < spec.quiet_s and t - first < spec.max_wait_s:
        return Decision(
            "wait",
            f"{spec.source}: changed, last write {t - newest:.0f} s ago (waiting for {spec.quiet_s:.0f} s)",
        )
    why = "settled" if t - newest >= spec.quiet_s else f"changing for {t - first:.0f} s"
    snap = repo.snapshot_data(spec.name, spec.source, key=spec.key, message=f"watch: {why}")
    return Decision("snapshot", f"{spec.source}: {why}; {snap.version.ref}", snap)


def _latest_time(repo: Repo, name: str) -> float | None:
    if not repo.registry.has_name(name):
        return None
    created: datetime = repo.registry.latest(name).created_at
    return created.timestamp()


def _mtimes(repo: Repo, url: str) -> list[float]:
    """Modification times (seconds since the epoch) of every file of a source."""
    if url.startswith("s3://"):
        from lepton.store.fs import open_location

        loc = open_location(url, repo.settings.s3)
        infos = (
            loc.fs.find(loc.root, detail=True)
            if loc.fs.isdir(loc.root)
            else {loc.root: loc.fs.info(loc.root)}
        )
        return [_s3_time(info) for info in infos.values() if info.get("type") != "directory"]
    path = os.path.expanduser(url.removeprefix("file://"))
    if os.path.isfile(path):
        return [os.stat(path).st_mtime]
    out = []
    for folder, _, files in os.walk(path):
        for f in files:
            try:
                out.append(os.stat(os.path.join(folder, f)).st_mtime)
            except FileNotFoundError:  # removed while listed: the next poll sees it
                continue
    return out


def _s3_time(info: dict) -> float:  # type: ignore[type-arg]
    modified = info.get("LastModified") or info.get("last_modified")
    if isinstance(modified, datetime):
        return modified.timestamp()
    return float(info.get("mtime", 0.0))
