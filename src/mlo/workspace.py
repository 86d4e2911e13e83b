"""Finding and creating the workspace: the nearest ``.mlo/`` upward (like git), or ``MLO_HOME``.

Configuration comes from the environment (``MLO_HOME``, ``MLO_STORE``, ``MLO_ARTIFACTS``) and from an optional
``mlo.toml`` in the workspace folder, with the environment winning.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import InvalidInput

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DIRNAME = ".mlo"
CONFIG_NAME = "mlo.toml"

_lock = threading.Lock()
_cache: dict[tuple, Workspace] = {}


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
        self.config = _load_config(self.home) if self.home.is_dir() else {}
        return self.config

    @cached_property
    def db(self):
        from .store.db import Database

        return Database(self.store_url)

    @cached_property
    def runs(self):
        from .store.runs import RunStore

        return RunStore(self.db)

    @cached_property
    def blobs(self):
        from .store.blobs import open_blob_store

        return open_blob_store(self.artifacts_url)

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
    def lineage(self):
        from .store.lineage import LineageStore

        return LineageStore(self.db, paused=reproducing() is not None)

    @cached_property
    def models(self):
        from .store.models import ModelStore

        return ModelStore(self.db)

    def __repr__(self) -> str:
        return f"Workspace(home={str(self.home)!r}, store={_redact(self.store_url)!r})"


def _redact(url: str) -> str:
    """Hide a password in a database URL before showing it."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


def reproducing() -> str | None:
    """The id of the run this process replays for ``mlo reproduce`` (``MLO_REPRODUCTION``), else None.

    A reproduction never changes what the shared workspace means: it registers no model versions, moves no
    aliases, adds no snapshot versions and no lineage, and starts no reproduction of its own; its runs are
    tagged ``mlo.reproduces`` and kept out of default listings.
    """
    return os.environ.get("MLO_REPRODUCTION") or None


def find_home(start: str | os.PathLike | None = None) -> Path | None:
    """The workspace folder in force: ``MLO_HOME`` or the nearest ``.mlo/`` upward from ``start``."""
    env = os.environ.get("MLO_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DIRNAME
        if candidate.is_dir():
            return candidate
    return None


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML ({exc}); fix or delete it") from None


def _load_config(home: Path) -> dict:
    """``mlo.toml`` of the project (the folder holding ``.mlo/``, checked into git: policies, trusted types) and of
    the workspace itself (``.mlo/mlo.toml``: local settings such as the store); the workspace's wins, per table."""
    config = _read_toml(home.parent / CONFIG_NAME) if home.name == DIRNAME else {}
    for key, value in _read_toml(home / CONFIG_NAME).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def _resolve(home: Path) -> Workspace:
    config = _load_config(home) if home.is_dir() else {}
    store_cfg = config.get("store", {}) if isinstance(config.get("store"), dict) else {}
    store_url = os.environ.get("MLO_STORE") or store_cfg.get("url") or f"sqlite:///{home / 'mlo.db'}"
    artifacts = os.environ.get("MLO_ARTIFACTS") or store_cfg.get("artifacts") or str(home / "blobs")
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
    home.mkdir(parents=True, exist_ok=True)
    gitignore = home / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# mlo workspace data: runs, blobs\n*\n!.gitignore\n!mlo.toml\n")
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
