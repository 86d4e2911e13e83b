"""Aliases and the audit log, on SQLite and PostgreSQL: set, delete, rollback, and every change recorded."""

from __future__ import annotations

import pytest

import mlo


@pytest.fixture
def three(ws, logreg):
    return [mlo.register_model(logreg, "lr") for _ in range(3)]


def test_set_alias_moves_and_loads_and_is_audited(three, monkeypatch):
    monkeypatch.setenv("MLO_USER", "ana")
    ev = mlo.set_alias("lr", "staging", 1, reason="first candidate")
    assert (ev.action, ev.alias, ev.from_version, ev.to_version, ev.user) == (
        "set_alias",
        "staging",
        None,
        1,
        "ana",
    )
    assert ev.reason == "first candidate" and not ev.forced
    assert mlo.load_model("lr@staging").model_version.version == 1
    ev = mlo.set_alias("lr", "staging", 3)
    assert (ev.from_version, ev.to_version) == (1, 3)
    assert mlo.set_alias("lr", "staging", 3) is None  # no change, no event
    assert mlo.load_model("models:/lr@staging").model_version.version == 3
    assert mlo.get_model_version("lr/3").aliases == ["staging"]
    mlo.set_alias("lr", "candidate", "staging")  # copy another alias
    assert mlo.get_model_version("lr@candidate").version == 3
    df = mlo.audit("lr")
    assert df.action.tolist() == ["register"] * 3 + ["set_alias"] * 3
    assert df.to_version.tolist() == [1, 2, 3, 1, 3, 3]
    assert df.user.tolist()[-3:] == ["ana", "ana", "ana"]
    assert df.time.is_monotonic_increasing


def test_delete_alias_and_rollback_restores_it(three):
    mlo.set_alias("lr", "staging", 2)
    ev = mlo.delete_alias("lr", "staging", reason="broken")
    assert (ev.action, ev.from_version, ev.to_version) == ("delete_alias", 2, None)
    with pytest.raises(mlo.NotFound, match="has no alias 'staging'"):
        mlo.load_model("lr@staging")
    with pytest.raises(mlo.NotFound, match="has no alias 'staging'"):
        mlo.delete_alias("lr", "staging")
    ev = mlo.rollback("lr", "staging")
    assert (ev.action, ev.from_version, ev.to_version) == ("rollback", None, 2)
    assert mlo.load_model("lr@staging").model_version.version == 2


def test_rollback_walks_back_one_change_at_a_time(three):
    for v in (1, 2, 3):
        mlo.set_alias("lr", "prod", v)
    assert mlo.rollback("lr", "prod", reason="v3 misbehaves").to_version == 2
    assert mlo.rollback("lr", "prod").to_version == 1
    with pytest.raises(mlo.InvalidInput, match="had no version before v1 to roll back to"):
        mlo.rollback("lr", "prod")
    assert mlo.get_model_version("lr@prod").version == 1  # the refusal changed nothing
    mlo.set_alias("lr", "prod", 3)
    assert mlo.rollback("lr", "prod").to_version == 1
    events = mlo.audit("lr")
    rollbacks = events[events.action == "rollback"]
    assert rollbacks.from_version.tolist() == [3, 2, 3] and rollbacks.to_version.tolist() == [2, 1, 1]
    assert rollbacks.reason.tolist()[0] == "v3 misbehaves"


def test_rollback_of_an_alias_that_never_moved_is_refused(three):
    with pytest.raises(mlo.InvalidInput, match="had no version"):
        mlo.rollback("lr", "staging")
    with pytest.raises(mlo.NotFound, match="no model named 'other'"):
        mlo.rollback("other", "staging")


def test_alias_names_are_checked(three):
    with pytest.raises(mlo.InvalidInput, match="alias 'Prod' is not valid"):
        mlo.set_alias("lr", "Prod", 1)
    with pytest.raises(mlo.InvalidInput, match="reserved"):
        mlo.set_alias("lr", "latest", 1)
    with pytest.raises(mlo.NotFound, match="has no version 9"):
        mlo.set_alias("lr", "staging", 9)


def test_register_with_alias_is_one_transaction(ws, logreg):
    mv = mlo.register_model(logreg, "lr", alias="staging", tags={"team": "growth", "n": 3})
    assert mv.aliases == ["staging"] and mv.tags == {"team": "growth", "n": "3"}
    assert mlo.audit("lr").action.tolist() == ["register", "set_alias"]


def test_models_lists_versions_aliases_and_run_metrics(ws, logreg):
    with mlo.start_run("fit"):
        mlo.log_metric("auc", 0.81)
        mlo.register_model(logreg, "lr")
    mlo.register_model(logreg, "lr", alias="staging")
    mlo.register_model(lambda X: X, "other")
    df = mlo.models()
    assert list(zip(df.name, df.version, strict=True)) == [("lr", 2), ("lr", 1), ("other", 1)]
    assert df.aliases.tolist() == ["staging", "", ""]
    assert df["metrics.auc"].tolist()[1] == 0.81
    assert df.flavor.tolist() == ["skops", "skops", "cloudpickle"]
    assert mlo.models("other").version.tolist() == [1]
    with pytest.raises(mlo.NotFound, match="no model named 'nope'"):
        mlo.models("nope")


def test_lineage_reaches_the_model_through_its_run(ws, data, pipeline):
    X, y = data
    with mlo.start_run("train") as run:
        snap = mlo.snapshot(X.assign(churned=y), "train")
        mv = mlo.register_model(pipeline, "churn")
    mlo.set_alias("churn", "staging", 1)
    g = mlo.lineage("model:churn@staging")
    assert g.root.id == "model:churn/1" and g.root.label == "churn v1"
    assert g.root.attrs["aliases"] == ["staging"] and g.root.attrs["digest"] == mv.digest
    up = {n.id for n in g.upstream()}
    assert {f"run:{run.id}", snap.node} <= up
    assert any(n.id == "model:churn/1" for n in mlo.lineage(f"run:{run.id}").downstream())


def test_a_policy_change_for_an_alias_is_not_a_version_to_roll_back_to(ws, logreg):
    import mlo

    for _ in range(2):
        mlo.register_model(logreg, "churn")
    mlo.promote("churn", 1, "production")
    mlo.set_policy("production", model="churn", validation=True)  # an audit event for churn@production
    mlo.promote("churn", 2, "production", force=True, reason="hotfix")
    event = mlo.rollback("churn", "production")
    assert (event.from_version, event.to_version) == (2, 1)
