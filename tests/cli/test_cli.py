"""The ``mlo`` command line: click's CliRunner in-process, plus real ``python -m mlo`` subprocesses."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import mlo
from mlo.cli import main


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def assert_usage_error(result, *fragments: str) -> str:
    """Exit code 2, nothing on stdout, and one line ``mlo: …`` on stderr that mentions every fragment."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("mlo: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def three_runs(sqlite_ws):
    """Runs a and b in experiment e, run c in experiment other; a has one captured cell."""
    ids = {}
    with mlo.start_run("a", experiment="e", params={"C": 1.0, "model": "rf"}) as r:
        mlo.log_metric("acc", 0.9)
        mlo.log_metric("loss", 0.3)
        mlo.record_cell("x = 1", execution_count=1, run=r)
    ids["a"] = r.id
    with mlo.start_run("b", experiment="e", params={"C": 0.1, "model": "lr"}) as r:
        mlo.log_metric("acc", 0.7)
    ids["b"] = r.id
    with mlo.start_run("c", experiment="other", params={"C": 10.0, "model": "rf"}) as r:
        mlo.log_metric("acc", 0.8)
    ids["c"] = r.id
    return ids


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# -- init ------------------------------------------------------------------------------------------------------
def test_init_creates_workspace_in_cwd_and_in_a_given_path(tmp_path):
    result = cli("init")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".mlo").is_dir()
    assert (tmp_path / ".mlo" / "mlo.db").is_file()
    assert str(tmp_path / ".mlo") in result.stdout

    result = cli("init", str(tmp_path / "project"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "project" / ".mlo" / "mlo.db").is_file()


def test_init_then_runs_from_a_subfolder_finds_the_workspace(tmp_path, monkeypatch):
    assert cli("init").exit_code == 0
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    result = cli("runs")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "No runs."
    assert not (sub / ".mlo").exists()


# -- runs ------------------------------------------------------------------------------------------------------
def test_runs_table_lists_runs_with_params_and_metrics(three_runs):
    result = cli("runs")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    header = lines[0].split()
    for col in ("run_id", "experiment", "name", "status", "C", "model", "acc"):
        assert col in header, header
    body = lines[2:]
    assert len(body) == 3
    newest_first = [three_runs["c"], three_runs["b"], three_runs["a"]]
    shown = [line.split()[0] for line in body]  # short ids: prefixes of the ids, one length
    assert [full.startswith(short) for short, full in zip(shown, newest_first, strict=True)] == [True] * 3
    assert len({len(s) for s in shown}) == 1 and len(shown[0]) < len(newest_first[0])
    assert all("finished" in line for line in body)

    result = cli("runs", "--experiment", "e")
    assert result.exit_code == 0
    body = result.stdout.strip().splitlines()[2:]
    assert {line.split()[0][:8] for line in body} == {three_runs["a"][:8], three_runs["b"][:8]}


def test_runs_csv_with_experiment_where_and_columns(three_runs):
    result = cli("runs", "-e", "e", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = read_csv(result.stdout)
    assert {r["name"] for r in rows} == {"a", "b"}
    a = next(r for r in rows if r["name"] == "a")
    assert float(a["params.C"]) == 1.0 and a["params.model"] == "rf"
    assert float(a["metrics.acc"]) == 0.9 and float(a["metrics.loss"]) == 0.3
    assert a["status"] == "finished" and a["experiment"] == "e"

    result = cli(
        "runs",
        "--where",
        "metrics.acc > 0.75 and params.model = 'rf'",
        "--columns",
        "name,metrics.acc",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.stderr
    rows = read_csv(result.stdout)
    assert list(rows[0]) == ["run_id", "name", "metrics.acc"]
    assert sorted(r["name"] for r in rows) == ["a", "c"]

    # both experiments named explicitly
    result = cli("runs", "-e", "e", "-e", "other", "-w", "params.C < 1", "--format", "csv", "-c", "name")
    assert [r["name"] for r in read_csv(result.stdout)] == ["b"]


def test_runs_order_by_and_limit(three_runs):
    result = cli("runs", "--order-by", "metrics.acc desc", "--format", "csv", "--columns", "name,metrics.acc")
    assert result.exit_code == 0, result.stderr
    assert [r["name"] for r in read_csv(result.stdout)] == ["a", "c", "b"]

    result = cli("runs", "-o", "metrics.acc asc", "--limit", "2", "--format", "csv", "-c", "name")
    assert [r["name"] for r in read_csv(result.stdout)] == ["b", "c"]

    result = cli("runs", "-n", "1", "--format", "csv", "-c", "name")
    assert [r["name"] for r in read_csv(result.stdout)] == ["c"]  # newest first by default


def test_runs_order_by_without_direction_is_ascending(three_runs):
    # like SQL ORDER BY and MLflow's order_by: a bare column sorts ascending
    result = cli("runs", "--order-by", "metrics.acc", "--format", "csv", "-c", "name")
    assert result.exit_code == 0, result.stderr
    assert [r["name"] for r in read_csv(result.stdout)] == ["b", "c", "a"]


def test_runs_json_is_a_list_of_records(three_runs):
    result = cli(
        "runs",
        "-e",
        "e",
        "--format",
        "json",
        "--columns",
        "name,status,params.*,metrics.*",
        "--order-by",
        "name asc",
    )
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["name"] for r in records] == ["a", "b"]
    assert records[0] == {
        "run_id": three_runs["a"],
        "name": "a",
        "status": "finished",
        "params.C": 1.0,
        "params.model": "rf",
        "metrics.acc": 0.9,
        "metrics.loss": 0.3,
    }
    assert records[1]["metrics.loss"] is None  # b never logged loss

    result = cli("runs", "--where", "metrics.acc > 5", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_runs_table_when_nothing_matches(three_runs):
    result = cli("runs", "--where", "metrics.acc > 5")
    assert result.exit_code == 0
    assert result.stdout.strip() == "No runs."


def test_runs_of_a_new_workspace_print_what_the_full_listing_prints(sqlite_ws, monkeypatch):
    """A workspace without runs answers without building a DataFrame; its output is the full path's, byte for
    byte, in every format, and bad arguments still fail the same way."""
    from mlo.store.runs import RunStore

    variants = [[], ["--format", "json"], ["--format", "csv"], ["--format", "csv", "-i", "all"], ["-n", "3"]]
    fast = [cli("runs", *v) for v in variants]
    with monkeypatch.context() as m:
        m.setattr(RunStore, "any_run", lambda self: True)  # as if there were runs: the full path
        full = [cli("runs", *v) for v in variants]
    for v, a, b in zip(variants, fast, full, strict=True):
        assert (a.exit_code, a.stdout) == (b.exit_code, b.stdout), v
    assert fast[0].stdout == "No runs.\n"
    assert_usage_error(cli("runs", "-n", "-1"), "non-negative")
    assert_usage_error(cli("runs", "-e", "nope"), "nope")


# -- show ------------------------------------------------------------------------------------------------------
def test_show_by_full_id_and_by_unique_prefix(three_runs):
    rid = three_runs["a"]
    full = cli("show", rid)
    assert full.exit_code == 0, full.stderr
    out = full.stdout
    assert out.splitlines()[0].split() == ["a", "[finished]", "run", rid]
    assert "experiment  e" in out
    assert "params:" in out and "metrics:" in out
    assert any(line.split() == ["C", "1.0"] for line in out.splitlines())
    assert any(line.split() == ["model", "rf"] for line in out.splitlines())
    assert any(line.split() == ["acc", "0.9"] for line in out.splitlines())
    assert "cells: 1 captured" in out
    assert "x = 1" not in out  # sources only with --cells

    prefix = rid[:16]
    assert not any(other.startswith(prefix) for name, other in three_runs.items() if name != "a")
    short = cli("show", prefix)
    assert short.exit_code == 0, short.stderr
    assert short.stdout == out
    assert cli("show", rid.upper()[:16]).stdout == out  # ids are case-insensitive


def test_show_json(three_runs):
    result = cli("show", three_runs["b"][:14], "--format", "json")
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    assert d["id"] == three_runs["b"]
    assert d["name"] == "b" and d["experiment"] == "e" and d["status"] == "finished"
    assert d["params"] == {"C": 0.1, "model": "lr"}
    assert d["metrics"] == {"acc": 0.7}
    assert d["cells"] == [] and d["artifacts"] == []
    assert d["duration"] >= 0 and d["end_time"] >= d["start_time"]


def test_show_cells_prints_captured_sources(three_runs, sqlite_ws):
    with mlo.start_run("cells", experiment="e") as r:
        mlo.record_cell("y = 2\nprint(y)", execution_count=3, run=r)
        mlo.record_cell(
            "1 / 0", execution_count=4, success=False, error="ZeroDivisionError: division by zero", run=r
        )
    result = cli("show", r.id, "--cells")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "cells: 2 captured, 1 failed" in out
    tail = out[out.index("cells: 2 captured") :].splitlines()[1:]
    assert tail == ["--- In [3]", "y = 2", "print(y)", "--- In [4]  (failed)", "1 / 0"]

    result = cli("show", three_runs["a"], "--cells")
    assert result.stdout.splitlines()[-2:] == ["--- In [1]", "x = 1"]

    d = json.loads(cli("show", r.id, "--format", "json").stdout)
    assert [(c["source"], c["execution_count"], c["success"]) for c in d["cells"]] == [
        ("y = 2\nprint(y)", 3, True),
        ("1 / 0", 4, False),
    ]
    assert d["cells"][1]["error"] == "ZeroDivisionError: division by zero"


# -- errors: exit code 2 and one line on stderr --------------------------------------------------------------------
def test_show_unknown_run_id(three_runs):
    assert_usage_error(cli("show", "zzzzzzzzzz"), "zzzzzzzzzz")
    assert_usage_error(cli("show", "no such run"))


def test_show_ambiguous_prefix(three_runs):
    common = os.path.commonprefix(list(three_runs.values()))
    if len(common) < 4:
        pytest.skip("the run ids straddle a time boundary and share fewer than 4 characters")
    assert_usage_error(cli("show", common[:4]), "several runs")


def test_runs_malformed_where(three_runs):
    line = assert_usage_error(cli("runs", "--where", "metrics.acc >"), "metrics.acc >")
    assert "Traceback" not in line
    assert_usage_error(cli("runs", "--where", "metrics.acc >", "--format", "json"))


def test_runs_unknown_experiment(three_runs):
    assert_usage_error(cli("runs", "--experiment", "nope"), "nope")
    assert_usage_error(cli("runs", "-e", "e", "-e", "nope", "--format", "csv"), "nope")


def test_runs_unknown_column(three_runs):
    assert_usage_error(cli("runs", "--columns", "bogus"), "bogus")


def test_runs_without_a_workspace_says_to_run_init(tmp_path):
    assert "MLO_HOME" not in os.environ
    assert not any((p / ".mlo").is_dir() for p in (tmp_path, *tmp_path.parents)), "a workspace above tmp_path"
    line = assert_usage_error(cli("runs"), "mlo init")
    assert "workspace" in line
    assert not (tmp_path / ".mlo").exists()  # listing must not create one
    assert_usage_error(cli("show", "abcd1234"), "mlo init")
    assert not (tmp_path / ".mlo").exists()


# -- real processes ----------------------------------------------------------------------------------------------
def run_mlo(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    return subprocess.run(
        [sys.executable, "-m", "mlo", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_subprocess_init_runs_show(tmp_path, tmp_path_factory, three_runs):
    env = {"MLO_HOME": os.environ["MLO_HOME"]}
    proc = run_mlo(
        "runs", "-e", "e", "--format", "json", "--order-by", "metrics.acc desc", cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [(r["name"], r["metrics.acc"]) for r in records] == [("a", 0.9), ("b", 0.7)]

    proc = run_mlo("show", three_runs["a"][:12], "--cells", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["a", "[finished]", "run", three_runs["a"]]
    assert proc.stdout.splitlines()[-2:] == ["--- In [1]", "x = 1"]

    proc = run_mlo("runs", "--where", "metrics.acc >", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("mlo: "), proc.stderr

    # without MLO_HOME: the nearest .mlo upward from the working folder
    sub = tmp_path / "notebooks"
    sub.mkdir()
    proc = run_mlo("runs", "--format", "csv", "-c", "name", "--order-by", "name asc", cwd=sub)
    assert proc.returncode == 0, proc.stderr
    assert [r["name"] for r in read_csv(proc.stdout)] == ["a", "b", "c"]

    fresh = tmp_path_factory.mktemp("fresh")
    assert not any((p / ".mlo").is_dir() for p in (fresh, *fresh.parents))
    proc = run_mlo("runs", cwd=fresh)
    assert proc.returncode == 2
    assert proc.stderr.startswith("mlo: ") and "mlo init" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr

    proc = run_mlo("init", cwd=fresh)
    assert proc.returncode == 0, proc.stderr
    assert (fresh / ".mlo" / "mlo.db").is_file()
    proc = run_mlo("runs", "--format", "csv", cwd=fresh)
    assert proc.returncode == 0, proc.stderr
    assert read_csv(proc.stdout) == []  # a new, empty workspace


def test_subprocess_version_and_help(tmp_path):
    proc = run_mlo("--version", cwd=tmp_path)
    assert proc.returncode == 0 and mlo.__version__ in proc.stdout
    proc = run_mlo("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("init", "runs", "show", "demo"):
        assert command in proc.stdout
