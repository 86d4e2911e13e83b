"""The problem as code: ``[problem]`` read and checked, the checks, policy and alert rules it derives (explicit
ones win), ``mlo status`` against the production model, a real pipeline gated by the derived checks."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlo
from mlo.cli import main
from mlo.errors import InvalidInput
from mlo.monitor.rules import load_rules
from mlo.registry.errors import PromotionRefused

PROBLEM = """
[problem]
objective = "Call the customers likely to leave next month"
owner = "retention"
model = "churn"
target = { metric = "roc_auc", min = 0.8, run_metric = "auc" }
guardrails = ["recall"]
tolerance = 0.05

[problem.constraints]
model_size_mb = 5
latency_p95_ms = 50
data_freshness_days = 30
fairness = { sensitive = "region", max_dp_difference = 0.3 }
"""


def write_toml(ws, text: str) -> None:
    (ws.home.parent / "mlo.toml").write_text(textwrap.dedent(text))
    mlo.workspace.reset_cache()


def data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "region": rng.choice([0, 1], n)})
    y = (X.a + 0.5 * X.b + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return X, y


def fit(X, y, **kw):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**kw).fit(X, y)


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[problem]\ntarget = { metric = "auc", min = 0.8 }\n', 'needs objective = "…"'),
        ('[problem]\nobjective = "x"\ntarget = { metric = "auc" }\n', "give the success bound"),
        ('[problem]\nobjective = "x"\ntargte = { metric = "auc", min = 1 }\n', "did you mean 'target'"),
        (
            '[problem]\nobjective = "x"\n[problem.constraints]\nlatency_p95 = 5\n',
            "did you mean 'latency_p95_ms'",
        ),
        ('[problem]\nobjective = "x"\n[problem.constraints]\nmodel_size_mb = -1\n', "must be above 0"),
        (
            '[problem]\nobjective = "x"\n[problem.constraints]\ncost_per_1k_predictions = 1\n',
            "serving_cost_per_hour",
        ),
        (
            '[problem]\nobjective = "x"\n[problem.constraints]\nfairness = { sensitive = "sex" }\n',
            "give a bound",
        ),
        ('[problem]\nobjective = "x"\ntarget = { metric = "auc", min = 0.9, max = 0.1 }\n', "is above max"),
    ],
)
def test_a_wrong_problem_is_one_line_naming_the_file(sqlite_ws, toml, message):
    write_toml(sqlite_ws, toml)
    with pytest.raises(InvalidInput, match="mlo.toml") as exc:
        mlo.workspace.current()
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_validation_without_checks_runs_what_the_problem_derives_and_explicit_checks_win(sqlite_ws):
    from mlo import checks

    write_toml(sqlite_ws, PROBLEM)
    X, y = data()
    mv = mlo.register_model(fit(X, y), "churn", input_example=X.head())
    rep = mlo.validate(mv.load(), X, y, model_version=mv)
    assert rep.names == [
        "problem.target.roc_auc",
        "problem.guardrail.recall",
        "problem.fairness.demographic_parity_difference",
    ]
    assert rep.passed and rep["problem.guardrail.recall"].passed  # no production yet: a first version passes
    # an explicit threshold on the same metric replaces the target's; the rest is added
    rep = mlo.validate(mv.load(), X, y, checks=[checks.threshold("roc_auc", min=0.99)], model_version=mv)
    assert rep.names[0] == "threshold.roc_auc" and not rep.passed
    assert "problem.target.roc_auc" not in rep.names and "problem.guardrail.recall" in rep.names
    assert mlo.validate(mv.load(), X, y, checks=[checks.threshold("accuracy", 0.5)], problem=False).names == [
        "threshold.accuracy"
    ]
    other = mlo.register_model(fit(X, y), "fraud", input_example=X.head())  # the problem is about churn
    with pytest.raises(InvalidInput, match="needs checks"):
        mlo.validate(other.load(), X, y, model_version=other)


def test_production_needs_a_passed_validation_unless_a_policy_says_otherwise(sqlite_ws):
    write_toml(sqlite_ws, PROBLEM)
    X, y = data()
    mv = mlo.register_model(fit(X, y), "churn", input_example=X.head())
    with pytest.raises(PromotionRefused, match="a passed validation of churn/1 no older than 30 days"):
        mlo.promote("churn", 1, "production")
    mlo.validate(mv.load(), X, y, model_version=mv)
    mlo.promote("churn", 1, "production")
    assert mlo.model_card("churn", 1).to_dict()["policies"][0]["source"] == "[problem]"
    # an explicit policy wins over the derived one
    write_toml(sqlite_ws, PROBLEM + "\n[policy.production]\ndrift = true\n")
    mlo.register_model(fit(X, y, C=0.5), "churn", input_example=X.head())
    with pytest.raises(PromotionRefused, match="drift check"):
        mlo.promote("churn", 2, "production")


def test_alert_rules_come_from_the_target_and_latency_unless_a_rule_watches_them(sqlite_ws):
    write_toml(
        sqlite_ws,
        '[problem]\nobjective = "o"\nmodel = "churn"\ntarget = { metric = "accuracy", min = 0.9 }\n'
        "[problem.constraints]\nlatency_p95_ms = 40\n",
    )
    rules = load_rules(mlo.workspace.current().config)
    assert [(r.when, r.model, r.consecutive) for r in rules] == [
        ("accuracy < 0.9", "churn", 2),
        ("latency_p95 > 40", "churn", 2),
    ]
    write_toml(
        sqlite_ws,
        '[problem]\nobjective = "o"\nmodel = "churn"\ntarget = { metric = "accuracy", min = 0.9 }\n'
        '[[monitor.rules]]\nname = "mine"\nwhen = "accuracy < 0.5"\n',
    )
    assert [r.when for r in load_rules(mlo.workspace.current().config)] == ["accuracy < 0.5"]


def test_status_judges_production_and_the_latest_runs_and_gates_in_ci(sqlite_ws):
    write_toml(sqlite_ws, PROBLEM.replace("model_size_mb = 5", "model_size_mb = 0.0001"))
    assert "no production model yet" in mlo.status().items[0].evidence  # nothing yet: status still answers
    X, y = data()
    with mlo.start_run("lr") as run:
        mlo.snapshot(X.assign(y=y), "train")
        model = fit(X, y)
        mlo.log_metric("auc", 0.91)
    mv = mlo.register_model(model, "churn", input_example=X.head(), run=run)
    mlo.validate(mv.load(), X, y, model_version=mv)
    mlo.promote("churn", 1, "production")
    s = mlo.status()
    by = {i.name: i for i in s.items}
    assert by["target roc_auc (production)"].state == "met" and by["target roc_auc (production)"].value > 0.8
    assert by["target roc_auc (latest runs)"].value == pytest.approx(0.91)
    assert by["model size (MB)"].state == "broken" and s.state == "broken"
    assert by["latency p95 (ms)"].state == "unknown" and "0 predictions" in by["latency p95 (ms)"].evidence
    assert by["data freshness (days)"].state == "met"
    assert (
        by["guardrail recall"].state == "unknown"
    )  # the first production version had nothing to compare with
    assert "broken" in s._repr_html_() and "<script" not in s._repr_html_()

    r = CliRunner().invoke(main, ["status", "--gate", "--format", "json"])
    assert r.exit_code == 1 and "1 broken: model size (MB)" in r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "broken" and doc["model"] == "churn" and doc["version"] == 1
    assert CliRunner().invoke(main, ["status"]).exit_code == 0
    r = CliRunner().invoke(main, ["problem", "--format", "json"])
    assert json.loads(r.stdout)["target"] == {
        "metric": "roc_auc",
        "min": 0.8,
        "max": None,
        "run_metric": "auc",
    }


def test_a_problem_set_in_the_session_wins_until_cleared(sqlite_ws):
    write_toml(sqlite_ws, PROBLEM)
    p = mlo.problem("Rank leads", target={"metric": "accuracy", "min": 0.6})
    assert p.objective == "Rank leads" and mlo.problem().target.metric == "accuracy"
    assert mlo.problem(clear=True).objective == "Call the customers likely to leave next month"
    with pytest.raises(InvalidInput, match="unknown key 'guardrail'.*did you mean 'guardrails'"):
        mlo.problem("x", guardrail=["recall"])


def test_the_derived_checks_gate_a_real_pipeline(sqlite_ws, tmp_path):
    """A stage that validates with no checks fails the pipeline (exit 1) when the model misses the target."""
    import nbformat

    from mlo.pipeline import run

    write_toml(sqlite_ws, '[problem]\nobjective = "o"\ntarget = { metric = "accuracy", min = 0.999 }\n')
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(
        nbformat.v4.new_code_cell(
            textwrap.dedent("""
            import mlo
            import numpy as np
            from sklearn.tree import DecisionTreeClassifier
            rng = np.random.default_rng(0)
            X = rng.normal(size=(200, 3)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
            mv = mlo.register_model(DecisionTreeClassifier(max_depth=1).fit(X, y), "churn")
            mlo.validate(mv.load(), X, y, model_version=mv).raise_for_failures()
            """).strip()
        )
    )
    nbformat.write(nb, tmp_path / "validate.ipynb")
    (tmp_path / "pipeline.yaml").write_text("stages:\n  validate:\n    notebook: validate.ipynb\n")
    result = run(tmp_path / "pipeline.yaml", log=None)
    assert result.exit_code == 1
    (task,) = result.tasks
    assert task.status == "gate" and "problem.target.accuracy" in task.message
