"""Garbage collection: remove store objects that no version references.

Reachable (never removed) is everything named, directly or through
parents (and a large tree's listing objects: lepton/data/listing.py), by
- every artifact version in the registry, every alias target, and every
  artifact in the store's own registry log (log/registry/: the truth the
  registry is rebuilt from, so a stale, lost or misconfigured registry
  cannot make gc remove what a rebuild would need);
- memoised step results (fits, evaluations, costs). Memoised CSV chunks are
  not roots: they are written before their snapshot registers, so keeping
  them would keep a crashed snapshot's orphans forever, and the ingest only
  reuses a memoised chunk that the previous registered version names. gc
  drops the memo rows of the chunks it removes.

An unreferenced object is removed only once it is older than the grace
period, by the store's clock. This is what makes gc safe next to writers:
- a snapshot stores its objects first and registers its manifest last, so
  its objects look unreferenced until it finishes; they are young;
- a writer that finds its object already stored refreshes the object's
  time (ObjectStore._reuse; on S3 after leaving a reuse note), and each
  removal sets the object aside first and puts it back if a writer reused
  it meanwhile (sweep.remove_if_old), so an old orphan that a snapshot has
  just reused is never removed;
- objects written since the start of a run still in progress (runs table,
  status "running", started within RUN_HORIZON) are kept whatever the grace:
  a flow stores its config at the start and names it only at the end.
The store is listed before the registry is read, so a version registered
while gc lists is seen. A grace period shorter than the longest snapshot
plus FRESHEN_AFTER is not safe: a writer reuses an object younger than
FRESHEN_AFTER as it is, without refreshing it. The default is one hour;
`lepton gc` refuses less than MIN_GRACE (check_grace) unless told it is
unsafe; ``collect`` itself takes any grace (tests use 0).

gc also removes tmp/ files older than the cutoff (after putting back any
referenced object an interrupted gc had set aside there) and, on S3, aborts
multipart uploads under the store's prefix started before it (a killed
upload leaves one behind).

If any manifest (or listing object) that must be kept cannot be read
(missing, corrupt, invalid), the objects it names are unknown, so gc removes nothing and
fails, unless ``force`` is given. quarantine/ and log/ are never touched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select

from lepton import hashing
from lepton.data import listing
from lepton.errors import IntegrityError, InvalidInput, LeptonError
from lepton.manifest import Manifest, TreeDataset, parse_stored
from lepton.registry import schema as t
from lepton.registry.memo import RegistryMemo
from lepton.repo import Repo
from lepton.store import packing, sweep
from lepton.store.errors import is_missing_bucket, translate
from lepton.store.objects import FRESHEN_AFTER, LOG, ObjectStore

DEFAULT_GRACE = 3600.0
MIN_GRACE = FRESHEN_AFTER + 300.0  # 5 minutes for the snapshot itself and clocks apart
RUN_HORIZON = 7 * 24 * 3600.0  # a run "running" for longer is taken as crashed
CACHE_ONLY_MEMOS = ("csvchunk",)
S3_WORKERS = 16
BATCH = 512  # manifests read (and held) at once
Phase = Callable[[str, int], None]  # (phase, n done): "list", "read", "remove"


class GcRefused(IntegrityError):
    """gc cannot know what is referenced, so it removed nothing."""


class GcReport(BaseModel):
    dry_run: bool
    scanned: int  # objects listed
    reachable: int  # listed objects that are referenced
    kept_young: int  # unreferenced, but younger than the cutoff
    removed: list[str]  # keys removed (with dry_run: that would be)
    freed_bytes: int
    aborted_uploads: int
    removed_tmp: int
    put_back: list[str] = []  # referenced objects a stopped gc had set aside, restored
    unreadable: dict[str, str] = {}  # manifest id or log record -> problem (only with force)
    cutoff: datetime  # unreferenced objects modified before this were removed
    live_runs: list[str] = []  # runs in progress that moved the cutoff back
    seconds: float = 0.0


def collect(
    repo: Repo,
    *,
    dry_run: bool,
    grace_seconds: float = DEFAULT_GRACE,
    force: bool = False,
    progress: Phase | None = None,
) -> GcReport:
    """Remove (or, with ``dry_run``, report) unreferenced objects older than
    ``grace_seconds``, stale tmp/ files and stale S3 multipart uploads."""
    if not grace_seconds >= 0:
        raise InvalidInput(f"grace period must be 0 or more seconds, not {grace_seconds}")
    started = time.perf_counter()
    store = repo.store
    tick = (lambda phase: lambda n: progress(phase, n)) if progress else (lambda phase: None)
    now = sweep.clock(store, fallback=dry_run)
    listed = sweep.list_objects(store, tick("list"))  # before the registry is read
    hard, soft, unreadable, logged = _roots(repo)
    reachable, bad, referrers = _walk(store, hard, soft, tick("read"))
    if bad:
        unreadable |= _with_versions(repo, bad, _affected(bad, hard, referrers), logged)
    if unreadable and not force:
        shown = "; ".join(f"{k} ({why})" for k, why in sorted(unreadable.items())[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        raise GcRefused(
            f"gc removed nothing: {len(unreadable)} manifest(s), file listing(s) or log record(s) "
            "that must be kept cannot be read, "
            f"so the objects they name are unknown: {shown}{more}. Restore them from a backup "
            "(`lepton verify NAME@vN` reports the damaged objects of each version named), or run gc "
            "with --force to collect anyway (the objects only they name are then removed)"
        )
    cutoff = now - grace_seconds
    live = _live_runs(repo, now)
    if live:
        cutoff = min(cutoff, min(live.values()) - FRESHEN_AFTER)
    garbage = [e for k, e in listed.items() if k not in reachable]
    old = [e for e in garbage if e.mtime < cutoff]
    removed = old if dry_run else _remove(store, old, cutoff, tick("remove"))
    tmp, put_back = [], []
    for e in sweep.list_tmp(store):
        aside = sweep.set_aside_key(e.name)  # an earlier gc stopped halfway through a removal
        if aside is not None and aside in reachable:
            put_back.append((e.name, aside))
        elif e.mtime < cutoff:
            tmp.append(e)
    uploads = sweep.stale_uploads(store, cutoff)
    if not dry_run:
        # memos of collected CSV chunks would only be misses from now on
        RegistryMemo(repo.engine).forget((e.name for e in removed), CACHE_ONLY_MEMOS)
        for path, key in put_back:
            sweep.put_back(store, path, key)
        for e in tmp:
            sweep.remove_tmp(store, e.name)
        for key, upload_id in uploads:
            sweep.abort_upload(store, key, upload_id)
    return GcReport(
        dry_run=dry_run,
        scanned=len(listed),
        reachable=len(listed) - len(garbage),
        kept_young=len(garbage) - len(removed),
        removed=sorted(e.name for e in removed),
        freed_bytes=sum(e.size for e in removed),
        aborted_uploads=len(uploads),
        removed_tmp=len(tmp),
        put_back=sorted(k for _, k in put_back),
        unreadable=unreadable,
        cutoff=datetime.fromtimestamp(cutoff, UTC),
        live_runs=sorted(live),
        seconds=round(time.perf_counter() - started, 3),
    )


def check_grace(grace_seconds: float, *, unsafe: bool = False) -> None:
    """Refuse a grace period too short to be safe next to live writers,
    unless ``unsafe`` (no other process writes to the store meanwhile)."""
    if grace_seconds < MIN_GRACE and not unsafe:
        raise InvalidInput(
            f"--grace {grace_seconds:g} is too short to be safe: a snapshot reuses an object "
            f"already stored, without refreshing its time, while it is younger than "
            f"{FRESHEN_AFTER:g} s, so gc with a grace under {MIN_GRACE:g} s can remove an object that "
            "a snapshot in progress has just reused and its version then lacks it. Use --grace "
            f"{MIN_GRACE:g} or more, or add --unsafe-grace where no other process writes to the store"
        )


# ---- what is referenced -------------------------------------------------------
def _roots(repo: Repo) -> tuple[set[str], set[str], dict[str, str], dict[str, str]]:
    """(ids that must be kept and read, ids kept and read if they can be,
    registry log records that cannot be read -> why, ids in the registry
    log -> the version it names them as)."""
    with repo.engine.connect() as conn:
        hard = set(conn.execute(select(t.artifacts.c.id).distinct()).scalars())
        hard |= set(conn.execute(select(t.aliases.c.id).distinct()).scalars())
        memo = select(t.memos.c.artifact_id).where(t.memos.c.kind.not_in(CACHE_ONLY_MEMOS)).distinct()
        soft = set(conn.execute(memo).scalars())
    logged, bad = _logged_ids(repo.store)
    hard |= set(logged)
    return hard, soft - hard, bad, logged


def _logged_ids(store: ObjectStore) -> tuple[dict[str, str], dict[str, str]]:
    """Artifact ids in the store's registry log (-> the version that names
    them, as NAME@vN or NAME@ALIAS), and the records that cannot be read
    (they name ids we cannot know)."""
    base = store.location.join(LOG, "registry")
    paths = [p for p, _, _ in sweep.list_files(store, base) if p.endswith(".json")]
    with translate(store.url):
        found = _map(store, store.fs.cat_file, paths)
    ids: dict[str, str] = {}
    bad: dict[str, str] = {}
    for path, data in zip(paths, found, strict=True):
        try:
            record = json.loads(data)
        except ValueError as e:
            bad[path] = f"registry log record is not JSON: {e}"
            continue
        if not isinstance(record, dict):
            bad[path] = f"registry log record is not a JSON object but {type(record).__name__}"
            continue
        event, key = record.get("event"), record.get("id")
        if event not in ("register", "alias"):
            continue
        if not (isinstance(key, str) and hashing.is_key(key)):
            bad[path] = f"registry log record of a {event} names no object key: id is {key!r}"
            continue
        tag = f"v{record.get('version')}" if event == "register" else record.get("alias")
        ids.setdefault(key, f"{record.get('name')}@{tag}")
    return ids, bad


def _walk(
    store: ObjectStore, hard: set[str], soft: set[str], tick: Callable[[int], None] | None
) -> tuple[set[str], dict[str, str], dict[str, set[str]]]:
    """Every key reachable from the roots; the manifests (or a large tree's
    listing objects) that could not be read, of those that must be kept,
    with what is wrong with each; and, for each parent or listing object,
    the manifests that name it. A listing object keeps every object it
    names, so a tree keeps the files of each listing in its chain."""
    reachable: set[str] = set()
    unreadable: dict[str, str] = {}
    referrers: dict[str, set[str]] = {}
    done: dict[bool, set[str]] = {True: set(), False: set()}  # read as required / not
    manifests = {k: True for k in hard} | {k: False for k in soft}
    listings: dict[str, bool] = {}  # listing objects still to read -> required
    read_manifest, read_listing = _reader(store), _listing_reader(store)
    while manifests or listings:
        queue, read = (manifests, read_manifest) if manifests else (listings, read_listing)
        batch = [queue.popitem() for _ in range(min(len(queue), BATCH))]
        found = _map(store, read, [k for k, _ in batch])
        for (key, required), got in zip(batch, found, strict=True):
            done[required].add(key)
            reachable.add(key)
            if tick:
                tick(1)
            if isinstance(got, str):
                if required:
                    unreadable[key] = got
                continue
            if isinstance(got, tuple):  # a listing object: the objects it names
                reachable.update(got)
                continue
            reachable.update(got.objects())
            chain = got.listing if isinstance(got, TreeDataset) else None
            nodes = [(p.id, manifests) for p in got.parents] + [(k, listings) for k in chain or ()]
            for k, into in nodes:
                referrers.setdefault(k, set()).add(key)
                if k not in done[True] and (required or k not in done[False]):
                    into[k] = into.get(k, False) or required
    return reachable, unreadable, referrers


def _affected(keys: Iterable[str], hard: set[str], referrers: dict[str, set[str]]) -> dict[str, set[str]]:
    """For each key, the roots (versions) that name it, directly or through
    parents and listing chains."""
    found = {}
    for key in keys:
        seen, todo = {key}, [key]
        while todo:
            for k in referrers.get(todo.pop(), ()):
                if k not in seen:
                    seen.add(k)
                    todo.append(k)
        found[key] = seen & hard
    return found


def _with_versions(
    repo: Repo, why: dict[str, str], roots: dict[str, set[str]], logged: dict[str, str]
) -> dict[str, str]:
    """``why`` with the versions each key belongs to (as the registry, else
    the registry log, names them) after what is wrong with it."""
    ids = set().union(*roots.values())
    q = select(t.artifacts.c.id, t.artifacts.c.name, t.artifacts.c.version).where(t.artifacts.c.id.in_(ids))
    with repo.engine.connect() as conn:
        named = {(i, f"{n}@v{v}") for i, n, v in conn.execute(q)}
    found = {i for i, _ in named}
    named |= {(i, logged[i]) for i in ids - found if i in logged}
    out = {}
    for key, problem in why.items():
        refs = sorted(ref for i, ref in named if i in roots[key])
        more = f" and {len(refs) - 5} more" if len(refs) > 5 else ""
        label = "version" if len(refs) == 1 else "versions"
        out[key] = f"{problem}; {label} {', '.join(refs[:5])}{more}" if refs else problem
    return out


def _fetch(store: ObjectStore, key: str) -> bytes | str:
    """An object's content without side effects (no quarantine), or what is
    wrong with it: ObjectStore._checked's rule (a packed object unpacked,
    then checked against its key). Errors other than absence (network)
    propagate."""
    if not hashing.is_key(key):
        return "not a content key"
    with translate(store.url, key):
        try:
            data = store.fs.cat_file(store.path_of(key))
        except FileNotFoundError as e:
            if is_missing_bucket(e):
                raise
            return "missing"
    content, actual = packing.verified(key, data)
    return content if actual is None else f"corrupt: content hashes to {actual}"


def _reader(store: ObjectStore) -> Callable[[str], Manifest | str]:
    """Read a manifest as stored (a large tree without its listing's files):
    the manifest, or what is wrong with it."""

    def read(key: str) -> Manifest | str:
        data = _fetch(store, key)
        if isinstance(data, str):
            return data
        try:
            return parse_stored(data, key)
        except LeptonError as e:
            return f"not a readable manifest: {e}"

    return read


def _listing_reader(store: ObjectStore) -> Callable[[str], tuple[str, ...] | str]:
    """Read a tree's listing object: the objects it names, or what is wrong with it."""

    def read(key: str) -> tuple[str, ...] | str:
        data = _fetch(store, key)
        if isinstance(data, str):
            return f"{data} (a file listing)"
        try:
            return listing.named(data, key)
        except LeptonError as e:
            return str(e)

    return read


# ---- when -----------------------------------------------------------------------
def _live_runs(repo: Repo, now: float) -> dict[str, float]:
    """Runs still in progress (started within RUN_HORIZON): id -> start time."""
    q = select(t.runs.c.id, t.runs.c.started_at).where(t.runs.c.status == "running")
    with repo.engine.connect() as conn:
        rows = conn.execute(q).all()
    live = {}
    for run_id, started_at in rows:
        ts = (started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)).timestamp()
        if now - ts < RUN_HORIZON:
            live[run_id] = ts
    return live


# ---- removal ----------------------------------------------------------------------
def _remove(
    store: ObjectStore, old: list[sweep.Entry], cutoff: float, tick: Callable[[int], None] | None
) -> list[sweep.Entry]:
    def one(e: sweep.Entry) -> bool:
        gone = sweep.remove_if_old(store, e.name, cutoff)
        if tick:
            tick(1)
        return gone

    return [e for e, gone in zip(old, _map(store, one, old), strict=True) if gone]


def _map(store: ObjectStore, fn, items: Iterable):  # type: ignore[no-untyped-def]
    """``map`` in order; on S3, with a pool of threads (each call is a request)."""
    items = list(items)
    if store.location.is_local or len(items) < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(S3_WORKERS) as pool:
        return list(pool.map(fn, items))
