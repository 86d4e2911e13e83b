"""Feature tests: a transactions snapshot and a row-wise feature view over it."""

from __future__ import annotations

import pytest

from strict import need

try:
    import duckdb  # noqa: F401
except ImportError:
    duckdb = None


@pytest.fixture(autouse=True)
def _duckdb():
    need(duckdb is not None, "duckdb is not installed (pip install 'mlo-workbench[features]')")
