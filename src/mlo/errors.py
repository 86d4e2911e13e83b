"""The one exception hierarchy of mlo.

Every error a user can cause derives from :class:`MloError` and carries a message that says what to do.
The magics turn these into ``UsageError``; the CLI prints the one line and exits with the error's ``exit_code``:
2 for bad usage or input, 1 for :class:`GateFailed`, 3 for :class:`StoreError` (a corrupt, unreachable, full or
read-only store). In IPython and Jupyter an ``MloError`` raised from code shows as its one-line message, not a
traceback into mlo's internals; a ``GateFailed`` keeps its type, so a papermill run (and an ``mlo pipeline``)
sees the gate.
"""

from __future__ import annotations


class MloError(Exception):
    """Base class of every error mlo raises on purpose."""

    exit_code = 2

    def _render_traceback_(self) -> list[str]:  # IPython: show the message, not mlo's frames
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class InvalidInput(MloError, ValueError):
    """An argument, a file or a query that mlo cannot accept as given."""


class NotFound(MloError, LookupError):
    """A run, experiment, artifact or other record that does not exist."""


class AmbiguousRef(InvalidInput):
    """A short id or prefix that matches more than one record."""


class StoreError(MloError):
    """A fault of the store: the metadata database or the blob store is corrupt, unreachable, full or read-only,
    its schema is newer than this mlo, or a blob it records is missing. ``kind`` names the fault (see
    :mod:`mlo.store.faults`); the message says what happened and what to do. Exit code 3 in the CLI."""

    exit_code = 3
    kind = "store"


class CorruptBlob(StoreError):
    """A stored blob whose content no longer matches its digest."""

    kind = "corrupt"


class MissingBlob(StoreError, NotFound):
    """A blob that a record refers to and that is not in the blob store."""

    kind = "missing"


class GateFailed(MloError):
    """A validation or drift gate failed: the pipeline or CLI should stop with exit code 1."""

    exit_code = 1
