"""mlo reproduce: rebuild the notebook behind a run, re-execute it on the same data, compare the metrics."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from notebooks_on_disk import write_notebook

import mlo
from mlo.cli import main
from mlo.pipeline import run, run_notebook
from mlo.pipeline.reproduce import reproduce


@pytest.fixture
def interactive_run(sqlite_ws, tmp_path):
    """A notebook run the way a user runs one: data read from a file and snapshotted, then a %%mlo run cell."""
    (tmp_path / "raw.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(100)))
    nb = write_notebook(
        tmp_path / "explore.ipynb",
        "%load_ext mlo\nimport mlo, pandas as pd",
        "df = pd.read_csv('raw.csv')\n%mlo snapshot raw.csv --name raw",
        "%%mlo run fit\nscale = 2.0\nm = float(df.x.mean()) * scale\n%mlo metric mean=$m",
    )
    r = run_notebook(nb, cwd=tmp_path)
    assert r.status == "ok", r.message
    return mlo.runs(where="name = 'fit'").iloc[0].run_id


def test_an_interactive_run_reproduces_and_a_data_change_is_caught(interactive_run, tmp_path):
    rep = reproduce(interactive_run)
    assert rep.reproduced and rep.exit_code == 0, rep.summary()
    assert [(c.key, c.original, c.reproduced) for c in rep.checks] == [("mean", 99.0, 99.0)]
    assert rep.inputs == {"raw": "raw@1"}
    new = mlo.get_run(rep.reproduction)
    assert new.tags["mlo.reproduces"] == interactive_run
    assert mlo.get_run(rep.compared).name == "fit" and mlo.get_run(rep.compared).parent_id == new.id
    assert "1 value matches" in rep._repr_html_()

    # the source file changed since: the reproduction still reads the version the run read
    (tmp_path / "raw.csv").write_text("x\n" + "".join(f"{i * 10}\n" for i in range(100)))
    assert reproduce(interactive_run).reproduced
    # ... unless asked to run on the new data, which does not reproduce the metric
    mlo.snapshot(tmp_path / "raw.csv", "raw")
    rep = reproduce(interactive_run, data={"raw": "raw@2"})
    assert not rep.reproduced and rep.exit_code == 1
    assert rep.checks[0].reproduced == 990.0 and "mean differs" in rep.summary()
    with pytest.raises(mlo.GateFailed, match="did not reproduce"):
        rep.raise_for_mismatch()
    with pytest.raises(mlo.InvalidInput, match="read no snapshot named 'other'; it read: raw"):
        reproduce(interactive_run, data={"other": "raw@1"})


def test_a_pipeline_stage_reproduces_from_its_executed_notebook(project):
    result = run(project / "pipeline.yaml", log=None)
    assert result.exit_code == 0
    stage = next(t for t in result.tasks if t.name == "train[C=2.0]")
    (project / "data" / "train.parquet").unlink()  # the stage's input is restored from its snapshot
    rep = reproduce(stage.run_id)
    assert rep.reproduced, rep.summary()
    assert mlo.get_run(rep.reproduction).params == {"C": 2.0}


def test_cli_and_runs_that_cannot_be_rebuilt(interactive_run, sqlite_ws):
    r = CliRunner().invoke(main, ["reproduce", interactive_run[:12]])
    assert r.exit_code == 0 and "reproduced run" in r.stdout and "✓ mean" in r.stdout
    with mlo.start_run("bare") as bare:
        mlo.log_metric("m", 1.0)
    r = CliRunner().invoke(main, ["reproduce", bare.id])
    assert r.exit_code == 2 and "captured no cells" in r.stderr
    r = CliRunner().invoke(main, ["reproduce", interactive_run, "--data", "raw"])
    assert r.exit_code == 2 and "write NAME=REF" in r.stderr
    assert isinstance(mlo.runs(), pd.DataFrame)
