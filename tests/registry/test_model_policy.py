"""Policies: promotion refused until the evidence is there, forced overrides recorded, where policies come from."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

import mlo
from mlo import workspace
from mlo.registry import PromotionRefused
from mlo.store import schema

DAY_US = 86_400 * 1_000_000


def _report(ws, kind: str, passed: bool, *, subject=None, run_id=None, age_days: float = 0.0) -> str:
    """A stored report as the validation and drift modules keep them, optionally backdated."""
    rid = ws.reports.save(
        kind, {"passed": passed}, {"rows": []}, subject=subject, run_id=run_id, passed=passed
    )
    if age_days:
        when = int(time.time() * 1e6 - age_days * DAY_US)
        ws.db.write(
            lambda c: c.execute(
                update(schema.reports).where(schema.reports.c.id == rid).values(created_at=when)
            )
        )
    return rid


@pytest.fixture
def lr(ws, logreg):
    with mlo.start_run("fit") as run:
        mv = mlo.register_model(logreg, "lr")
    mv.run = run
    return mv


def test_promotion_refused_then_allowed_after_validation(ws, lr, data):
    mlo.set_policy("production", validation={"max_age_days": 7}, reason="release rules")
    with pytest.raises(PromotionRefused) as err:
        mlo.promote("lr", 1, "production")
    msg = str(err.value)
    assert msg.startswith(
        "cannot promote lr/1 to 'production': it needs a passed validation of lr/1 no older than 7 days"
    )
    assert "mlo.validate(" in msg and "force=True" in msg and "\n" not in msg
    assert err.value.exit_code == 1 and isinstance(err.value, mlo.GateFailed)
    with pytest.raises(mlo.NotFound):
        mlo.load_model("lr@production")  # nothing moved

    X, y = data
    report = mlo.validate(
        lr.load(), X[["tenure", "spend"]], y, checks=[mlo.checks.threshold("accuracy", 0.5)], model_version=lr
    )
    assert report.passed
    ev = mlo.promote("lr", 1, "production", reason="validated")
    assert (ev.action, ev.to_version, ev.forced, ev.evidence) == ("promote", 1, False, (report.id,))
    assert ev.details["policy"]["rules"] == {"validation": {"max_age_days": 7.0}}
    assert mlo.load_model("lr@production").model_version.version == 1
    assert mlo.promote("lr", 1, "production") is None  # already there


def test_newest_validation_decides_and_age_counts(ws, lr):
    mlo.set_policy("production", validation={"max_age_days": 7})
    _report(ws, "validation", True, subject=lr.node, age_days=1)
    failed = _report(ws, "validation", False, subject=lr.node)
    with pytest.raises(PromotionRefused, match=f"the latest, report {failed}, failed"):
        mlo.promote("lr", 1, "production")
    old = _report(ws, "validation", True, subject=lr.node, age_days=0)
    ws.db.write(
        lambda c: c.execute(
            update(schema.reports)
            .where(schema.reports.c.id == old)
            .values(created_at=int(time.time() * 1e6 + 1e6))
        )
    )  # the newest: it passed
    assert mlo.promote("lr", 1, "production").evidence == (old,)


def test_stale_validation_is_refused(ws, lr):
    mlo.set_policy("production", validation={"max_age_days": 7})
    rid = _report(ws, "validation", True, subject=lr.node, age_days=9)
    with pytest.raises(PromotionRefused, match=f"report {rid}, is 9.0 days old"):
        mlo.promote("lr", 1, "production")


def test_validation_of_another_version_does_not_count(ws, lr, logreg):
    mlo.register_model(logreg, "lr")
    mlo.set_policy("production", validation=True)
    _report(ws, "validation", True, subject="model:lr/2")
    with pytest.raises(PromotionRefused, match="a passed validation of lr/1 .none found"):
        mlo.promote("lr", 1, "production")
    assert mlo.promote("lr", 2, "production").to_version == 2


def test_drift_check_linked_to_the_version_or_its_run(ws, lr):
    mlo.set_policy("production", drift={"max_age_days": 7})
    _report(ws, "drift", True)  # about nothing in particular: does not count with the default scope
    with pytest.raises(
        PromotionRefused,
        match="a drift check without drift of lr/1 or its run no older than 7 days .none found",
    ):
        mlo.promote("lr", 1, "production")
    drifted = _report(ws, "drift", False, run_id=lr.run_id)
    with pytest.raises(PromotionRefused, match=f"report {drifted}, found drift"):
        mlo.promote("lr", 1, "production")
    ok = _report(ws, "drift", True, subject=f"run:{lr.run_id}")
    ws.db.write(
        lambda c: c.execute(
            update(schema.reports)
            .where(schema.reports.c.id == ok)
            .values(created_at=int(time.time() * 1e6 + 1e6))
        )
    )
    assert mlo.promote("lr", 1, "production").evidence == (ok,)


def test_drift_scope_any_and_passed_false(ws, lr):
    mlo.set_policy("production", drift={"scope": "any", "passed": False})
    _report(ws, "drift", True, age_days=1)  # older than the version: does not count
    with pytest.raises(PromotionRefused, match="a drift check made after lr/1 was registered .none found"):
        mlo.promote("lr", 1, "production")
    rid = _report(ws, "drift", False, subject="snapshot:whatever")  # found drift, but any check will do
    assert mlo.promote("lr", 1, "production").evidence == (rid,)


def test_forced_promotion_records_what_was_missing(ws, lr, monkeypatch):
    monkeypatch.setenv("MLO_USER", "oncall")
    mlo.set_policy("production", validation=True, drift=True)
    ev = mlo.promote("lr", 1, "production", force=True, reason="incident 42")
    assert ev.forced and ev.user == "oncall" and ev.reason == "incident 42"
    assert len(ev.missing) == 2 and "validation" in ev.missing[0] and "drift" in ev.missing[1]
    row = mlo.audit("lr").iloc[-1]
    assert row.action == "promote" and row.forced and row.missing == list(ev.missing)


def test_governed_alias_refuses_set_alias_and_register_alias(ws, lr, logreg):
    mlo.set_policy("production", validation=True)
    with pytest.raises(
        mlo.InvalidInput, match=r"governed by a policy .* use mlo.promote\('lr', 1, 'production'\)"
    ):
        mlo.set_alias("lr", "production", 1)
    with pytest.raises(PromotionRefused, match="register without alias="):
        mlo.register_model(logreg, "lr", alias="production")
    assert mlo.models("lr").version.tolist() == [1]  # nothing written
    mlo.set_alias("lr", "staging", 1)  # ungoverned aliases move freely


def test_rollback_of_a_governed_alias_needs_no_fresh_evidence(ws, lr, logreg):
    mlo.register_model(logreg, "lr")
    mlo.set_policy("production", validation={"max_age_days": 7})
    r1 = _report(ws, "validation", True, subject=lr.node)
    mlo.promote("lr", 1, "production")
    _report(ws, "validation", True, subject="model:lr/2")
    mlo.promote("lr", 2, "production")
    ws.db.write(
        lambda c: c.execute(update(schema.reports).where(schema.reports.c.id == r1).values(created_at=0))
    )  # v1's evidence has aged
    ev = mlo.rollback("lr", "production", reason="v2 regressed")
    assert ev.to_version == 1 and ev.details == {"policy_checked": False}


def test_policy_precedence_toml_then_workspace_then_model(ws, lr):
    (ws.home / "mlo.toml").write_text("[policy.production]\nvalidation = { max_age_days = 3 }\n")
    workspace.reset_cache()
    with pytest.raises(PromotionRefused, match="no older than 3 days"):
        mlo.promote("lr", 1, "production")
    mlo.set_policy("production", drift=True)  # every model: replaces mlo.toml's
    with pytest.raises(PromotionRefused, match="drift") as err:
        mlo.promote("lr", 1, "production")
    assert "validation" not in str(err.value)
    policy = mlo.set_policy("production", model="lr")  # this model: nothing required
    assert policy.requirements == () and policy.scope == "lr"
    assert mlo.promote("lr", 1, "production").to_version == 1
    mlo.set_policy("production", model="lr", clear=True)
    mlo.set_policy("production", clear=True)
    with pytest.raises(PromotionRefused, match="no older than 3 days"):  # back to mlo.toml
        mlo.promote("lr", 1, "production")
    events = mlo.audit("*")
    assert events.action.tolist() == ["set_policy", "set_policy"]
    assert mlo.audit("lr").action.tolist().count("set_policy") == 2


def test_toml_policy_can_name_its_models_and_bad_policies_are_explained(ws, lr, logreg):
    mlo.register_model(logreg, "other")
    (ws.home / "mlo.toml").write_text('[policy.production]\nvalidation = true\nmodels = ["other"]\n')
    workspace.reset_cache()
    assert mlo.promote("lr", 1, "production").to_version == 1
    with pytest.raises(PromotionRefused):
        mlo.promote("other", 1, "production")
    (ws.home / "mlo.toml").write_text("[policy.production]\nvalidaton = true\n")
    workspace.reset_cache()
    # the file is checked when the workspace is opened, before any policy is read
    with pytest.raises(
        mlo.InvalidInput,
        match=r"mlo.toml: unknown key 'validaton' in \[policy.production\] — did you mean 'validation'\?",
    ):
        mlo.promote("other", 1, "production")
    (ws.home / "mlo.toml").write_text("[policy.production]\nvalidation = { max_age = 3 }\n")
    workspace.reset_cache()
    with pytest.raises(mlo.InvalidInput, match=r"\[policy.production\].validation: unknown option"):
        mlo.promote("other", 1, "production")
    (ws.home / "mlo.toml").unlink()
    workspace.reset_cache()
    with pytest.raises(mlo.InvalidInput, match="max_age_days must be a positive number"):
        mlo.set_policy("production", validation={"max_age_days": -1})
    with pytest.raises(mlo.InvalidInput, match="unknown option"):
        mlo.set_policy("production", validation={"scope": "any"})


def test_promote_by_alias_and_the_card_shows_the_evidence(ws, lr):
    mlo.set_alias("lr", "staging", 1)
    mlo.set_policy("production", validation=True)
    rid = _report(ws, "validation", True, subject=lr.node)
    assert mlo.promote("lr", "staging", "production").evidence == (rid,)
    card = mlo.model_card("lr", 1).to_dict()
    assert [r["id"] for r in card["validation"]] == [rid]
    assert card["policies"] == [
        {
            "alias": "production",
            "source": "store",
            "requires": "a passed validation of lr/1",
            "ok": True,
            "missing": [],
            "evidence": [rid],
        }
    ]
