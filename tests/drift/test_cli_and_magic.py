"""``mlo drift REF CUR`` (exit 1 on drift) and ``%mlo drift REF CUR`` in a real IPython shell."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from IPython.core.error import UsageError

import mlo
from mlo.cli import main
from mlo.drift import sketch


def frames(shift: float, n: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y"], n)})
    cur = pd.DataFrame(
        {"a": rng.normal(shift, size=n), "b": rng.normal(shift, size=n), "c": rng.choice(["x", "y"], n)}
    )
    return ref, cur


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_exit_codes_text_json_and_html(sqlite_ws, tmp_path):
    ref, cur = frames(0.5)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    mlo.snapshot(ref, "train")

    drifted = cli("drift", "train", tmp_path / "cur.csv", "--html", tmp_path / "d.html")
    assert drifted.exit_code == 1, drifted.output
    lines = drifted.stdout.splitlines()
    assert lines[0] == "DRIFT: dataset drift: 2 of 3 columns drifted (67% ≥ 50%): a, b"
    assert lines[1].startswith("reference  snapshot:train@1 (3,000 rows × 3)")
    assert lines[2].startswith(f"current    {tmp_path / 'cur.csv'}")
    assert any(line.startswith("report ") for line in lines)
    assert (tmp_path / "d.html").read_text().startswith("<!doctype html>")
    assert len(sqlite_ws.reports.list(kind="drift")) == 1

    calm = cli("drift", tmp_path / "ref.parquet", "train", "--json", "--no-save")
    assert calm.exit_code == 0, calm.output
    d = json.loads(calm.stdout)
    assert d["dataset_drift"] is False and d["id"] is None and len(d["columns"]) == 3
    assert len(sqlite_ws.reports.list(kind="drift")) == 1

    strict = cli(
        "drift", "train", tmp_path / "cur.csv", "--columns", "c", "--method", "chisquare", "--no-save"
    )
    assert strict.exit_code == 0 and "chisquare" in strict.stdout

    bad = cli("drift", "train", "nope@7")
    assert bad.exit_code == 2 and bad.stdout == "" and bad.stderr.startswith("mlo: current:")


def test_magic_returns_the_report_and_gates(shell, tmp_path):
    ref, cur = frames(0.5)
    shell.ip.user_ns.update(ref=ref, cur=cur)
    report = shell.run("%mlo drift ref cur")
    assert isinstance(report, mlo.DriftReport) and report.dataset_drift and report.id
    assert "Drift report" in report._repr_html_()
    html = tmp_path / "m.html"
    shell.run(f"%mlo drift ref ref --no-save --html {html}")
    assert html.exists()
    err = shell.fails("%mlo drift ref cur --gate --no-save")
    assert isinstance(err, mlo.GateFailed) and "dataset drift: 2 of 3 columns drifted" in str(err)
    assert shell.run("%mlo drift ref cur --columns c --gate --no-save").passed
    mlo.snapshot(ref, "train")
    assert shell.run("%mlo drift train cur --profile --no-save").mode == "profile"
    with pytest.raises(UsageError, match="unknown drift method"):
        shell.run("%mlo drift ref cur --method nope")
    with pytest.raises(UsageError, match="the following arguments are required: current"):
        shell.run("%mlo drift ref")
    assert "%mlo drift REF CUR" in mlo.jupyter.magics.usage()


def test_magic_compares_dask_frames_and_sketches_from_the_namespace(shell):
    dd = pytest.importorskip("dask.dataframe")
    ref, cur = frames(0.5)
    shell.ip.user_ns.update(ref=dd.from_pandas(ref, npartitions=3), cur=cur, cur_sketch=sketch(cur))
    report = shell.run("%mlo drift ref cur --no-save")
    assert report.mode == "sketch" and report.drifted_columns == ["a", "b"]
    assert shell.run("%mlo drift ref cur_sketch --no-save").drifted_columns == ["a", "b"]
    with pytest.raises(UsageError, match="mode='profile' compares with a snapshot's profile"):
        shell.run("%mlo drift ref cur --profile --no-save")
