"""Capped totals: ``mlo.runs(limit=…, count_up_to=N)`` counts the matches only up to N (or the page's end), as a
search engine does, on SQLite and PostgreSQL; the page itself is the slice of the whole listing whatever the
cap, and ``attrs["total_exact"]`` says whether the total is every match or a lower bound. The REST runs page
counts up to ``COUNT_UP_TO`` unless asked for the exact count."""

from __future__ import annotations

import pytest

import mlo
from mlo.errors import InvalidInput
from mlo.ui import api

CASES = [  # (filter and order, whether the database answers it: a count it can cap)
    ({}, True),
    ({"where": "params.i < 4"}, True),  # fewer matches than any cap
    ({"where": "params.i >= 4"}, True),
    ({"where": "params.parity = 'odd'"}, True),
    ({"where": "not params.parity != 'odd'"}, True),  # the not pushed in where every run has the key
    ({"where": "not (params.parity = 'odd' or tags.team = 'a')"}, True),
    ({"where": "params.parity like 'o%' and (metrics.acc > 0.3 or params.i = 2)"}, True),
    ({"where": "metrics.acc > 0.2"}, True),
    ({"where": "metrics.acc is null or params.i > 20"}, True),
    ({"order_by": "metrics.acc desc"}, True),
    ({"order_by": "params.i desc", "where": "tags.team = 'b'"}, True),
    ({"order_by": "tags.team"}, True),
    ({"order_by": ["metrics.acc", "start_time desc"]}, True),
    ({"where": "name ilike 'R1%'"}, False),  # evaluated in Python: counted exactly all the same
]


@pytest.fixture
def big(ws):
    with mlo.start_run("elsewhere", experiment="other", params={"i": -1, "parity": "odd"}):
        mlo.log_metric("acc", 0.9)
    for i in range(25):
        params = {"i": i, "parity": "odd" if i % 2 else "even"}
        with mlo.start_run(f"r{i}", experiment="big", params=params, tags={"team": "abc"[i % 3]}):
            if i % 5:
                mlo.log_metric("acc", (i * 7 % 25) / 25)
    return ws


def test_capped_pages_are_slices_of_the_listing_with_a_lower_bound(big):
    for kwargs, in_sql in CASES:
        whole = mlo.runs(experiment="big", **kwargs)
        n = len(whole)
        for cap in (5, 10, 1000):
            for offset, limit in ((0, 3), (3, 4), (12, 5), (max(0, n - 2), 5), (n + 3, 5)):
                page = mlo.runs(experiment="big", limit=limit, offset=offset, count_up_to=cap, **kwargs)
                where = f"{kwargs} count_up_to={cap} offset={offset} limit={limit}"
                assert page.run_id.tolist() == whole.run_id[offset : offset + limit].tolist(), where
                total, exact = page.attrs["total"], page.attrs["total_exact"]
                stop = max(cap, offset + limit)  # the count goes at least to the page's end
                if n < stop or not in_sql:
                    assert (total, exact) == (n, True), where
                else:
                    assert (total, exact) == (stop, False), where
        exact = mlo.runs(experiment="big", limit=3, **kwargs)
        assert (exact.attrs["total"], exact.attrs["total_exact"]) == (n, True)


def test_a_count_stopped_early_keeps_every_run_on_the_page(big):
    page = mlo.runs(limit=5, offset=24, count_up_to=3)  # past the cap: still the right page
    assert page.name.tolist() == ["r0", "elsewhere"]
    assert (page.attrs["total"], page.attrs["total_exact"]) == (26, True)  # it ended short: exact
    page = mlo.runs(limit=2, offset=10, count_up_to=3, where="params.parity = 'odd'")  # 13 match
    assert page.name.tolist() == ["r3", "r1"]
    assert (page.attrs["total"], page.attrs["total_exact"]) == (12, False)


@pytest.mark.parametrize("bad", [0, -1, True, "10", 2.5])
def test_a_bad_cap_is_a_one_line_error(big, bad):
    with pytest.raises(InvalidInput, match="count_up_to must be a positive integer") as info:
        mlo.runs(limit=5, count_up_to=bad)
    assert "\n" not in str(info.value)


def test_the_rest_page_counts_up_to_its_cap_unless_asked(big, monkeypatch):
    monkeypatch.setattr(api, "COUNT_UP_TO", 10)

    def get(**query):
        reply = api.answer(big.home, "runs", {k: [str(v)] for k, v in query.items()})
        return reply.status, reply.data

    status, body = get(experiment="big", limit=5)
    assert status == 200 and (body["total"], body["total_exact"]) == (10, False) and len(body["runs"]) == 5
    status, body = get(experiment="big", limit=5, total="exact")
    assert (body["total"], body["total_exact"]) == (25, True)
    status, body = get(experiment="big", limit=5, where="params.i < 3")
    assert (body["total"], body["total_exact"]) == (3, True)
    status, body = get(experiment="big", limit=5, offset=20)
    assert [r["name"] for r in body["runs"]] == ["r4", "r3", "r2", "r1", "r0"]
    assert (body["total"], body["total_exact"]) == (25, False)  # a lower bound: at least the page's end
    status, body = get(experiment="big", limit=5, total="some")
    assert status == 400 and body["error"] == "total takes 'exact' or 'capped', got 'some'"
