"""The %mlo magics through a real IPython InteractiveShell."""

import pytest
from IPython.core.error import UsageError

import mlo


def test_issue_flow_records_run_params_metrics_and_the_cell_once(shell):
    shell.run("%mlo experiment churn")
    shell.run("X = [[0.0], [1.0], [2.0], [3.0]]\ny = [0, 0, 1, 1]")
    cell = (
        "%%mlo run baseline\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "C = 1.0\n"
        "model = LogisticRegression(C=C).fit(X, y)\n"
        "%mlo metric acc=0.91\n"
        "model.predict([[3.0]])[0]"
    )
    assert shell.run(cell) == 1  # the trailing expression is the cell's value
    df = mlo.runs()
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["name"], row["experiment"], row["status"]) == ("baseline", "churn", "finished")
    assert row["params.C"] == 1.0 and row["metrics.acc"] == 0.91 and row["duration"] > 0
    cells = mlo.get_run(row["run_id"]).cells
    assert [c.source for c in cells] == [cell]
    assert cells[0].success and isinstance(cells[0].execution_count, int) and cells[0].duration > 0
    assert "model" in shell.ip.user_ns  # the cell ran in the user's namespace


def test_start_end_captures_every_cell_in_order_with_failures(shell):
    shell.run("%mlo start session")
    shell.run("a = 1")
    err = shell.fails("raise ValueError('bad data')")
    assert isinstance(err, ValueError)
    shell.run("b = a + 1\n%mlo metric b=2 --step 5")
    shell.run("%mlo end")
    shell.run("c = 3")  # after the run: not captured
    run = mlo.get_run(mlo.runs().run_id.iloc[0])
    cells = run.cells
    assert [c.source for c in cells] == [
        "%mlo start session",
        "a = 1",
        "raise ValueError('bad data')",
        "b = a + 1\n%mlo metric b=2 --step 5",
        "%mlo end",
    ]
    assert [c.success for c in cells] == [True, True, False, True, True]
    assert "ValueError: bad data" in cells[2].error
    counts = [c.execution_count for c in cells]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert run.history("b").step.tolist() == [5]
    assert run.status == "finished"


def test_failing_run_cell_marks_the_run_failed_and_raises(shell):
    err = shell.fails("%%mlo run broken\nx = 1\nraise RuntimeError('boom')")
    assert isinstance(err, RuntimeError)
    run = mlo.get_run(mlo.runs().run_id.iloc[0])
    assert run.status == "failed"
    [cell] = run.cells
    assert not cell.success and "RuntimeError: boom" in cell.error
    assert mlo.active_run() is None


def test_reload_is_idempotent(shell):
    shell.run("%reload_ext mlo")
    shell.run("%reload_ext mlo")
    shell.run("%mlo start r")
    shell.run("x = 1")
    shell.run("%mlo end")
    sources = [c.source for c in mlo.get_run(mlo.runs().run_id.iloc[0]).cells]
    assert sources.count("x = 1") == 1


def test_nested_cell_execution_is_recorded_once(shell):
    shell.run("%mlo start r")
    shell.run("get_ipython().run_cell('inner = 1')")
    shell.run("%mlo end")
    sources = [c.source for c in mlo.get_run(mlo.runs().run_id.iloc[0]).cells]
    assert sources == ["%mlo start r", "get_ipython().run_cell('inner = 1')", "%mlo end"]


def test_params_and_metrics_magics(shell):
    shell.run("%mlo start")
    shell.run("%mlo param C=0.5 model=rf layers=[1,2] name='quoted'")
    shell.run("%mlo metric acc=0.9 loss=0.1")
    run = mlo.active_run()
    shell.run("%mlo end")
    assert run.params == {"C": 0.5, "model": "rf", "layers": [1, 2], "name": "quoted"}
    assert run.metrics == {"acc": 0.9, "loss": 0.1}


@pytest.mark.parametrize(
    "line, message",
    [
        ("%mlo frobnicate", "unknown command 'frobnicate'"),
        ("%mlo rnus", "did you mean 'runs'"),
        ("%mlo metric acc=0.9", "no active run"),
        ("%mlo end", "no active run"),
        ("%mlo experiment", "the following arguments are required"),
        ("%mlo runs --where 'metrics.acc >'", "expected a number"),
        ("%mlo runs --limit x", "invalid int value"),
        ("%mlo param novalue", "expected key=value"),
        ("%mlo start 'unclosed", "cannot read the arguments"),
        ("%%mlo runs\nx = 1", "does not take a cell body"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(shell, line, message):
    err = shell.fails(line)
    assert isinstance(err, UsageError)
    assert message in str(err) and "\n" not in str(err).strip()


def test_bad_input_loses_nothing_already_recorded(shell):
    shell.run("%mlo start keep")
    shell.run("%mlo metric good=1.0")
    err = shell.fails("%mlo metric acc=high")
    assert isinstance(err, UsageError) and "'high' is not a number" in str(err)
    err = shell.fails("%%mlo run nested\nx = 1")
    assert isinstance(err, UsageError) and "already active" in str(err)
    run = mlo.active_run()
    assert run is not None and run.name == "keep"
    shell.run("%mlo end")
    assert run.metrics == {"good": 1.0} and run.status == "finished"


def test_runs_magic_renders_a_compact_html_table(shell):
    shell.run("%mlo experiment e1")
    shell.run("%%mlo run first\nC = 1\n%mlo metric acc=0.5")
    shell.run("%%mlo run second --no-params\nC = 2\n%mlo metric acc=0.7")
    view = shell.run("%mlo runs --where 'metrics.acc > 0.6'")
    html = view._repr_html_()
    assert "second" in html and "first" not in html and "<table" in html and "<script" not in html
    assert "1 run" in html
    assert "C" not in view.df.columns and "params.C" not in view.df.columns
    assert "second" in repr(view)


def test_help_and_usage(shell, capsys):
    shell.run("%mlo help")
    assert "%%mlo run" in capsys.readouterr().out
    assert "%mlo runs" in shell.ip.find_line_magic("mlo").__doc__


def test_init_creates_a_workspace(shell, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLO_HOME")
    shell.run(f"%mlo init {tmp_path / 'proj'}")
    assert (tmp_path / "proj" / ".mlo" / "mlo.db").exists()
