"""Maturity level 3 from the records: predictions logged, alert rules, an alert that fired and rolled the
production alias back — on top of a problem, a pipeline run, validation evidence and a gated promotion."""

from __future__ import annotations

import textwrap

import nbformat
import pytest
from monitor_data import make, serve_like

import mlo


@pytest.mark.kernel
def test_an_alert_that_rolled_production_back_makes_level_3(trained, tmp_path):
    from mlo.pipeline import run

    ws = mlo.workspace.current()
    (ws.home.parent / "mlo.toml").write_text(
        textwrap.dedent("""
        [problem]
        objective = "Keep the churn model that serves as good as the one it replaced"
        model = "churn"
        target = { metric = "accuracy", min = 0.6 }

        [[monitor.rules]]
        name = "canary worse"
        when = "canary_worse"
        actions = [{ type = "rollback", alias = "production" }]
        """)
    )
    mlo.workspace.reset_cache()
    assert mlo.maturity().level == 0  # the training run logged no metric
    with mlo.start_run("eval", experiment="churn"):
        mlo.log_metric("accuracy", 0.8)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    nbformat.write(nb, tmp_path / "stage.ipynb")
    (tmp_path / "pipeline.yaml").write_text("stages:\n  stage:\n    notebook: stage.ipynb\n")
    assert run(tmp_path / "pipeline.yaml", log=None).exit_code == 0

    X, y = make(500, trained.rng)
    v2 = mlo.register_model(trained.model, "churn")
    mlo.validate(trained.model, X[["age", "income"]], y, model_version=v2).raise_for_failures()
    mlo.promote("churn", 2, "production")  # gated by the policy [problem] derives
    m = mlo.maturity()
    assert m.level == 2 and {c.name for c in m.next_steps} == {
        "predictions monitored",
        "alerts fired",
        "automated retraining or rollback",
    }

    serve_like(trained, canary_error_every=10)
    (alert,) = mlo.monitor.check(window="1h")
    assert alert.actions[0]["ok"]
    m = mlo.maturity()
    assert m.level == 3 and m.name == "automated operations", str(m)
    assert "1 rollback" in next(
        c.evidence for c in m.criteria if c.name == "automated retraining or rollback"
    )
