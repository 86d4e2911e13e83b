"""Hyperparameter sweeps with Optuna: a study is a parent run, each trial a child run.

``mlo.sweep(objective, n_trials=…)`` runs the study with every trial's child run active, so what the objective
logs (``mlo.log_metric``, an autologged ``fit``) lands in its trial's run, and ``trial.report`` values are logged
as they come (``intermediate_value``, step = the reported step). ``mlo.optuna_callback()`` records a study you
optimize yourself (``study.optimize(objective, callbacks=[mlo.optuna_callback()])``), trial by trial, after each
one ends.

A trial's run has its params, its objective value(s) (``value``, or the study's metric names), the intermediate
values as a step history, and the tags ``trial.number`` and ``trial.state`` (``complete``, ``pruned`` or
``fail``); a failed trial's run is ``failed``. The parent has the study's setup as params, ``best_value`` as a
history over trial numbers, the best params (``best_<name>``), and the tags ``mlo.sweep = optuna``,
``mlo.best_run`` and the trial counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import InvalidInput
from . import session
from .fit_run import param_value
from .run import Run

INTERMEDIATE = "intermediate_value"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise InvalidInput("sweeps run on Optuna: pip install optuna") from None
    return optuna


def _listed(value: Any, label: str) -> list:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{label} must be a list, got {type(value).__name__}")
    return list(value)


def _check_names(metric_names: Any) -> None:
    from .metrics import check_key

    for name in _listed(metric_names, "metric_names"):
        check_key(name, "metric")


def _state(trial: Any) -> str:
    return {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "fail"}.get(
        trial.state.name, trial.state.name.lower()
    )


class _StudyRecord:
    """What a study logs into its parent run and its trials' runs."""

    def __init__(self, study: Any, parent: Run, metric_names: Sequence[str] | None):
        self.study = study
        self.parent = parent
        self.metric_names = list(metric_names or study.metric_names or [])
        self.trial_runs: dict[int, str] = {}

    def value_names(self, n: int) -> list[str]:
        if len(self.metric_names) == n:
            return self.metric_names
        return ["value"] if n == 1 else [f"value_{i}" for i in range(n)]

    def record_trial(
        self, run: Run, trial: Any, state: str, values: Sequence[float], at: float | None = None
    ) -> None:
        """Params, objective values and tags of ``trial`` (in ``state``) into ``run``."""
        session.log_params({k: param_value(v) for k, v in trial.params.items()}, run=run)
        if values:
            names = self.value_names(len(values))
            session.log_metrics(dict(zip(names, values, strict=True)), run=run, timestamp=at)
        session.set_tags({"trial.number": trial.number, "trial.state": state}, run=run)
        self.trial_runs[trial.number] = run.id

    def after_trial(self, study: Any, trial: Any) -> None:
        if len(study.directions) == 1 and trial.state.name == "COMPLETE":
            try:
                best = study.best_value
            except ValueError:  # no complete trial yet
                return
            session.log_metrics({"best_value": best}, step=trial.number, run=self.parent)

    def finish(self) -> None:
        study = self.study
        trials = study.get_trials(deepcopy=False)
        counts: dict[str, int] = {}
        for t in trials:
            counts[_state(t)] = counts.get(_state(t), 0) + 1
        tags = {f"mlo.sweep.{state}": n for state, n in counts.items()}
        tags["mlo.sweep.trials"] = len(trials)
        try:
            if len(study.directions) == 1:
                best = study.best_trial
                session.log_params(
                    {f"best_{k}": param_value(v) for k, v in best.params.items()}, run=self.parent
                )
                if best.number in self.trial_runs:
                    tags["mlo.best_run"] = self.trial_runs[best.number]
            else:
                runs = [self.trial_runs[t.number] for t in study.best_trials if t.number in self.trial_runs]
                tags["mlo.best_runs"] = ",".join(runs)
        except ValueError:  # no trial completed
            pass
        session.set_tags(tags, run=self.parent)


def _study_params(study: Any, n_trials: int | None, timeout: float | None) -> dict[str, Any]:
    return {
        "directions": [d.name.lower() for d in study.directions],
        "sampler": type(study.sampler).__name__,
        "pruner": type(study.pruner).__name__,
        "n_trials": n_trials,
        "timeout": timeout,
    }


def sweep(
    objective: Callable[[Any], Any],
    n_trials: int | None = None,
    *,
    study: Any = None,
    timeout: float | None = None,
    name: str | None = None,
    experiment: str | None = None,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    sampler: Any = None,
    pruner: Any = None,
    metric_names: Sequence[str] | None = None,
    catch: Iterable[type[Exception]] | type[Exception] = (),
    callbacks: Sequence[Callable] | None = None,
) -> Any:
    """Run an Optuna study as a parent run with a child run per trial.

    Parameters
    ----------
    objective : callable
        ``objective(trial) -> float`` (or a sequence of floats for several objectives), as for
        ``study.optimize``. Its trial's run is active while it runs: ``mlo.log_metric`` and autologged fits land
        there. ``trial.report(value, step)`` is logged as ``intermediate_value``; raise ``optuna.TrialPruned``
        to prune, as usual.
    n_trials, timeout : optional
        When to stop (at least one is needed, as with Optuna).
    study : optuna.Study, optional
        A study to continue; by default a new one from ``direction``/``directions``, ``sampler``, ``pruner``.
    name, experiment : str, optional
        The parent run's name (default: the study's name) and experiment. Inside an active run the parent is
        its child.
    metric_names : list of str, optional
        Names of the objective values (default: the study's, else ``value``).
    catch, callbacks
        As for ``study.optimize``.

    Returns
    -------
    optuna.Study
        The study; ``study.user_attrs["mlo_run_id"]`` is the parent run's id.
    """
    optuna = _optuna()
    if not callable(objective):
        raise InvalidInput(f"objective must be a function of a trial, got {type(objective).__name__}")
    if n_trials is None and timeout is None:
        raise InvalidInput("say when the sweep stops: n_trials=… or timeout=… (seconds)")
    for label, value, kind in (("n_trials", n_trials, int), ("timeout", timeout, (int, float))):
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind) or value <= 0):
            raise InvalidInput(f"{label} must be a positive number, got {value!r}")
    _check_names(metric_names)
    for label, value in (
        ("direction", direction),
        *(("directions", d) for d in _listed(directions, "directions")),
    ):
        if value is not None and value not in ("minimize", "maximize"):
            raise InvalidInput(f"{label} must be 'minimize' or 'maximize', got {value!r}")
    for label, value, kind in (
        ("sampler", sampler, optuna.samplers.BaseSampler),
        ("pruner", pruner, optuna.pruners.BasePruner),
    ):
        if value is not None and not isinstance(value, kind):
            raise InvalidInput(f"{label} must be an optuna {kind.__name__}, got {type(value).__name__}")
    if not all(callable(c) for c in _listed(callbacks, "callbacks")):
        raise InvalidInput("callbacks must be a list of functions of (study, trial)")
    created = {"direction": direction, "directions": directions, "sampler": sampler, "pruner": pruner}
    if study is None:
        try:
            study = optuna.create_study(**created)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"cannot create the study: {exc}") from None
    elif not isinstance(study, optuna.Study):
        raise InvalidInput(f"study must be an optuna.Study, got {type(study).__name__}")
    elif any(v is not None for v in created.values()):
        raise InvalidInput("give the study or how to create it (direction, sampler, pruner), not both")
    if name is not None:
        from ..names import check_label

        check_label(name, "run name")
    parent = session.start_run(
        name or study.study_name,
        experiment,
        params=_study_params(study, n_trials, timeout),
        tags={"mlo.sweep": "optuna", "mlo.sweep.study": study.study_name},
        nested=session.active_run() is not None,
    )
    record = _StudyRecord(study, parent, metric_names)

    def run_trial(trial: Any) -> Any:
        run = session.start_run(f"trial {trial.number}", experiment, nested=True, parent=parent)
        report = trial.report

        def logged_report(value: float, step: int) -> None:
            report(value, step)
            try:
                session.log_metrics({INTERMEDIATE: value}, step=step, run=run)
            except Exception:  # a value Optuna took and mlo cannot store: the trial goes on
                pass

        trial.report = logged_report
        state, status, value = "fail", "failed", None
        try:
            value = objective(trial)
            state, status = "complete", "finished"
            return value
        except optuna.TrialPruned:
            state, status = "pruned", "finished"
            raise
        except KeyboardInterrupt:
            status = "killed"
            raise
        finally:
            try:
                record.record_trial(run, trial, state, _values(value) if state == "complete" else [])
            finally:
                session.end_run(status, run=run)

    try:
        study.optimize(
            run_trial,
            n_trials=n_trials,
            timeout=timeout,
            catch=catch,
            callbacks=[record.after_trial, *(callbacks or [])],
        )
    except BaseException as exc:
        record.finish()
        session.end_run("killed" if isinstance(exc, KeyboardInterrupt) else "failed", run=parent)
        raise
    record.finish()
    session.end_run("finished", run=parent)
    try:
        study.set_user_attr("mlo_run_id", parent.id)
    except Exception:  # a read-only storage
        pass
    return study


def _values(value: Any) -> list[float]:
    """The objective's return value as floats ([] for one Optuna will count as a failure)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        out = [float(v) for v in items]
    except (TypeError, ValueError):
        return []
    return [] if any(math.isnan(v) for v in out) else out


class OptunaCallback:
    """Records each finished trial of the studies it is passed to (see :func:`optuna_callback`)."""

    def __init__(self, name: str | None, experiment: str | None, metric_names: Sequence[str] | None):
        self.name = name
        self.experiment = experiment
        self.metric_names = metric_names
        self.records: dict[int, _StudyRecord] = {}  # per study (by id)
        self.owned: set[str] = set()  # parent runs this callback started (and ends after each trial)

    def _record(self, study: Any) -> _StudyRecord:
        record = self.records.get(id(study))
        if record is None:
            active = session.active_run()
            if active is None:
                parent = session.start_run(
                    self.name or study.study_name,
                    self.experiment,
                    params=_study_params(study, None, None),
                    tags={"mlo.sweep": "optuna", "mlo.sweep.study": study.study_name},
                    activate=False,
                )
                self.owned.add(parent.id)
            else:
                parent = active
                session.set_tags({"mlo.sweep": "optuna", "mlo.sweep.study": study.study_name}, run=parent)
            record = self.records[id(study)] = _StudyRecord(study, parent, self.metric_names)
        elif record.parent.id in self.owned:
            session.start_run(run_id=record.parent.id, activate=False)  # resumed for this trial
        return record

    def __call__(self, study: Any, trial: Any) -> None:
        record = self._record(study)
        try:
            run = session.start_run(
                f"trial {trial.number}", self.experiment, parent=record.parent, activate=False
            )
            try:
                if trial.datetime_start is not None:
                    run._ws.runs.update_run(run.id, start_time=int(trial.datetime_start.timestamp() * 1e6))
                at = trial.datetime_complete.timestamp() if trial.datetime_complete else None
                for step, value in sorted(trial.intermediate_values.items()):
                    session.log_metrics({INTERMEDIATE: value}, step=step, run=run, timestamp=at)
                state = _state(trial)
                record.record_trial(run, trial, state, list(trial.values or []), at=at)
            finally:
                session.end_run("failed" if trial.state.name == "FAIL" else "finished", run=run)
            record.after_trial(study, trial)
            record.finish()
        finally:
            if record.parent.id in self.owned:
                session.end_run("finished", run=record.parent)


def optuna_callback(
    *, name: str | None = None, experiment: str | None = None, metric_names: Sequence[str] | None = None
) -> OptunaCallback:
    """A callback for ``study.optimize(…, callbacks=[mlo.optuna_callback()])``: the study becomes a parent run
    (the active run, if there is one, else a run named after the study) and each finished trial a child run with
    its params, value(s), intermediate values (``intermediate_value`` history) and state (tag ``trial.state``:
    ``complete``, ``pruned`` or ``fail``). Unlike :func:`sweep`, a trial's run is written when it has ended, so
    what the objective itself logs goes elsewhere (to the active run)."""
    if name is not None:
        from ..names import check_label

        check_label(name, "run name")
    if experiment is not None:
        from ..names import check_label

        check_label(experiment, "experiment name")
    _check_names(metric_names)
    _optuna()
    return OptunaCallback(name, experiment, metric_names)
