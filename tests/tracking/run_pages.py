"""Pages of a run listing against slices of the whole listing (imported by the query tests)."""

from __future__ import annotations

import pandas as pd

import mlo


def assert_pages_are_slices(kwargs: dict, pages, **scope) -> None:
    """Each ``(offset, limit)`` page of ``mlo.runs(**scope, **kwargs)`` is that slice of the whole listing: the
    same rows and values, the same total; without ``columns=``, key columns come from the runs of the page."""
    whole = mlo.runs(**scope, **kwargs)
    for offset, limit in pages:
        page = mlo.runs(limit=limit, offset=offset, **scope, **kwargs)
        assert page.attrs["total"] == len(whole)
        expected = whole.iloc[offset : offset + limit].reset_index(drop=True)
        if "columns" not in kwargs:
            assert expected.drop(columns=page.columns).isna().all().all()
            expected = expected[list(page.columns)]
        pd.testing.assert_frame_equal(
            page.drop(columns="duration", errors="ignore"),
            expected.drop(columns="duration", errors="ignore"),
            check_dtype=False,
        )
