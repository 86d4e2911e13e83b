"""``%mlo register``, ``%mlo models`` and ``%mlo promote`` through a real IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

import mlo
from mlo.registry import PromotionRefused


@pytest.fixture
def with_model(shell, data, pipeline):
    X, _ = data
    shell.ip.user_ns.update(model=pipeline, X=X)
    return shell


def test_register_from_the_notebook_with_alias_and_example(with_model, capsys):
    sh = with_model
    sh.run("%mlo start train")
    sh.run("%mlo register model --name churn --alias staging --example X")
    sh.run("%mlo end")
    out = capsys.readouterr().out
    assert "registered churn/1 as @staging (skops," in out and "from run " in out
    mv = mlo.get_model_version("churn@staging")
    assert mv.run_id == mlo.runs().run_id.iloc[0]
    assert mv.signature.source == "input_example"


def test_models_shows_a_table(with_model):
    with_model.run("%mlo register model --name churn")
    with_model.run("%mlo register model --name churn")
    view = with_model.run("%mlo models --table")
    html = view._repr_html_()
    assert "1 model, 2 versions" in html and "<script" not in html
    assert view.df.version.tolist() == [2, 1]
    assert "churn" in repr(view)
    assert with_model.run("%mlo models churn --table").df.name.unique().tolist() == ["churn"]


def test_models_widget_shows_versions_and_the_card_of_the_picked_one(with_model):
    with_model.run("%mlo register model --name churn --alias staging")
    with_model.run("%mlo register model --name churn")
    widget = with_model.run("%mlo models")
    assert [r["id"] for r in widget.table.rows] == ["churn@v2", "churn@v1"]
    header = [c["key"] for c in widget.table.columns]
    row_v1 = dict(zip(header, widget.table.rows[1]["cells"], strict=True))
    assert row_v1["aliases"] == "staging" and row_v1["validation"] == "none"
    assert (
        widget.table.selected == ["churn@v2"] and "Model card: churn v2" in widget.card.value
    )  # newest first
    widget.select("churn@v1")
    assert "Model card: churn v1" in widget.card.value and "staging" in widget.card.value
    widget.table.sort = {"column": "version", "ascending": True}
    assert [r["id"] for r in widget.table.rows] == ["churn@v1", "churn@v2"]
    bundle = widget._repr_mimebundle_()
    assert (
        "application/vnd.jupyter.widget-view+json" in bundle and "1 model, 2 versions" in bundle["text/html"]
    )


def test_promote_refused_is_a_gate_listing_what_is_missing(with_model, capsys):
    sh = with_model
    sh.run("%mlo register model --name churn")
    mlo.set_policy("production", validation=True)
    err = sh.fails("%mlo promote churn 1 production")  # a gate, not a usage error: papermill stops on it
    assert isinstance(err, PromotionRefused) and "a passed validation of churn/1 (none found)" in str(err)
    sh.run("%mlo promote churn 1 production --force --reason 'demo day'")
    assert "churn@production → v1 (forced" in capsys.readouterr().out
    row = mlo.audit("churn").iloc[-1]
    assert row.forced and row.reason == "demo day"


def test_magic_usage_errors(with_model):
    sh = with_model
    err = sh.fails("%mlo register nope --name churn")
    assert isinstance(err, UsageError) and "no variable named 'nope'" in str(err)
    assert "required" in str(sh.fails("%mlo register model"))
    from mlo.jupyter.magics import usage

    assert (
        "%mlo register VAR --name N [--alias A]" in usage() and "%mlo promote NAME VERSION ALIAS" in usage()
    )
    err = sh.fails("%mlo register model --name 'bad name'")
    assert isinstance(err, UsageError) and "not valid" in str(err)


def test_a_pipeline_with_a_step_defined_in_the_notebook_needs_trust(shell, capsys):
    shell.run(
        "import numpy as np\n"
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import make_pipeline\n"
        "class Halver(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None):\n"
        "        return self\n"
        "    def transform(self, X):\n"
        "        return np.asarray(X, dtype=float) / 2\n"
        "X = np.arange(20.0).reshape(10, 2)\n"
        "pipe = make_pipeline(Halver(), LogisticRegression()).fit(X, [0, 1] * 5)\n"
    )
    err = shell.fails("%mlo register pipe --name halved")
    assert isinstance(err, UsageError) and "\n" not in str(err)
    assert "__main__.Halver is defined in the notebook or script itself" in str(err) and "trust=True" in str(
        err
    )
    shell.run("%mlo register pipe --name halved --trust")
    assert "registered halved/1 (cloudpickle," in capsys.readouterr().out
    assert "__main__.Halver" in mlo.get_model_version("halved/1").details["skops_fallback"]
