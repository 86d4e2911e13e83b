"""Schema migrations: one function per version step, applied in order under the store's write lock.

A fresh store is created directly at the newest version (``schema.metadata.create_all``); these steps only
bring an older store forward, so each must leave the database exactly as ``create_all`` would.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from ..errors import StoreError


def _add_missing_tables(conn: Connection) -> None:
    """A purely additive step: create the tables that this version introduced."""
    from . import schema

    schema.metadata.create_all(conn, checkfirst=True)


# version reached -> step from the version before it
STEPS: dict[int, Callable[[Connection], None]] = {
    2: _add_missing_tables,  # snapshots, lineage, reports, file_digests
}


def upgrade(conn: Connection, current: int, target: int) -> None:
    for version in range(current + 1, target + 1):
        step = STEPS.get(version)
        if step is None:
            raise StoreError(f"no migration to schema version {version}; upgrade mlo-workbench")
        step(conn)
