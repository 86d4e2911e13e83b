"""The whole listing kept in memory between calls while the SQLite database is unchanged (mlo.tracking.query's
_Memo over RunStore.change_token): pages and listings answered from it equal those the database answers, and
any commit (this process, another process, another connection) voids it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from test_query_sql import PYTHON, SQL, many  # noqa: F401 (many: the fixture)

import mlo
from mlo.errors import InvalidInput

PAGES = ((0, 3), (3, 4), (10, 5))


@pytest.fixture
def ws(sqlite_ws):
    """SQLite alone: PostgreSQL cannot tell cheaply that nothing changed, so its pages come from the database
    (RunStore.change_token is None there)."""
    return sqlite_ws


@pytest.fixture
def memo_ws(many, monkeypatch):  # noqa: F811 (the imported fixture)
    monkeypatch.setattr(many.runs, "CACHE_MIN_RUNS", 0)
    return many


def _page(store, memo: bool, **kwargs):
    if not memo:
        store.listing_memo = {}
    try:
        return mlo.runs(experiment="big", **kwargs)
    except InvalidInput as exc:
        return str(exc)


def _same(a, b) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    pd.testing.assert_frame_equal(
        a.drop(columns="duration", errors="ignore"), b.drop(columns="duration", errors="ignore")
    )
    assert a.attrs == b.attrs


def test_pages_from_memory_equal_pages_from_the_database(memo_ws):
    store = memo_ws.runs
    for kwargs in SQL + PYTHON:
        for offset, limit in PAGES:
            expected = _page(store, False, offset=offset, limit=limit, **kwargs)
            whole = mlo.runs(experiment="big")  # kept in memory
            assert store.listing_memo
            got = _page(store, True, offset=offset, limit=limit, **kwargs)
            try:
                _same(got, expected)
            except AssertionError as exc:
                raise AssertionError(f"{kwargs} {offset, limit}: {exc}") from exc
        _same(mlo.runs(experiment="big"), whole)


def test_any_commit_voids_the_listing_in_memory(memo_ws, tmp_path):
    store = memo_ws.runs
    first = mlo.runs(experiment="big")
    run_id = first["run_id"].iloc[0]
    token = store.change_token()
    assert store.change_token() == token  # nothing changed
    store.set_tags(run_id, {"team": "here"})  # this process
    assert store.change_token() != token
    assert mlo.runs(experiment="big", limit=1, where="tags.team = 'here'")["run_id"].tolist() == [run_id]
    mlo.runs(experiment="big")
    code = textwrap.dedent(
        f"""
        import mlo
        mlo.workspace.current().runs.set_tags({run_id!r}, {{"team": "there"}})
        """
    )
    env = {**os.environ, "MLO_SYSTEM_METRICS": "0"}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True, timeout=120)
    page = mlo.runs(experiment="big", limit=5, where="tags.team = 'there'")
    assert page["run_id"].tolist() == [run_id] and page.attrs["total"] == 1
    assert mlo.runs(experiment="big").set_index("run_id").loc[run_id, "tags.team"] == "there"


def test_frames_handed_out_leave_the_kept_one_alone(memo_ws):
    first = mlo.runs(experiment="big")
    kept = first.copy(deep=True)
    first.loc[0, "name"] = "edited"
    first["params.lr"] = -1.0
    first["mine"] = 1
    again = mlo.runs(experiment="big")
    _same(again, kept)
    del again["name"]
    _same(mlo.runs(experiment="big"), kept)


def test_only_sqlite_has_a_change_token(ws):
    """PostgreSQL has no cheap change check, so its pages always come from the database."""
    token = ws.runs.change_token()
    assert (token is None) == (ws.db.dialect == "postgresql")


def test_a_running_run_has_its_duration_as_of_now(memo_ws):
    import time

    with mlo.start_run("live", experiment="big"):
        mlo.runs(experiment="big")
        time.sleep(0.3)
        live = mlo.runs(experiment="big").set_index("name").loc["live", "duration"]
        assert live >= 0.3
