"""Model cards: lineage (run, code digest, data digests), metrics, signature, evidence and audit, as HTML and Markdown."""

from __future__ import annotations

import hashlib

import pytest

import mlo


@pytest.fixture
def churn(sqlite_ws, data, pipeline, monkeypatch):
    monkeypatch.setenv("MLO_USER", "ana")
    X, y = data
    with mlo.start_run("train", experiment="churn") as run:
        snap = mlo.snapshot(X.assign(churned=y), "train")
        mlo.record_cell("model = make_pipeline(pre, rf).fit(X, y)", execution_count=1)
        mlo.record_cell("mlo.register_model(model, 'churn')", execution_count=2)
        mlo.log_metric("auc", 0.87)
        mv = mlo.register_model(pipeline, "churn", input_example=X.head(), description="Monthly churn.")
    mlo.set_policy("production", validation=True, drift=True)
    passed = sqlite_ws.reports.save(
        "validation", {"passed": True, "n_checks": 2}, {}, subject=mv.node, passed=True
    )
    drift = sqlite_ws.reports.save("drift", {"dataset_drift": False}, {}, run_id=run.id, passed=True)
    mlo.promote("churn", 1, "production", reason="quarterly release")
    return {"mv": mv, "run": run, "snap": snap, "validation": passed, "drift": drift}


def test_card_collects_lineage_metrics_signature_evidence_and_audit(churn):
    d = mlo.model_card("churn", 1).to_dict()
    assert d["ref"] == "churn/1" and d["aliases"] == ["production"] and d["description"] == "Monthly churn."
    lin = d["lineage"]
    assert lin["run"]["id"] == churn["run"].id and lin["run"]["experiment"] == "churn"
    expected = hashlib.sha256(
        b"model = make_pipeline(pre, rf).fit(X, y)\n\x00mlo.register_model(model, 'churn')\n\x00"
    ).hexdigest()
    assert lin["code"] == {"cells": 2, "digest": expected}
    assert lin["data"] == [
        {"id": churn["snap"].id, "ref": "train@1", "digest": churn["snap"].digest, "rows": 300, "columns": 4}
    ]
    assert d["metrics"] == {"auc": 0.87}
    assert [c["name"] for c in d["signature"]["columns"]] == ["tenure", "plan", "spend"]
    assert [r["id"] for r in d["validation"]] == [churn["validation"]]
    assert [r["id"] for r in d["drift"]] == [churn["drift"]]
    assert d["policies"][0]["ok"] and set(d["policies"][0]["evidence"]) == {
        churn["validation"],
        churn["drift"],
    }
    assert [(a["action"], a["alias"], a["user"]) for a in d["audit"]] == [
        ("register", None, "ana"),
        ("promote", "production", "ana"),
    ]
    assert d["audit"][1]["reason"] == "quarterly release"


def test_card_renders_markdown_and_a_standalone_html_page(churn, tmp_path):
    card = mlo.model_card("churn@production")
    md = card.to_markdown()
    assert md.startswith("# churn v1 `@production`")
    for text in (
        "## Lineage",
        churn["snap"].digest,
        churn["run"].id,
        "| auc | 0.87 |",
        "| tenure | int64 | integer |",
        churn["validation"],
        "quarterly release",
        "## Policies",
    ):
        assert text in md, text
    html = card.to_html()
    assert html.startswith("<!doctype html>") and "<script" not in html and churn["snap"].digest in html
    assert card.save(tmp_path / "card.md").read_text() == md
    assert card.save(tmp_path / "out" / "card.html").read_text() == html
    with pytest.raises(mlo.InvalidInput, match="use a .html or .md file name"):
        card.save(tmp_path / "card.pdf")
    assert "Model card: churn v1" in card._repr_html_()


def test_card_of_a_version_without_run_or_signature(sqlite_ws):
    mlo.register_model(lambda X: X, "identity")
    d = mlo.model_card("identity", 1).to_dict()
    assert d["lineage"] == {"run": None, "code": None, "data": []}
    assert d["signature"] is None and d["metrics"] == {} and d["validation"] == []
    assert "none recorded" in mlo.model_card("identity", 1).to_markdown().lower()


def test_registry_objects_render_html_and_json(churn):
    import json

    mv = churn["mv"]
    event = mlo.set_alias("churn", "staging", 1, reason="<b>escaped</b>")
    policy = mlo.set_policy("staging", validation=True)
    handle = mlo.load_model("churn/1")
    for obj in (mv, event, policy, mv.signature, handle):
        html = obj._repr_html_()
        assert "<script" not in html and len(html) < 20_000
    assert "&lt;b&gt;escaped&lt;/b&gt;" in event._repr_html_()
    for obj in (mv, event, policy, handle):
        json.dumps(obj.to_dict())
    assert str(policy) == "staging (every model, from store): a passed validation of the version"
    assert str(event) == "churn@staging: none → v1 (set_alias) by ana — <b>escaped</b>"


def test_markdown_cards_carry_no_raw_html(sqlite_ws, data, monkeypatch):
    """Every value in a card comes from users or models: none of it may reach a Markdown renderer as HTML."""
    import re

    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("MLO_USER", "<img src=x onerror=alert(1)>")
    X = pd.DataFrame({"<svg onload=alert(1)>": [0.0, 1.0, 2.0, 3.0], "b`<i>": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 1, 0, 1]
    with mlo.start_run("<b>bold run</b>", experiment="<script>x</script>"):
        mlo.log_metric("<iframe>", 0.5)
        mv = mlo.register_model(
            LogisticRegression().fit(X, y),
            "html",
            input_example=X,
            description="**Monthly** churn <script>alert(1)</script> & more",
        )
    mlo.set_alias("html", "staging", mv.version, reason="<a href=javascript:alert(1)>why</a>\nsecond line")
    md = mlo.model_card("html", 1).to_markdown()
    assert re.search(r"<[A-Za-z/!?]", md) is None, md
    assert "**Monthly** churn &lt;script>alert(1)&lt;/script> &amp; more" in md  # Markdown kept, HTML not
    assert "&lt;img src=x onerror=alert(1)&gt;" in md and "&lt;iframe&gt;" in md
    assert "&lt;a href=javascript:alert(1)&gt;why&lt;/a&gt; second line" in md  # one table row
    html = mlo.model_card("html", 1).to_html()
    assert "<script>alert" not in html and "<img src=x" not in html
