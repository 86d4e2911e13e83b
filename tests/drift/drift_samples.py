"""Seeded samples for the statistics tests: ties, heavy tails, tiny and large sizes."""

from __future__ import annotations

import numpy as np


def samples(kind: str, n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(shift, 1.0, n)
    if kind == "ties":  # few distinct values, many ties within and across samples
        return rng.integers(0, 7, n).astype(float) + shift
    if kind == "cauchy":  # heavy tails
        return rng.standard_cauchy(n) + shift
    if kind == "lognormal":
        return rng.lognormal(shift, 2.0, n)
    if kind == "pareto":
        return rng.pareto(1.1, n) + shift
    if kind == "rounded":  # continuous but on a grid: ties across samples
        return np.round(rng.normal(shift, 3.0, n), 1)
    raise ValueError(kind)


KINDS = ["normal", "ties", "cauchy", "lognormal", "pareto", "rounded"]
# (reference size, current size): tiny, unequal, the exact/asymptotic KS boundary, large
SIZES = [
    (1, 1),
    (1, 5),
    (3, 2),
    (7, 13),
    (50, 50),
    (300, 1000),
    (10_000, 9_000),
    (12_000, 30_001),
    (200_000, 150_000),
]
