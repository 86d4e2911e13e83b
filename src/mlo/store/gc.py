"""``mlo gc``: remove what is safe to remove from a workspace — temp files of writes that were cut short, and blobs
that no record refers to — while other processes go on writing.

The race it must not lose: a writer stores a blob, then commits the record that names it. Between the two, the blob
is referred to by nothing. Three rules keep such a blob:

1. **Grace.** A blob whose file changed less than ``grace`` seconds before the collection started is kept. A writer
   that stores content that is already there refreshes the blob's time (:meth:`LocalBlobStore.claim`), so this
   holds for reused blobs too.
2. **Move, look again, then delete.** A candidate is first renamed into a private trash folder. A writer that
   claimed it before the rename left a fresh time on it (seen after the rename: it goes back); a writer that claims
   it after the rename finds nothing and writes the blob anew. Then the references are read a second time, and
   anything that a record now names goes back.
3. **One collector at a time**, under a lock in the blob store; the trash of a collector that was killed is
   restored or emptied by the next one.

A step that makes more garbage first (say, purging soft-deleted runs) is named in :data:`PURGE_STEPS` and runs
before the sweep, so the blobs it frees go in the same collection.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from . import addresses, faults
from .blobs import LocalBlobStore, _try_lock
from .references import references

if TYPE_CHECKING:
    from ..workspace import Workspace

DEFAULT_GRACE = 24 * 3600.0
TRASH_PREFIX = "gc-"

# ``(name, "module:function")``: steps that run before the sweep; ``function(ws, dry_run=...)`` returns a
# :class:`StepResult` (or a dict of its fields). Listed by name so that nothing is imported unless gc runs.
PURGE_STEPS: list[tuple[str, str]] = [
    (
        "deleted runs",
        "mlo.tracking.lifecycle:purge_step",
    ),  # deleted over 30 days ago (mlo.tracking.lifecycle)
    ("abandoned eval checkpoints", "mlo.llm.eval_gc:gc_step"),  # .mlo/evals untouched for 7 days
    ("feature leftovers", "mlo.features.spill:gc_step"),  # spill folders of killed processes, old cache files
]


@dataclass
class StepResult:
    """What one step of a collection found and removed."""

    name: str
    found: int = 0
    removed: int = 0
    bytes: int = 0  # of what was (or, on a dry run, would be) removed
    kept: int = 0  # found but kept (live temp files, recent or re-claimed blobs)
    note: str = ""


@dataclass
class GcReport:
    """The result of :func:`collect`: one :class:`StepResult` per step."""

    dry_run: bool
    grace_seconds: float
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def removed_bytes(self) -> int:
        return sum(s.bytes for s in self.steps)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace_seconds": self.grace_seconds,
            "seconds": round(self.seconds, 3),
            "removed_bytes": self.removed_bytes,
            "steps": [asdict(s) for s in self.steps],
        }


@contextmanager
def _collector_lock(root: Path):
    """The one-collector-at-a-time lock of a blob store."""
    tmp = root / "tmp"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise faults.blob_fault(exc, root, "starting a garbage collection") or exc from None
    try:
        if _try_lock(fd) is False:
            raise InvalidInput(f"another mlo gc is running on {root}; wait for it to finish")
        yield
    finally:
        os.close(fd)


def _references(ws: Workspace) -> set[str]:
    with ws.db.snapshot() as conn:
        refs, problems = references(conn, lambda d: ws.blobs.get_bytes(d))
    if problems:
        raise faults.fault(
            faults.MISSING,
            f"cannot tell which blobs are garbage: {problems[0]}; nothing was removed (`mlo doctor` lists what is "
            "wrong; restore the missing blobs first)",
        )
    return set(refs)


def _restore(trashed: Path, final: Path | str) -> None:
    os.makedirs(os.path.dirname(final), exist_ok=True)
    os.replace(trashed, final)  # a writer may have stored it again meanwhile: the same bytes


def _recover_trash(ws: Workspace, refs: set[str], cutoff: float, dry_run: bool) -> StepResult:
    """The trash of a collector that was killed: what a record names or a writer claimed goes back, the rest is
    removed."""
    result = StepResult("trash of an interrupted gc")
    tmp = ws.blobs.root / "tmp"
    folders = [p for p in tmp.glob(f"{TRASH_PREFIX}*") if p.is_dir()] if tmp.is_dir() else []
    for folder in folders:
        for f in folder.iterdir():
            digest = addresses.from_flat(f.name)  # the trash holds blobs under their flat names
            result.found += 1
            if digest is not None and (digest in refs or f.stat().st_mtime >= cutoff):
                result.kept += 1
                if not dry_run:
                    _restore(f, ws.blobs.path(digest))
                continue
            result.bytes += f.stat().st_size
            result.removed += 1
            if not dry_run:
                f.unlink()
        if not dry_run:
            folder.rmdir()
    return result


def _purge(ws: Workspace, dry_run: bool) -> list[StepResult]:
    out = []
    for name, target in PURGE_STEPS:
        module, _, func = target.partition(":")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
        res = fn(ws, dry_run=dry_run)
        out.append(res if isinstance(res, StepResult) else StepResult(name=name, **dict(res)))
    return out


def _temp_files(ws: Workspace, dry_run: bool) -> StepResult:
    result = StepResult("temp files")
    temps = ws.blobs.temp_files()
    result.found = len(temps)
    result.kept = sum(t.live for t in temps)
    if dry_run:
        left = [t for t in temps if not t.live]
        result.removed, result.bytes = len(left), sum(t.size for t in left)
    else:
        removed = ws.blobs.sweep_temp()
        result.removed, result.bytes = len(removed), sum(t.size for t in removed)
        result.kept = result.found - result.removed
    return result


def _stale(blobs, refs: set[str], cutoff: float, claims: dict, result: StepResult, dry_run: bool) -> list:
    """The unreferenced blobs last written (or claimed) before ``cutoff``, counted into ``result``; on a dry run
    they are counted as removed and none is returned to remove."""
    candidates = []
    for b in blobs:
        if b.digest in refs:
            continue
        result.found += 1
        if b.mtime >= cutoff or claims.get(b.digest, 0.0) >= cutoff:
            result.kept += 1
        else:
            candidates.append(b)
    if dry_run:
        result.removed, result.bytes = len(candidates), sum(b.size for b in candidates)
        return []
    return candidates


def _blobs(ws: Workspace, refs: set[str], started: float, grace: float, dry_run: bool) -> StepResult:
    result = StepResult("unreferenced blobs")
    cutoff = started - grace
    candidates = _stale(ws.blobs.iter_blobs(), refs, cutoff, {}, result, dry_run)
    if not candidates:
        return result
    trash = ws.blobs.root / "tmp" / f"{TRASH_PREFIX}{os.getpid()}-{int(started)}"
    trash.mkdir(parents=True, exist_ok=True)
    moved: list[tuple[Path, str, int]] = []
    for b in candidates:
        target = trash / addresses.flat(b.digest)
        try:
            os.rename(b.path, target)
        except FileNotFoundError:  # removed meanwhile
            continue
        st = target.stat()
        if st.st_mtime >= cutoff:  # claimed by a writer just before the rename
            _restore(target, b.path)
            result.kept += 1
            continue
        moved.append((target, b.path, st.st_size))
    again = _references(ws)  # records committed while the candidates were moved
    for target, final, size in moved:
        if addresses.from_flat(target.name) in again:
            _restore(target, final)
            result.kept += 1
            continue
        target.unlink()
        result.removed += 1
        result.bytes += size
    trash.rmdir()
    for top in {os.path.dirname(final) for _, final, _ in moved}:
        try:
            os.rmdir(top)  # only when empty
        except OSError:
            pass
    return result


def _remote_blobs(ws: Workspace, refs: set[str], started: float, grace: float, dry_run: bool) -> StepResult:
    """Unreferenced objects of an object store: kept while recent or freshly claimed; the references are read
    again just before deleting (no rename to hide behind, unlike on disk)."""
    result = StepResult("unreferenced blobs")
    cutoff = started - grace
    claims = ws.blobs.claims()
    candidates = _stale(ws.blobs.iter_blobs(), refs, cutoff, claims, result, dry_run)
    if dry_run:
        return result
    again = _references(ws) if candidates else refs
    claims = ws.blobs.claims() if candidates else claims
    for b in candidates:
        if b.digest in again or claims.get(b.digest, 0.0) >= cutoff:
            result.kept += 1
            continue
        ws.blobs.remove(b.digest)
        result.removed += 1
        result.bytes += b.size
    for digest, when in claims.items():  # markers past their grace protect nothing any more
        if when < cutoff:
            ws.blobs.remove_claim(digest)
    return result


def _unfinished_uploads(ws: Workspace, started: float, grace: float, dry_run: bool) -> StepResult:
    """Multipart uploads of writers that were killed: invisible, but billed until aborted."""
    result = StepResult("unfinished uploads")
    for u in ws.blobs.unfinished_uploads():
        result.found += 1
        if u["started"] >= started - grace:  # maybe a writer uploading now
            result.kept += 1
            continue
        result.removed += 1
        if not dry_run:
            ws.blobs.abort_upload(u)
    return result


def collect(ws: Workspace, *, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> GcReport:
    """Remove temp files of writes that were cut short and blobs that no record refers to (and that are older
    than ``grace`` seconds). With ``dry_run``, only count them. Safe while other processes write."""
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        raise InvalidInput(f"grace must be a number of seconds >= 0, got {grace!r}")
    if ws.db.read_only:
        ws.db._refuse_write()
    t0 = time.perf_counter()
    started = time.time()
    report = GcReport(dry_run=dry_run, grace_seconds=float(grace))
    try:
        local = isinstance(ws.blobs, LocalBlobStore)
        with _collector_lock(ws.blobs.root if local else ws.blobs.cache.root):
            report.steps += _purge(ws, dry_run)
            refs = _references(ws)
            if local:
                report.steps.append(_recover_trash(ws, refs, started - grace, dry_run))
            else:
                report.steps.append(_unfinished_uploads(ws, started, grace, dry_run))
            report.steps.append(_temp_files(ws, dry_run))
            sweep = _blobs if local else _remote_blobs
            report.steps.append(sweep(ws, refs, started, grace, dry_run))
    except OSError as exc:
        raise faults.blob_fault(exc, ws.blobs.root, "collecting garbage") or exc from None
    report.seconds = time.perf_counter() - t0
    return report
