"""The ``trained`` fixture: a model trained on a recorded snapshot, ready to log predictions."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from monitor_data import Trained  # noqa: E402


@pytest.fixture
def trained(sqlite_ws):
    return Trained(np.random.default_rng(0))
