"""Pages of run listings that the database filters and orders (mlo.store.run_filter) are slices of the whole
listing that pandas filters and orders, on SQLite and PostgreSQL: numbers and strings under param keys, NaN
and missing values, numbers stored as strings, code point order of unicode, and hostile values in filters."""

from __future__ import annotations

import pytest
from run_pages import assert_pages_are_slices

import mlo
from mlo.errors import InvalidInput
from mlo.store.run_filter import RunFilter
from mlo.tracking import where as where_mod

OPTS = [
    "adam",
    "Adam",
    "ädam",
    "z",
    "a b",
    "a",
    "a!",
    'quo"te',
    "back\\slash",
    "new\nline",
    "O'Brien",
    "日本",
]


@pytest.fixture
def many(ws):
    with mlo.start_run("elsewhere", experiment="other", params={"lr": "fast", "opt": 3}, tags={"team": "x"}):
        mlo.log_metric("acc", 2.0)
    lrs = [0.1, 1, 1e-3, 10, -2.5, 1.0, 0.1, 3, None, 2e-5, 0.5, 7]
    accs = [0.9, float("nan"), 0.3, None, 0.5, 0.7, 0.1, 0.3, 0.95, None, 0.2, 0.6]
    teams = ["core", "édge", None, "Core", "edge", "core", None, "c%re", "", "x' OR '1'='1", "core", "Édge"]
    for i, opt in enumerate(OPTS):
        params = {"opt": opt, "num_str": str(10 - i), "mixed": 1 if i % 2 else "one"}
        if lrs[i] is not None:
            params["lr"] = lrs[i]
        tags = {} if teams[i] is None else {"team": teams[i]}
        with mlo.start_run(f"r{i}", experiment="big", params=params, tags=tags):
            if accs[i] is not None:
                mlo.log_metric("acc", accs[i])
    return ws


SQL = [
    {"where": "params.lr > 0.05"},
    {"where": "params.lr = 1"},
    {"where": "params.lr in (1, '10', 0.1)"},
    {"where": "params.lr != 0.1 and params.lr <= '3'"},
    {"where": "params.opt = 'adam'"},
    {"where": "params.opt > 'a'", "order_by": "params.opt desc"},
    {"where": "params.opt like 'a%'"},
    {"where": "params.opt like '%\n%' or params.opt like '_'"},
    {"where": "params.opt != 'adam'"},
    {"where": "not params.opt = 'adam'"},
    {"where": "params.opt in ('z', 'quo\"te', 'back\\\\slash', '日本')"},
    {"where": "params.num_str = '10'"},
    {"where": "params.num_str < '5'"},  # strings: '10' < '5'
    {"where": "params.nope = 1 or params.nope is null"},
    {"where": "tags.team = 'core'"},
    {"where": "tags.team in ('core', 'édge') or tags.team is null"},
    {"where": "tags.team like '_dge'"},
    {"where": "not tags.team like 'c%'"},
    {"where": "tags.team = 'x'' OR ''1''=''1'"},
    {"where": "tags.team = 'c%re' or tags.team = ''"},
    {"where": "metrics.acc > 0.3 and params.opt is not null"},
    {"where": "metrics.acc is null or params.lr < 0"},
    {"where": "not (metrics.acc >= 0.5 or tags.team = 'core')"},
    {"where": "name like 'r1%' and status = 'FINISHED'"},
    {"where": "params.opt = 'x''); DROP TABLE runs; --'"},
    # a not pushed inward: De Morgan, and (where every run has the key) into the comparison
    {"where": "not params.opt != 'adam'"},
    {"where": "not not params.opt = 'adam'"},
    {"where": "not params.opt in ('z', 'a', 'adam')"},
    {"where": "not (params.opt > 'a' and tags.team = 'core')"},
    {"where": "not (params.opt < 'b' or metrics.acc > 0.5)"},
    {"where": "not params.lr in (1, 0.1)"},  # a run lacks lr: kept whole
    {"where": "not params.lr >= 1"},
    {"where": "not params.num_str < '5'"},
    {"where": "not params.nope = 1"},
    {"where": "not tags.team != 'core'"},  # runs without the tag
    # like with a literal prefix also bounds the index
    {"where": "params.opt like 'ä%'"},
    {"where": "params.opt like 'back\\%' or params.opt like 'new\n%'"},
    {"where": "params.opt like 'quo\"%'"},
    {"where": "tags.team like 'É%' or tags.team like 'c_'"},
    {"where": "params.opt like '日本'"},
    {"where": 'tags.team = "\\"; DROP TABLE runs; --"'},
    {"order_by": "params.lr desc"},
    {"order_by": "params.lr"},
    {"order_by": "params.opt"},
    {"order_by": "tags.team desc"},
    {"order_by": ["params.num_str", "metrics.acc desc"]},
    {"order_by": "metrics.acc", "where": "params.lr >= 0.1"},
    {"order_by": "params.opt", "columns": ["params.opt", "metrics.acc"]},
    # an order by a param under a filter: the page's last value is looked for further until enough listed runs
    {"order_by": "params.lr desc", "where": "tags.team = 'core'"},
    {"order_by": "params.opt", "where": "params.lr > 0.05 or metrics.acc < 0.5"},
]
PYTHON = [  # left to pandas (the translation would not give the same answer): still slices of the listing
    {"where": "params.num_str > 5"},  # numbers stored as strings, against a number
    {"where": "params.mixed = 1"},
    {"where": "params.opt ilike 'A%'"},
]


def _in_sql(store, kwargs) -> bool:
    tree = where_mod.parse(kwargs["where"]) if "where" in kwargs else None
    orders = where_mod.parse_order(kwargs.get("order_by"))
    exp = [store.experiment_id("big", create=False)]
    return store.page_ids(exp, orders, 0, 5, where=tree) is not None


@pytest.mark.parametrize("newest", ["by sets", "by probes"])
def test_pages_the_database_filters_and_orders(many, newest, monkeypatch):
    # one workspace for every case (a fixture per case would build it 60 times); a filtered page of the newest
    # runs is found either way (RunStore._probe_newest picks by selectivity): both must give the same runs
    from mlo.store.runs import RunStore

    monkeypatch.setattr(RunStore, "_probe_newest", lambda *args: newest == "by probes")
    assert [k for k in SQL if not _in_sql(many.runs, k)] == []
    assert [k for k in PYTHON if _in_sql(many.runs, k)] == []
    for kwargs in SQL + PYTHON:
        try:
            assert_pages_are_slices(kwargs, ((0, 3), (3, 4), (10, 5)), experiment="big")
        except AssertionError as exc:
            raise AssertionError(f"{kwargs}: {exc}") from exc


def test_what_the_filters_find(many):
    """The slices agree with a listing; the listing itself answers as a person would expect."""

    def names(**kw):
        return sorted(mlo.runs(experiment="big", limit=50, **kw).name)

    assert names(where="params.opt = 'adam'") == ["r0"]
    assert names(where="params.opt in ('new\nline', 'O''Brien')") == ["r10", "r9"]
    assert names(where="params.lr = 1") == ["r1", "r5"]  # 1 and 1.0
    assert names(where="params.num_str = '10'") == ["r0"]
    assert names(where="tags.team = 'x'' OR ''1''=''1'") == ["r9"]  # the value, not SQL
    assert names(where="params.opt = 'x''); DROP TABLE runs; --'") == []
    assert names(where="metrics.acc is null") == ["r1", "r3", "r9"]  # NaN and missing
    first = mlo.runs(experiment="big", limit=3, order_by="params.opt")["params.opt"].tolist()
    assert first == sorted(OPTS)[:3]  # code point order: "Adam", "O'Brien", "a"
    assert mlo.runs(experiment="big", limit=1, order_by="params.lr desc")["params.lr"][0] == 10
    assert mlo.runs(experiment="big", order_by="params.lr", limit=1, offset=11).name.tolist() == [
        "r8"
    ]  # none
    assert len(mlo.runs(limit=100)) == 13  # nothing dropped


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"where": "params.opt = 'unterminated"}, "cannot read the filter"),
        ({"where": "params.opt = 'a'; DROP TABLE runs"}, "cannot read the filter"),
        ({"where": "params.opt = x"}, "expected a number or a quoted string"),
        ({"order_by": "params.opt; DROP TABLE runs"}, "cannot order by"),
        ({"order_by": "tags.nope"}, "cannot order by 'tags.nope': no such column"),
        ({"order_by": "params.nope desc"}, "cannot order by 'params.nope': no such column"),
        ({"order_by": "params.mixed"}, "cannot order by 'params.mixed': its values mix"),
    ],
)
def test_hostile_filters_are_one_line_errors(many, kwargs, message):
    with pytest.raises(InvalidInput, match=message) as info:
        mlo.runs(experiment="big", limit=5, **kwargs)
    assert "\n" not in str(info.value)
    assert len(mlo.runs(limit=100)) == 13


def test_hidden_runs_stay_hidden_in_database_pages(ws):
    """A listing hides the replays of `mlo reproduce` (a tag marks them) and deleted runs; pages that walk a
    tag's or a metric's index, or filter on tags, hide them too."""
    from mlo.store.tags import REPRODUCES_TAG

    for i, team in enumerate(["b", "a", "c", "a"]):
        with mlo.start_run(f"r{i}", experiment="h", tags={"team": team}) as run:
            mlo.log_metric("acc", i / 10)
    with mlo.start_run("replay", experiment="h", tags={"team": "a", REPRODUCES_TAG: run.id}):
        mlo.log_metric("acc", 0.05)
    mlo.delete_run(mlo.runs(experiment="h", where="name = 'r1'").run_id[0])
    for kwargs in ({"order_by": "tags.team"}, {"order_by": "metrics.acc desc", "where": "tags.team = 'a'"},
                   {"order_by": "tags.team desc", "where": "tags.team != 'c'"}):  # fmt: skip
        store = ws.runs
        tree = where_mod.parse(kwargs["where"]) if "where" in kwargs else None
        from mlo.store.lifecycle import hidden_condition

        shown = hidden_condition(store.db, frozenset())
        exp = [store.experiment_id("h", create=False)]
        assert store.page_ids(exp, where_mod.parse_order(kwargs["order_by"]), 0, 2, tree, shown) is not None
        assert_pages_are_slices(kwargs, ((0, 2), (1, 5)), experiment="h")
        assert not {"replay", "r1"} & set(mlo.runs(experiment="h", limit=10, **kwargs).name)


def test_huge_filters_are_answered_not_sql_errors(many):
    """Filters too big for one SQL statement (bound values, expression depth) are evaluated in Python."""
    opts = ", ".join(f"'v{i}'" for i in range(5000))
    assert sorted(mlo.runs(experiment="big", limit=5, where=f"params.opt in ({opts}, 'z')").name) == ["r3"]
    many_ors = " or ".join(f"metrics.acc = {i / 1000}" for i in range(1500))
    assert mlo.runs(experiment="big", limit=50, where=many_ors).attrs["total"] == 9
    long = "x" * 100_000
    assert mlo.runs(experiment="big", limit=5, where=f"tags.team = '{long}'").empty


def test_counts_of_one_equality_join_its_matches_with_the_listing(ws):
    """A page filtered by one equality counts by joining the key's matches with the listing: matches in other
    experiments, in deleted runs and in rows whose run is gone are not counted, nor is a run twice."""
    from mlo.store import schema
    from mlo.store.run_filter import RunFilter
    from mlo.store.runs import _matching_ids

    for exp in ("c", "other"):
        for i in range(6):
            with mlo.start_run(f"{exp}{i}", experiment=exp, params={"opt": "adam" if i % 2 else "sgd", "n": i},
                               tags={"team": "a" if i < 3 else "b"}):  # fmt: skip
                mlo.log_metrics({"acc": 0.5 if i % 3 else 0.25})
    mlo.delete_run(mlo.runs(experiment="c", where="name = 'c1'").run_id[0])
    if ws.runs.db.dialect == "sqlite":  # a row whose run is gone (SQLite does not enforce foreign keys)
        ws.runs.db.write(
            lambda conn: conn.execute(
                schema.params.insert().values(run_id="0" * 26, key="opt", value='"adam"')
            )
        )
    sql = RunFilter(ws.runs.db, json_functions=ws.runs._json_aggregates(), scope=[])
    with ws.runs._snapshot() as conn:
        for where, joined in [("params.opt = 'adam'", True), ("tags.team in ('a', 'b')", True),
                              ("metrics.acc = 0.5", True), ("metrics.acc > 0.3", False),
                              ("params.opt = 'adam' and params.n = 3", False)]:  # fmt: skip
            assert (_matching_ids(sql.where(conn, where_mod.parse(where))) is not None) is joined, where
    for where in (
        "params.opt = 'adam'",
        "tags.team in ('a', 'b')",
        "metrics.acc = 0.5",
        "params.opt = 'none'",
    ):
        assert_pages_are_slices({"where": where}, ((0, 2), (2, 10)), experiment="c")
        assert_pages_are_slices({"where": where}, ((0, 3),))
    assert mlo.runs(experiment="c", where="params.opt = 'adam'", limit=1).attrs["total"] == 2


def test_pages_when_the_listing_is_every_run(ws):
    """When the listed experiments hold every run and none is hidden, PostgreSQL counts a condition on one key
    from that key's rows alone; the pages stay slices once another experiment has runs or a run is deleted.
    Strings longer than the indexed prefix (200 characters) and strings sharing it are told apart."""
    long = "L" * 200
    opts = ["adam", long, long + "x", "sgd", "adam", long + "x", None]
    teams = ["a", long + "t", "b", long + "t2", None, "a", "a"]
    for i, (opt, team) in enumerate(zip(opts, teams, strict=True)):
        params = {"lr": i / 4, "bs": [32, 64, 32, 16, 64, 32, 10**320][i]} | (
            {} if opt is None else {"opt": opt}
        )
        with mlo.start_run(
            f"r{i}", experiment="only", params=params, tags={} if team is None else {"team": team}
        ):
            if i != 3:
                mlo.log_metric("acc", i / 10)
    cases = [
        {},
        {"where": "params.opt = 'adam'"},
        {"where": f"params.opt = '{long}'"},
        {"where": f"params.opt in ('adam', '{long}x')"},
        {"where": f"params.opt != '{long}'"},
        {"where": f"tags.team in ('a', '{long}t')"},
        {"where": f"tags.team = '{long}t2'"},
        {"where": "tags.team != 'a'", "order_by": "tags.team"},
        {"where": "metrics.acc > 0.25", "order_by": "metrics.acc desc"},
        {"where": "params.lr < 1", "order_by": "name"},
        {"where": "params.opt = 'adam' or metrics.acc is null"},
        {"order_by": "experiment"},
        {"order_by": "params.bs desc"},  # ties (broken newest first) and an integer beyond a double
        {"order_by": "params.bs"},
        {"order_by": "params.opt desc"},  # a run without it: last
        {"where": "params.bs > 20 and params.bs < 60", "order_by": "params.opt"},
        {"where": "not params.opt = 'adam'"},  # counted as every run less the matches
        {"where": "params.opt is null"},
        {"where": "not metrics.acc > 0.25", "order_by": "params.lr desc"},
    ]
    pages = ((0, 2), (2, 3), (6, 5))

    def check():
        for kwargs in cases:
            for scope in ({"experiment": "only"}, {}):
                try:
                    assert_pages_are_slices(kwargs, pages, **scope)
                except AssertionError as exc:
                    raise AssertionError(f"{kwargs} {scope}: {exc}") from exc

    store = ws.runs
    only = [store.experiment_id("only", create=False)]
    with store._snapshot() as conn:
        assert store._lists_every_run(conn, only) and store._lists_every_run(conn, None)
    check()
    assert mlo.runs(experiment="only", where=f"params.opt = '{long}x'", limit=1).attrs["total"] == 2
    with mlo.start_run(
        "elsewhere", experiment="other", params={"opt": "adam", "lr": 0.0}, tags={"team": "a"}
    ):
        mlo.log_metric("acc", 0.9)
    with store._snapshot() as conn:
        assert not store._lists_every_run(conn, only) and store._lists_every_run(conn, None)
    check()
    mlo.delete_run(mlo.runs(experiment="only", where="name = 'r0'").run_id[0])  # hidden from listings
    check()
    assert mlo.runs(where="params.opt = 'adam'", limit=1).attrs["total"] == 2


NUMBERS = [0.5, 3, -2, 10**20, 1e300, 5e-324, 1e-120, 10**320, -0.0, 1e16, 2.5e-5, 7]


def test_numbers_outside_the_index_are_filtered_as_pandas_does(ws):
    """Keys of plain numbers read the index; a key holding a number beyond it (``1e+300``, ``5e-324``, an integer
    of 321 digits) is cast value by value, as before: pages are slices of the listing either way."""
    for i, x in enumerate(NUMBERS):
        plain = [0.25, 1, 3, 8][i % 4]
        with mlo.start_run(f"r{i}", experiment="n", params={"x": x, "plain": plain, "i": i}):
            mlo.log_metric("acc", i / 10)
    if ws.runs.db.dialect == "postgresql":  # (SQLite casts each value: it has no such index)
        sql = RunFilter(ws.runs.db, scope=[])
        with ws.runs._snapshot() as conn:
            assert sql._number_indexed(conn, "plain") and sql._number_indexed(conn, "i")
            assert not sql._number_indexed(conn, "x")  # cast value by value
    cases = [
        {"where": "params.plain > 0.5"},
        {"where": "params.plain in (1, 0.25)"},
        {"where": "not params.plain != 3"},
        {"where": "params.i >= 4 and params.plain < 8"},
        {"where": "params.x > 1"},
        {"where": "params.x <= 0"},
        {"where": "params.x = 7 or params.plain = 1"},
        {"order_by": "params.plain desc"},
        {"order_by": "params.x"},
        {"order_by": "params.x desc", "where": "params.i < 9"},
        {"order_by": "params.i", "where": "params.plain >= 1"},
    ]
    for kwargs in cases:
        try:
            assert_pages_are_slices(kwargs, ((0, 3), (2, 4), (9, 5)), experiment="n")
        except AssertionError as exc:
            raise AssertionError(f"{kwargs}: {exc}") from exc
    assert mlo.runs(experiment="n", limit=2, order_by="params.x desc").name.tolist() == ["r7", "r4"]
