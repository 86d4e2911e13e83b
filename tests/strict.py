"""Strict mode: MLO_TEST_STRICT=1 (set by .ci/run) turns a missing-dependency skip into a failure, so CI
notices a missing install step. Import ``need`` from here (``from strict import need``)."""

from __future__ import annotations

import os

import pytest

STRICT = os.environ.get("MLO_TEST_STRICT") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip (or, in strict mode, fail) when a real dependency of the test is missing."""
    if not condition:
        if STRICT:
            pytest.fail(f"MLO_TEST_STRICT=1: {reason}", pytrace=False)
        pytest.skip(reason)
