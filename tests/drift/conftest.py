"""Fixtures of the drift tests: two frames with known shifts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def mixed_frames():
    """A reference and a current frame with 6 numeric and 2 categorical columns; 3 numeric columns shift."""
    n = 4000

    def frame(shift: float, seed: int) -> pd.DataFrame:
        r = np.random.default_rng(seed)
        data = {f"n{i}": r.normal(shift if i < 3 else 0.0, 1.0, n) for i in range(6)}
        data["city"] = r.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2])
        data["flag"] = r.random(n) < 0.3
        return pd.DataFrame(data)

    return frame(0.0, 1), frame(0.6, 2)
