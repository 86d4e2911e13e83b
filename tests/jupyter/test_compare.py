"""``mlo.compare()`` / ``%mlo compare``: the comparison core and the widget, driven headless through its traits
(what the table view sends when a header is clicked, a row ticked, a page turned), plus a real kernel run
whose saved output carries the static HTML fallback."""

from __future__ import annotations

import nbformat
import pandas as pd
import pytest
from IPython.core.error import UsageError

import mlo
from mlo.errors import InvalidInput, NotFound
from mlo.tracking import compare_charts as chart_charts
from mlo.tracking.compare import Comparison, lower_is_better

VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(params=["eager", "lazy"])
def grid(request, sqlite_ws, monkeypatch):
    """12 runs of a small grid search: lr and model vary, seed does not; loss falls over 4 steps. Each test
    runs twice: with the listing read whole, and lazy (every page from the store), as 100k runs would be."""
    if request.param == "lazy":
        monkeypatch.setattr("mlo.tracking.compare.EAGER_RUNS", 0)
    ids = []
    for i in range(12):
        params = {"lr": [0.1, 0.01, 0.001][i % 3], "model": "rf" if i % 2 else "lr", "seed": 7}
        with mlo.start_run(f"g{i:02d}", experiment="grid", params=params) as run:
            for step in range(4):
                mlo.log_metric("loss", 1.0 / (step + 1) + i / 100, step=step)
            mlo.log_metric("acc", 0.5 + i / 40)
            if i == 3:
                mlo.set_tag("note", "baseline")
        ids.append(run.id)
    with mlo.start_run("other", experiment="elsewhere", params={"lr": 1.0}):
        mlo.log_metric("acc", 0.1)
    return ids


def cells(widget, row: int = 0) -> dict:
    keys = [c["key"] for c in widget.table.columns]
    return dict(zip(keys, widget.table.rows[row]["cells"], strict=True))


def test_comparison_finds_what_tells_runs_apart(grid):
    cmp = Comparison(experiment="grid", page_size=5)
    assert len(cmp.frame) == 12 and cmp.pages == 3
    assert cmp.differing() == ["params.lr", "params.model"]  # seed is 7 everywhere
    cols = cmp.key_columns()
    assert cols[:4] == ["run_id", "experiment", "name", "status"]
    assert cols.index("params.lr") < cols.index("params.seed") and "metrics.acc" in cols
    assert cmp.page_frame().name.tolist() == ["g11", "g10", "g09", "g08", "g07"]  # newest first
    cmp.goto(2)
    assert cmp.page_frame().name.tolist() == ["g01", "g00"]
    cmp.goto(99)
    assert cmp.page == 2


def test_filter_sort_and_select(grid):
    cmp = Comparison(experiment="grid")
    assert cmp.filter("params.model = 'rf' and metrics.acc > 0.6") == 4  # g05, g07, g09, g11
    assert cmp.differing() == ["params.lr"]
    assert cmp.filter("tags.note = 'baseline'") == 1  # tags are not in the frame: the store filters
    assert cmp.filter("") == 12 and cmp.where is None
    with pytest.raises(InvalidInput, match="bad filter"):
        cmp.filter("metrics.acc >")
    cmp.sort("metrics.acc")
    assert cmp.page_frame().name.iloc[0] == "g00" and cmp.ascending
    cmp.sort("metrics.acc")  # the same column again flips the order
    assert cmp.page_frame().name.iloc[0] == "g11" and not cmp.ascending
    with pytest.raises(InvalidInput, match="cannot sort by"):
        cmp.sort("metrics.nope")
    assert cmp.select([grid[0][-8:], grid[1]]) == [grid[0], grid[1]]  # id suffixes are not prefixes
    with pytest.raises(NotFound):
        cmp.select(["zzz"])


def test_select_by_prefix_and_ambiguity(grid):
    cmp = Comparison(experiment="grid")
    unique = next(p for p in (grid[5][:n] for n in range(8, 27)) if sum(r.startswith(p) for r in grid) == 1)
    assert cmp.select([unique]) == [grid[5]]
    with pytest.raises(mlo.AmbiguousRef, match="matches several runs"):
        cmp.select([grid[0][:4]])  # ids made in the same second start the same way


def test_diff_histories_parallel_and_best(grid):
    cmp = Comparison(experiment="grid", selected=[grid[0], grid[1], grid[2]])
    diff = cmp.param_diff()
    assert list(diff.columns) == ["g00", "g01", "g02", "differs"]
    assert diff.loc["lr"].tolist()[:3] == [0.1, 0.01, 0.001] and diff.loc["lr", "differs"]
    assert not diff.loc["seed", "differs"]
    assert cmp.param_diff(only_differing=True).index.tolist() == ["lr", "model"]
    hist = cmp.histories()
    assert sorted(hist) == ["acc", "loss"]
    assert hist["loss"]["g01"]["step"].tolist() == [0, 1, 2, 3]
    assert hist["loss"]["g01"]["value"].iloc[-1] == pytest.approx(0.25 + 0.01)
    par = cmp.parallel("acc")
    assert list(par.columns) == ["run_id", "name", "params.lr", "params.model", "metrics.acc"]
    assert len(par) == 3
    best = cmp.best("acc")
    assert (best.name, best.mode, best.value) == ("g11", "max", pytest.approx(0.775))
    assert cmp.best("loss").name == "g00" and cmp.best("loss").mode == "min"
    assert cmp.best("acc", mode="min").name == "g00"
    with pytest.raises(InvalidInput, match="no run here logged 'f1'"):
        cmp.best("f1")
    assert lower_is_better("metrics.val_loss") and lower_is_better("rmse") and not lower_is_better("accuracy")


def test_widget_table_reacts_to_clicks_ticks_and_scrolling(grid):
    widget = mlo.compare(experiment="grid", page_size=5)
    assert len(widget.table.rows) == 5 and widget.table.total == 12 and widget.table.virtual
    assert cells(widget)["name"] == "g11"
    highlighted = [c["key"] for c in widget.table.columns if c["highlight"]]
    assert highlighted == ["params.lr", "params.model"]
    assert "12 runs" in widget.table.summary and "2 params differ" in widget.table.summary

    widget.table.sort = {"column": "metrics.acc", "ascending": True}  # a header click
    assert cells(widget)["name"] == "g00"
    widget.table.viewport = {"start": 10, "end": 12}  # scrolled to the end: the rows around it arrive
    first = widget.table.offset
    names = [cells(widget, i)["name"] for i in range(len(widget.table.rows))]
    assert names[10 - first : 12 - first] == ["g10", "g11"]

    widget.table.selected = [grid[0], grid[1]]  # two ticked rows
    assert widget.comparison.selected == [grid[0], grid[1]]
    payload = widget.charts.payload  # metric histories (lines) and single values (dots) of the ticked runs
    assert [c["metric"] for c in payload["charts"]] == ["loss"]
    assert {line["label"] for line in payload["charts"][0]["lines"]} == {"g00", "g01"}
    assert payload["charts"][0]["lines"][0]["step"] == [0, 1, 2, 3]
    assert [v["metric"] for v in payload["values"]] == ["acc"]
    assert {d["label"]: d["value"] for d in payload["values"][0]["dots"]} == {"g00": 0.5, "g01": 0.525}
    widget.charts.tab = "diff"  # worked out when its tab is opened
    assert "2 of 3 params differ" in widget.charts.payload["html"]
    widget.charts.tab = "parallel"
    assert widget.charts.payload["metric"] == widget.metric.value
    widget.metric.value = "metrics.loss"
    assert widget.charts.payload["metric"] == "metrics.loss" and widget.charts.payload["mode"] == "min"


def test_widget_columns_hide_pin_and_select_all_matching(grid):
    widget = mlo.compare(experiment="grid", where="params.model = 'rf'")
    keys = [c["key"] for c in widget.table.columns]
    assert {"params.seed", "metrics.loss"} <= set(keys) and widget.table.hidden == []
    widget.table.hidden = ["experiment"]  # the column chooser
    widget.table.pinned = ["name"]
    widget.filter_box.value = ""  # a redraw keeps the reader's choices
    assert widget.table.hidden == ["experiment"] and widget.table.pinned == ["name"]
    widget.filter_box.value = "params.model = 'rf'"
    widget.table.select_matching += 1  # "select all matching the filter"
    assert sorted(widget.table.selected) == sorted(grid[1::2]) and len(widget.comparison.selected) == 6


def test_brushing_narrows_the_table_and_clears(grid):
    widget = mlo.compare(experiment="grid")
    widget.charts.tab = "parallel"
    rows = widget.charts.payload["rows"]
    assert len(rows) == 12 and widget.charts.payload["best"] == grid[11]
    # what dragging along the lr axis and picking 'rf' on the model axis send
    widget.charts.brush = {"params.lr": {"lo": 0.005, "hi": 0.2}, "params.model": {"values": ["rf"]}}
    assert widget.table.total == 4  # g01 (0.01), g03 (0.1), g07 (0.01), g09 (0.1)
    assert sorted(r["id"] for r in widget.table.rows) == sorted([grid[1], grid[3], grid[7], grid[9]])
    assert "inside the brushes" in widget.message.value
    widget.filter_box.value = "metrics.acc > 0.6"  # a filter and brushes together
    assert sorted(r["id"] for r in widget.table.rows) == sorted([grid[7], grid[9]])
    widget.set_brush({})
    assert widget.table.total == 7 and "brushes" not in widget.message.value  # g05…g11
    widget.charts.brush = {"params.lr": "wide"}  # what a hostile view could send: one line, nothing lost
    assert "must be a dict" in widget.message.value and widget.table.total == 7


def test_scatter_importance_and_grouping_payloads(grid):
    widget = mlo.compare(experiment="grid")
    widget.charts.options = {**widget.charts.options, "metric": "metrics.acc", "param": "params.model"}
    widget.charts.tab = "scatter"
    payload = widget.charts.payload
    assert payload["categories"] == ["lr", "rf"] and len(payload["points"]) == 12
    widget.charts.options = {**widget.charts.options, "group_by": "params.lr"}
    assert {p["group"] for p in widget.charts.payload["points"]} == {"0.1", "0.01", "0.001"}
    assert "tags.note" in widget.charts.choices["groups"]  # a tag to group by
    widget.charts.tab = "importance"
    imp = widget.charts.payload
    assert imp["method"] in ("forest", "spearman") and imp["label"].startswith(("random-forest", "|Spearman"))
    assert {v["param"] for v in imp["values"]} == {"params.lr", "params.model"}  # seed never varies
    widget.table.selected = grid[:6]
    widget.charts.tab = "histories"  # grouped by lr: each group's mean and ± one sd
    payload = widget.charts.payload
    assert payload["grouped"]
    dots = {d["label"]: d for d in payload["values"][0]["dots"]}
    assert dots["0.1"]["n"] == 2 and dots["0.1"]["value"] == pytest.approx((0.5 + 0.575) / 2)
    labels = [line["label"] for line in payload["charts"][0]["lines"]]
    assert "0.1 mean (n=2)" in labels and "0.1 +1 sd" in labels


def test_widget_filter_errors_keep_the_table(grid):
    widget = mlo.compare(experiment="grid")
    widget.filter_box.value = "params.lr = 0.1"
    assert len(widget.table.rows) == 4 and "matching" in widget.table.summary
    widget.filter_box.value = "params.lr = = 1"
    assert "bad filter" in widget.message.value and len(widget.table.rows) == 4
    widget.filter_box.value = "metrics.acc > 5"
    assert widget.table.rows == [] and "No run matches" in widget.message.value


def test_best_run_action_selects_it_and_puts_it_first(grid):
    widget = mlo.compare(experiment="grid")
    widget.metric.value = "metrics.loss"
    widget.best_button.click()
    assert "best by loss (lowest)" in widget.best_result.value and "g00" in widget.best_result.value
    assert widget.table.selected == [grid[0]] and cells(widget)["name"] == "g00"


def test_refresh_picks_up_new_runs(grid):
    widget = mlo.compare(experiment="grid")
    with mlo.start_run("late", experiment="grid", params={"lr": 0.5}):
        mlo.log_metric("acc", 0.9)
    widget.refresh_button.click()
    assert cells(widget)["name"] == "late" and "13 runs" in widget.table.summary


def test_static_fallback_carries_the_whole_comparison(grid):
    widget = mlo.compare([grid[2], grid[3]], experiment="grid")
    bundle = widget._repr_mimebundle_()
    assert VIEW in bundle
    html = bundle["text/html"]
    assert "Compare runs" in html and "g03" in html and "Param diff" in html and html.count("<svg") == 2
    assert "<script" not in html


def test_compare_magic(shell, grid):
    widget = shell.run(
        f"%mlo compare {grid[0]} {grid[4]} --experiment grid --order-by 'metrics.acc desc' -n 4"
    )
    assert widget.comparison.selected == [grid[0], grid[4]]
    assert cells(widget)["name"] == "g11" and widget.table.pages == 3 and len(widget.table.rows) == 4
    widget = shell.run("%mlo compare --where \"params.model = 'rf'\"")
    assert len(widget.comparison.frame) == 6
    err = shell.fails("%mlo compare --where 'metrics.acc >'")
    assert isinstance(err, UsageError) and "bad filter" in str(err)
    err = shell.fails("%mlo compare nosuchrun")
    assert isinstance(err, UsageError) and "no run 'nosuchrun'" in str(err)


def test_compare_with_no_runs_is_empty_not_broken(sqlite_ws):
    widget = mlo.compare()
    assert widget.table.rows == [] and "0 runs" in widget.table.summary
    assert "Tick runs" in widget.charts.payload["message"]
    for tab in ("scatter", "parallel", "importance", "diff"):
        widget.charts.tab = tab
        assert widget.charts.payload["message"]
    widget.best_button.click()
    assert "No metric" in widget.best_result.value


@pytest.mark.kernel
def test_in_a_kernel_the_saved_output_has_the_static_html(grid, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(f"%load_ext mlo\n%mlo compare {grid[0]} --experiment grid"))
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    data = nb.cells[0].outputs[-1]["data"]
    assert VIEW in data and "Compare runs" in data["text/html"] and "g00" in data["text/html"]
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata["widgets"]  # nbclient kept the state
    frame = pd.DataFrame({"a": [1]})  # the kernel's widget does not leak into this process
    assert len(frame) == 1


def test_run_colours_stay_distinct_past_ten_runs_and_stable_across_plots():
    import colorsys
    import re

    import pandas as pd

    from mlo.report.compare import histories_svg
    from mlo.report.html import run_color

    labels = [f"sweep-{i:02d}" for i in range(12)]
    frame = pd.DataFrame({"step": [0, 1, 2], "value": [1.0, 0.5, 0.25]})
    svg = histories_svg({"loss": {label: frame for label in labels}})
    strokes = set(re.findall(r"stroke: (#[0-9a-f]{6})", svg))
    assert {run_color(label) for label in labels} <= strokes
    assert len({run_color(label) for label in labels}) == 12  # a ten-colour cycle repeated the 11th and 12th
    # the same run, the same colour, in another plot with other runs
    other = histories_svg({"acc": {labels[11]: frame, "other": frame}})
    assert run_color(labels[11]) in other
    # the rule of the JupyterLab charts (charts.ts), where colorFor("a") is hsl(313, 70%, 56%)
    red, green, blue = colorsys.hls_to_rgb(313 / 360, 0.56, 0.7)
    assert run_color("a") == f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def test_hostile_view_messages_answer_in_one_line(grid):
    """What a broken or hostile view could send through the traits: each answer is a message, never a
    traceback, and the table keeps what it showed."""
    widget = mlo.compare(experiment="grid")
    widget.table.selected = grid[:2]
    for options in (
        {"metric": "metrics.nope", "param": "params.lr"},
        {"metric": "x; drop", "param": None, "group_by": "tags.zzz"},
        {"metric": 123, "parallel": {"axes": "bad", "log": 5}},
        {"metric": "metrics.acc", "group_by": "params.nope", "parallel": [1, 2]},
    ):
        widget.charts.options = options
        for tab in CompareTabs:
            widget.charts.tab = tab
            payload = widget.charts.payload
            assert payload["kind"] == tab
            if tab in ("scatter", "parallel") and options["metric"] in ("metrics.nope", "x; drop"):
                assert payload["message"]  # no such metric: said in the chart's place
    widget.table.viewport = {"start": "x"}
    widget.table.viewport = {"start": -5, "end": 10**9}
    assert widget.table.offset == 0 and len(widget.table.rows) == 12


CompareTabs = ("histories", "scatter", "parallel", "importance", "diff")


def test_static_parallel_coordinates_keep_runs_without_a_param(grid):
    from mlo.report.compare import parallel_svg

    frame = pd.DataFrame(
        {"params.depth": [3.0, None, 5.0], "params.model": ["rf", "lr", None], "metrics.acc": [0.7, 0.9, 0.8]}
    )
    svg = parallel_svg(frame, "metrics.acc")
    assert svg.count("(missing)") == 2  # a tick on each axis that some run lacks


def test_a_live_view_gets_only_the_points_after_what_it_drew(grid):
    with mlo.start_run("training", experiment="grid") as run:
        for step in range(5):
            mlo.log_metric("loss", 1.0 / (step + 1), step=step)
        mlo.log_metric("acc", 0.5)
        widget = mlo.compare(experiment="grid", runs=[run.id, grid[0]])
        payload = widget.charts.payload
        assert payload["live"] == [run.id]  # the finished run is not polled
        line = next(x for x in payload["charts"][0]["lines"] if x["id"] == run.id)
        assert line["step"] == [0, 1, 2, 3, 4]
        for step in range(5, 8):
            mlo.log_metric("loss", 1.0 / (step + 1), step=step)
        mlo.log_metric("new_metric", 1.0, step=9)  # not drawn yet: not appended
        reply = chart_charts.appended(widget.comparison, {run.id: {"loss": 4}})
        assert reply["live"] == [run.id]
        assert reply["runs"][run.id]["loss"]["step"] == [5, 6, 7]
        assert reply["runs"][run.id]["loss"]["value"] == pytest.approx([1 / 6, 1 / 7, 1 / 8])
        assert len(reply["runs"][run.id]["loss"]["time"]) == 3
        assert chart_charts.appended(widget.comparison, {run.id: {"loss": 7}})["runs"] == {}
        # hostile or stale messages: one line, nothing read
        for since, text in [
            ({"nope": {"loss": 1}}, "not among the ticked runs"),
            ({run.id: {"loss": "x"}}, "must be a number"),
            ([1, 2], "since must map"),
        ]:
            with pytest.raises(InvalidInput, match=text):
                chart_charts.appended(widget.comparison, since)
        widget._on_charts_msg(
            widget.charts, {"type": "poll", "since": {"nope": {}}}, []
        )  # answered, not raised
        # a metric the view does not show yet: its charts are read again, and the new one is among them
        shown = ["loss", "acc"]
        assert chart_charts.appended(widget.comparison, {run.id: {"loss": 7}}, shown)["redraw"]
        again = chart_charts.appended(widget.comparison, {run.id: {"loss": 7}}, [*shown, "new_metric"])
        assert not again["redraw"]
        widget._on_charts_msg(widget.charts, {"type": "poll", "since": {run.id: {"loss": 7}}}, [])
        assert "new_metric" in [v["metric"] for v in widget.charts.payload["values"]]
    reply = chart_charts.appended(widget.comparison, {run.id: {"loss": 7}})
    assert reply == {"kind": "append", "runs": {}, "live": [], "redraw": False}  # ended: the view stops
