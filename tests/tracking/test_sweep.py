"""Optuna sweeps: the study a parent run, trials child runs with params, intermediate values as step histories,
pruned trials marked; the callback for studies optimized by hand; the comparison groups a sweep's trials."""

from __future__ import annotations

import importlib.util

import pytest

import mlo
from strict import need


@pytest.fixture
def optuna(sqlite_ws):
    need(importlib.util.find_spec("optuna") is not None, "optuna is not installed (pip install -e '.[dev]')")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def pruned_objective(optuna, log_inside: bool = True):
    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        value = (x - 2) ** 2
        for step in range(4):
            trial.report(value + 3 - step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if log_inside:
            mlo.log_metric("inside", value)  # lands in the trial's own run
        return value + (0 if kind == "a" else 1)

    return objective


def test_a_study_is_a_parent_run_and_each_trial_a_child(optuna):
    study = mlo.sweep(
        pruned_objective(optuna),
        n_trials=16,
        name="tune-x",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        sampler=optuna.samplers.RandomSampler(seed=3),
    )
    parent = mlo.get_run(study.user_attrs["mlo_run_id"])
    assert parent.name == "tune-x" and parent.status == "finished" and parent.tags["mlo.sweep"] == "optuna"
    assert parent.params["sampler"] == "RandomSampler" and parent.params["directions"] == ["minimize"]
    assert parent.params["best_x"] == pytest.approx(study.best_params["x"])
    assert parent.metrics["best_value"] == pytest.approx(study.best_value)
    best_so_far = parent.history("best_value").value.tolist()
    assert best_so_far == sorted(best_so_far, reverse=True)  # minimizing: never worse than before

    df = mlo.runs(where=f"parent_id = '{parent.id}'")
    assert len(df) == 16 and set(df.status) == {"finished"}
    states = {mlo.get_run(r).tags["trial.state"] for r in df.run_id}
    assert states == {"complete", "pruned"}
    assert parent.tags["mlo.sweep.trials"] == "16"
    pruned = int(parent.tags["mlo.sweep.pruned"])
    assert pruned == sum(t.state.name == "PRUNED" for t in study.trials) > 0

    best = mlo.get_run(parent.tags["mlo.best_run"])
    assert best.tags["trial.number"] == str(study.best_trial.number)
    assert best.params == study.best_params and best.metrics["value"] == pytest.approx(study.best_value)
    assert "inside" in best.metrics
    steps = best.history("intermediate_value")
    assert list(steps.step) == [0, 1, 2, 3] and steps.value.iloc[0] > steps.value.iloc[-1]
    a_pruned = next(mlo.get_run(r) for r in df.run_id if mlo.get_run(r).tags["trial.state"] == "pruned")
    assert "value" not in a_pruned.metrics and len(a_pruned.history("intermediate_value")) >= 2


def test_a_failing_trial_is_a_failed_run_and_the_sweep_goes_on(optuna):
    def objective(trial):
        x = trial.suggest_int("x", 0, 10)
        if trial.number == 1:
            raise ValueError("bad batch")
        return x

    study = mlo.sweep(objective, n_trials=3, catch=(ValueError,))
    df = mlo.runs(where=f"parent_id = '{study.user_attrs['mlo_run_id']}'")
    failed = df[df.status == "failed"]
    assert len(df) == 3 and list(failed.name) == ["trial 1"]
    assert mlo.get_run(failed.run_id.iloc[0]).tags["trial.state"] == "fail"


def test_autologged_fits_inside_a_trial_log_into_its_run(optuna):
    pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=80, random_state=0)
    mlo.autolog()
    try:
        study = mlo.sweep(
            lambda t: LogisticRegression(C=t.suggest_float("C", 0.01, 10, log=True)).fit(X, y).score(X, y),
            n_trials=3,
            direction="maximize",
        )
    finally:
        mlo.autolog(disable=True)
    assert len(mlo.runs()) == 4  # the study and three trials, no run per fit
    best = mlo.get_run(mlo.get_run(study.user_attrs["mlo_run_id"]).tags["mlo.best_run"])
    assert best.metrics["training_accuracy"] == pytest.approx(best.metrics["value"])
    assert best.params["C"] == pytest.approx(
        study.best_params["C"]
    )  # the suggested value, also as a fit param


def test_the_callback_records_a_study_optimized_by_hand(optuna):
    # no mlo call inside the objective: outside mlo.sweep a trial has no run while it runs, so a log_metric there
    # would start a run of its own, which the callback would then take as the study's parent
    callback = mlo.optuna_callback(name="by-hand")
    study = optuna.create_study(
        pruner=optuna.pruners.ThresholdPruner(upper=5.0), sampler=optuna.samplers.RandomSampler(seed=7)
    )
    objective = pruned_objective(optuna, log_inside=False)
    study.optimize(objective, n_trials=4, callbacks=[callback])
    study.optimize(objective, n_trials=2, callbacks=[callback])  # later: the same parent
    parents = mlo.runs(where="name = 'by-hand'")
    assert len(parents) == 1 and parents.status[0] == "finished"
    trials = mlo.runs(where=f"parent_id = '{parents.run_id[0]}'")
    assert len(trials) == 6
    for trial in study.trials:
        run = mlo.get_run(trials.run_id[trials.name == f"trial {trial.number}"].iloc[0])
        assert run.tags["trial.state"] == {"COMPLETE": "complete", "PRUNED": "pruned"}[trial.state.name]
        assert run.params["x"] == pytest.approx(trial.params["x"])
        assert abs(run.start_time.timestamp() - trial.datetime_start.timestamp()) < 0.01
        assert len(run.history("intermediate_value")) == len(trial.intermediate_values)


def test_a_sweep_takes_only_what_optuna_would(optuna):
    with pytest.raises(mlo.InvalidInput, match="n_trials"):
        mlo.sweep(lambda t: 1.0)
    with pytest.raises(mlo.InvalidInput, match="function"):
        mlo.sweep(5, n_trials=1)
    with pytest.raises(mlo.InvalidInput, match="not both"):
        mlo.sweep(lambda t: 1.0, n_trials=1, study=optuna.create_study(), direction="maximize")
    with pytest.raises(mlo.InvalidInput, match="'minimize' or 'maximize'"):
        mlo.sweep(lambda t: 1.0, n_trials=1, direction="sideways")
    assert mlo.runs().empty  # nothing half-made


def test_the_comparison_shows_a_sweeps_trials_under_it(optuna):
    from mlo.tracking.compare import Comparison

    with mlo.start_run("baseline"):
        mlo.log_metric("value", 50.0)
    mlo.sweep(lambda t: (t.suggest_float("x", -1, 1)) ** 2, n_trials=3, name="s1")
    mlo.sweep(lambda t: (t.suggest_float("x", -1, 1)) ** 2, n_trials=2, name="s2")
    cmp = Comparison()
    names = cmp.page_frame()["name"].tolist()
    assert names == ["s2", "↳ trial 1", "↳ trial 0", "s1", "↳ trial 2", "↳ trial 1", "↳ trial 0", "baseline"]
    cmp.sort("metrics.value", ascending=True)  # ordered within each sweep; a sweep stays together
    page = cmp.page_frame()
    names = page["name"].tolist()
    assert names[0] == "baseline"
    first = names.index("s1")
    assert [n[:1] for n in names[first + 1 : first + 4]] == ["↳"] * 3
    trial_values = page["metrics.value"].tolist()[first + 1 : first + 4]
    assert trial_values == sorted(trial_values)
