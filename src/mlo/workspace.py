"""Finding and creating the workspace: the nearest ``.mlo/`` upward (like git), or ``MLO_HOME``.

Configuration comes from the environment (``MLO_HOME``, ``MLO_STORE``, ``MLO_ARTIFACTS``) and from the
``mlo.toml`` files of the project and the workspace (see :mod:`mlo.config`), with the environment winning.

Opening a workspace checks it: a database with no records next to a blob store that holds blobs is refused
(its records were lost; creating an empty one would orphan every blob), and the temp files of writes that a
killed process left in the blob store are removed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from . import config as _config
from .errors import InvalidInput

DIRNAME = ".mlo"
CONFIG_NAME = _config.CONFIG_NAME

log = logging.getLogger("mlo")

_lock = threading.Lock()
_cache: dict[tuple, Workspace] = {}
_home_here: ContextVar[Path | None] = ContextVar("mlo_home", default=None)


@dataclass
class Workspace:
    """One mlo workspace: a metadata store and a blob store, found from a home folder."""

    home: Path
    store_url: str
    artifacts_url: str
    config: dict = field(default_factory=dict)

    def reread_config(self) -> dict:
        """Read the mlo.toml files again (``config`` is read once, when the workspace is opened); for long-lived
        processes that act on settings edited meanwhile, such as alert rules."""
        self.config = _config.load(self.home, DIRNAME) if self.home.is_dir() else {}
        return self.config

    @cached_property
    def db(self):
        from .store.db import Database

        db = Database(self.store_url, on_empty=self._refuse_empty_next_to_blobs)
        if not db.read_only:
            self._sweep_temp_files()
        return db

    def _sweep_temp_files(self) -> None:
        """Remove the temp files that writes cut short (a killed process) left in the blob store."""
        removed = self.open_blobs().sweep_temp()
        if removed:
            log.info(
                "mlo: removed %d temp file(s) (%d bytes) left by writes that were cut short",
                len(removed),
                sum(t.size for t in removed),
            )

    def _refuse_empty_next_to_blobs(self, db) -> None:
        """Called before a schema is created: refuse when blobs exist, for then the records were lost."""
        from .store.faults import EMPTY, fault, redact

        blobs = self.open_blobs()
        if not blobs.has_blobs():
            return
        if db.path is not None:
            size = db.path.stat().st_size if db.path.exists() else None
            state = (
                "is missing"
                if size is None
                else "is empty (0 bytes)"
                if size == 0
                else f"has no tables ({size} bytes)"
            )
            where = str(db.path)
        else:
            state, where = "has no tables", redact(self.store_url)
        raise fault(
            EMPTY,
            f"the metadata database {where} {state}, but the blob store {blobs.root} holds blobs: the records "
            "of this workspace were lost. Restore the database from a backup; mlo will not create an empty one "
            f"over existing data (to start afresh all the same, move {blobs.root} away)",
        )

    @cached_property
    def runs(self):
        from .store.listing_cache import path_for
        from .store.runs import RunStore

        return RunStore(self.db, listing_cache=path_for(self.home, self.store_url))

    def open_blobs(self):
        """A new handle on the blob store (an object store's local cache is ``<home>/cache/blobs``)."""
        return open_blobs(self.home, self.artifacts_url, self.config)

    @cached_property
    def blobs(self):
        self.db  # noqa: B018 - the database is checked first: a blob is never written next to lost records
        return self.open_blobs()

    @cached_property
    def reports(self):
        from .store.reports import ReportStore

        return ReportStore(self.db, self.blobs)

    @cached_property
    def snapshots(self):
        from .store.snapshots import SnapshotStore

        return SnapshotStore(self.db, self.lineage)

    @cached_property
    def stage_cache(self):
        from .store.pipelines import StageCache

        return StageCache(self.db)

    @cached_property
    def traces(self):
        from .store.traces import TraceStore

        return TraceStore(self.db)

    @cached_property
    def lineage(self):
        from .store.lineage import LineageStore

        return LineageStore(self.db, paused=reproducing() is not None)

    @cached_property
    def features(self):
        from .store.features import FeatureStore

        return FeatureStore(self.db, self.lineage)

    @cached_property
    def models(self):
        from .store.models import ModelStore

        return ModelStore(self.db)

    def __repr__(self) -> str:
        return f"Workspace(home={str(self.home)!r}, store={_redact(self.store_url)!r})"


def _redact(url: str) -> str:
    """Hide a password in a database URL before showing it."""
    from .store.faults import redact

    return redact(url)


def reproducing() -> str | None:
    """The id of the run this process replays for ``mlo reproduce`` (``MLO_REPRODUCTION``), else None.

    A reproduction never changes what the shared workspace means: it registers no model versions, moves no
    aliases, adds no snapshot versions and no lineage, and starts no reproduction of its own; its runs are
    tagged ``mlo.reproduces`` and kept out of default listings.
    """
    return os.environ.get("MLO_REPRODUCTION") or None


@contextmanager
def using(home: str | os.PathLike) -> Iterator[Path]:
    """Make ``home`` the workspace in force for the code running in this context only (a thread, a task, a
    request), leaving ``MLO_HOME`` and the rest of the process alone: what a server uses to answer from the
    workspace of its root folder without changing where later kernels write."""
    token = _home_here.set(Path(home))
    try:
        yield Path(home)
    finally:
        _home_here.reset(token)


def find_home(start: str | os.PathLike | None = None) -> Path | None:
    """The workspace folder in force: the one :func:`using` set for this context, ``MLO_HOME``, or the nearest
    ``.mlo/`` upward from ``start``."""
    here = _home_here.get()
    if here is not None:
        return here
    env = os.environ.get("MLO_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DIRNAME
        if candidate.is_dir():
            return candidate
    return None


def store_urls(home: Path, config: dict) -> tuple[str, str]:
    """``(metadata URL, blob store URL)`` of the workspace at ``home``: the environment, else ``[store]``, else
    the defaults inside ``home``."""
    store_cfg = config.get("store", {}) if isinstance(config.get("store"), dict) else {}
    store_url = os.environ.get("MLO_STORE") or store_cfg.get("url") or f"sqlite:///{home / 'mlo.db'}"
    artifacts = os.environ.get("MLO_ARTIFACTS") or store_cfg.get("artifacts") or str(home / "blobs")
    return store_url, artifacts


def open_blobs(home: Path, artifacts_url: str, config: dict):
    """The blob store of the workspace at ``home``; an object store is cached in ``<home>/cache/blobs`` within
    ``[store] cache_size``."""
    from .store.blobs import open_blob_store

    store_cfg = config.get("store", {}) if isinstance(config.get("store"), dict) else {}
    return open_blob_store(artifacts_url, home / "cache" / "blobs", store_cfg.get("cache_size"))


def _resolve(home: Path) -> Workspace:
    config = _config.load(home, DIRNAME) if home.is_dir() else {}
    store_url, artifacts = store_urls(home, config)
    key = (str(home), store_url, artifacts)
    with _lock:
        ws = _cache.get(key)
        if ws is None:
            ws = _cache[key] = Workspace(home, store_url, artifacts, config)
        return ws


def init(path: str | os.PathLike = ".") -> Workspace:
    """Create (or open) a workspace in ``path`` and return it.

    ``path`` is the project folder; the workspace lives in ``path/.mlo``. When ``MLO_HOME`` is set it wins.
    """
    env = os.environ.get("MLO_HOME")
    home = Path(env).expanduser().resolve() if env else Path(path).expanduser().resolve() / DIRNAME
    if home.exists() and not home.is_dir():
        raise InvalidInput(f"{home} exists and is not a folder; move it away or set MLO_HOME")
    try:
        home.mkdir(parents=True, exist_ok=True)
        gitignore = home / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# mlo workspace data: runs, blobs\n*\n!.gitignore\n!mlo.toml\n")
    except OSError as exc:
        from .store.faults import os_fault

        raise os_fault(exc, home, "creating the workspace") or exc from None
    ws = _resolve(home)
    ws.db  # noqa: B018  (create the schema now so `mlo init` leaves a usable store)
    return ws


def current(create: bool = True) -> Workspace:
    """The workspace in force for this process; with ``create``, one is made in the working folder if none."""
    home = find_home()
    if home is None or not home.exists():
        if not create:
            from .errors import NotFound

            raise NotFound("no mlo workspace here: run `mlo init` (or mlo.init()) or set MLO_HOME")
        return init(".")
    return _resolve(home)


def reset_cache() -> None:
    """Forget opened workspaces (tests and long-lived servers that switch folders)."""
    with _lock:
        for ws in _cache.values():
            if "db" in ws.__dict__:
                ws.db.dispose()
        _cache.clear()
