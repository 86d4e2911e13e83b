"""Short run ids: the shortest prefix of the id that names one run in the whole store, the same length for every
run of a table (at least :data:`MIN_LENGTH` characters). Every command and function that takes a run id takes
such a prefix, so a short id copied from a table, a widget or the lab panel works anywhere.

Ids start with their creation time, so runs started apart get short prefixes; runs started in the same instant
need a few more characters. A prefix once unique stays unique: later runs have later times.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..store.ids import common_prefix

MIN_LENGTH = 8


def short_length(run_ids: Iterable[str], ws=None) -> int:
    """The prefix length that tells every run of ``run_ids`` apart from every other run in the store."""
    ids = [i for i in run_ids if isinstance(i, str) and i]
    if not ids:
        return MIN_LENGTH
    if ws is None:
        from .. import workspace

        try:
            ws = workspace.current(create=False)
        except Exception:  # no workspace (a frame from elsewhere): unique among the ids given
            ws = None
    if ws is not None:
        return ws.runs.prefix_length(ids, MIN_LENGTH)
    length = MIN_LENGTH
    ordered = sorted(set(ids))
    for a, b in zip(ordered, ordered[1:], strict=False):
        length = max(length, common_prefix(a, b) + 1)
    return length


def short_id(run_id: str, ws=None) -> str:
    """The short id of one run (see :func:`short_length`)."""
    return run_id[: short_length([run_id], ws)]


def short_ids(run_ids: Iterable[str | None], ws=None) -> dict[str, str]:
    """Each run id of ``run_ids`` → its short id (see :func:`short_length`)."""
    ids = [i for i in run_ids if isinstance(i, str) and i]
    n = short_length(ids, ws)
    return {i: i[:n] for i in ids}
