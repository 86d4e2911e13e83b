"""``mlo maturity`` on workspaces built to levels 0, 1 and 2 (level 3, which needs monitoring and an alert that
acted, is in tests/monitor/test_maturity_level3.py), and the magics of governance in a real IPython shell."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
from click.testing import CliRunner

import mlo
from mlo.cli import main


def levels(m):
    return {c.name: c.met for c in m.criteria}


def build_level_1():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (X.a > 0).astype(int)
    with mlo.start_run("lr", experiment="churn") as run:
        mlo.snapshot(X.assign(y=y), "train")
        model = LogisticRegression().fit(X, y)
        mlo.log_metric("auc", 0.9)
    mv = mlo.register_model(model, "churn", input_example=X.head(), run=run)
    return model, X, y, mv


def test_an_empty_workspace_is_level_0_with_the_first_steps(sqlite_ws):
    m = mlo.maturity()
    assert m.level == 0 and m.name == "manual" and not any(c.met for c in m.criteria)
    assert m.next_steps[0].level == 1 and "mlo.start_run" in m.next_steps[0].next_step
    r = CliRunner().invoke(main, ["maturity", "--min", "1", "--format", "json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["level"] == 0


def test_tracked_runs_data_and_models_are_level_1(sqlite_ws):
    build_level_1()
    m = mlo.maturity()
    assert m.level == 1 and m.name == "tracked"
    assert levels(m)["experiments tracked"] and levels(m)["data versioned"] and levels(m)["models registered"]
    assert not levels(m)["pipelines run"] and "mlo pipeline run" in str(m)
    # a run with no metrics and a snapshot no run read do not count
    assert "1 run, 1 with metrics" in next(c.evidence for c in m.criteria if c.name == "experiments tracked")


def test_a_problem_a_pipeline_validation_and_a_gated_promotion_are_level_2(sqlite_ws, tmp_path):
    from mlo.pipeline import run

    model, X, y, mv = build_level_1()
    (tmp_path / "mlo.toml").write_text(
        '[problem]\nobjective = "Call the customers likely to leave"\ntarget = { metric = "accuracy", min = 0.8 }\n'
    )
    mlo.workspace.reset_cache()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    nbformat.write(nb, tmp_path / "stage.ipynb")
    (tmp_path / "pipeline.yaml").write_text("stages:\n  stage:\n    notebook: stage.ipynb\n")
    assert run(tmp_path / "pipeline.yaml", log=None).exit_code == 0
    assert mlo.maturity().level == 1  # no validation evidence, no gated promotion yet
    mlo.validate(model, X, y, model_version=mv)
    mlo.promote("churn", mv.version, "production")  # checked against the policy [problem] derives
    m = mlo.maturity()
    assert m.level == 2 and m.name == "automated pipeline", str(m)
    assert not levels(m)["predictions monitored"] and m.next_steps[0].level == 3
    card = mlo.model_card("churn", mv.version).to_dict()
    assert (
        card["maturity"]["level"] == 2
        and card["problem"]["objective"] == "Call the customers likely to leave"
    )


def test_a_forced_promotion_does_not_count_as_gated(sqlite_ws):
    build_level_1()
    mlo.set_policy("production", validation=True)
    mlo.promote("churn", 1, "production", force=True, reason="hotfix")
    c = next(c for c in mlo.maturity().criteria if c.name == "promotions gated by a policy")
    assert not c.met and "1 promotion, 0 checked" in c.evidence


def test_the_magics_define_show_and_judge_the_problem(shell):
    shell.run(
        "%%mlo problem\n"
        'objective = "Rank the leads"\n'
        'target = { metric = "accuracy", min = 0.7 }\n'
        "[constraints]\n"
        "model_size_mb = 10\n"
    )
    assert mlo.problem().objective == "Rank the leads" and mlo.problem().constraints == {
        "model_size_mb": 10.0
    }
    assert "Rank the leads" in shell.run("%mlo problem")._repr_html_()
    status = shell.run("%mlo status")
    assert status.state == "unknown" and "no production model yet" in str(status)
    assert shell.run("%mlo maturity").level == 0
    from IPython.core.error import UsageError

    err = shell.fails("%%mlo problem\nobjective = \n")
    assert isinstance(err, UsageError) and "not valid TOML" in str(err)
    err = shell.fails('%%mlo problem\nobjective = "x"\ntargte = 1\n')
    assert isinstance(err, UsageError) and "unknown key 'targte'" in str(err)
    assert mlo.problem().objective == "Rank the leads"  # a bad cell loses nothing already set
    shell.run("%mlo problem --clear")
    err = shell.fails("%mlo problem")
    assert isinstance(err, UsageError) and "no problem is defined" in str(err)
