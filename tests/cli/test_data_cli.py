"""mlo snapshot / snapshots / restore / lineage from a terminal."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from click.testing import CliRunner

import mlo
from mlo.cli import main


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_snapshot_files_list_restore_and_lineage(sqlite_ws, tmp_path):
    data = tmp_path / "raw"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n")
    r = cli("snapshot", str(data))
    assert r.exit_code == 0 and r.stdout.startswith("snapshot:raw@1  folder")

    df = pd.DataFrame({"x": np.arange(5.0)})
    with mlo.start_run("prep"):
        mlo.load_snapshot("raw")
        mlo.snapshot(df, "clean", role="output")

    r = cli("snapshots")
    assert r.exit_code == 0 and "clean" in r.stdout and "raw" in r.stdout
    listing = json.loads(cli("snapshots", "--format", "json").stdout)
    assert [(s["name"], s["version"]) for s in listing] == [("clean", 1), ("raw", 1)]
    assert cli("snapshots", "clean", "--format", "csv").stdout.startswith("name,version,digest")

    out = tmp_path / "clean.parquet"
    r = cli("restore", "clean", "--to", str(out))
    assert r.exit_code == 0 and pq.read_table(out).num_rows == 5
    r = cli("restore", "raw@1", "--to", str(tmp_path / "back"))
    assert (tmp_path / "back" / "a.csv").read_text() == "x\n1\n"

    r = cli("lineage", "clean")
    assert r.exit_code == 0
    assert (
        "snapshot raw@1 --input--> run prep" in r.stdout
        and "run prep --output--> snapshot clean@1" in r.stdout
    )
    assert cli("lineage", "clean", "--format", "dot").stdout.startswith("digraph lineage")
    assert json.loads(cli("lineage", "clean", "--format", "json").stdout)["upstream"]
    svg = tmp_path / "lin.svg"
    r = cli("lineage", "clean", "--format", "svg", "-o", str(svg))
    assert r.exit_code == 0 and ET.parse(svg).getroot().tag.endswith("svg")


def test_errors_exit_2_with_one_line(sqlite_ws):
    for args, fragment in (
        (["lineage", "nope"], "no snapshot named 'nope'"),
        (["restore", "nope@2"], "no snapshot named 'nope'"),
        (["lineage", "x:1"], "unknown lineage node kind"),
    ):
        r = cli(*args)
        assert r.exit_code == 2 and r.stdout == ""
        assert r.stderr.strip().startswith("mlo: ") and fragment in r.stderr and r.stderr.count("\n") == 1
    assert cli("snapshots").stdout.startswith("no snapshots yet")
