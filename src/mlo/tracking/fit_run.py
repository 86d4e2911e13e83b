"""One autologged call (a ``fit``, a ``train``): the run it records into, and what it may record.

The outermost autologged call in the process owns the record: it logs into the active run, or starts a run of
its own (named after the estimator) that ends when the call returns — ``failed`` if it raised. Every autologged
call made while one is in progress, from any thread (a meta-estimator fitting its inner estimators, joblib's
thread workers, a search fitting candidates), is an internal of it and records nothing: ``FitRun`` gives
``None`` for it. An integration may *join* the call in progress when it belongs to the same framework
(XGBoost's ``train`` inside ``XGBClassifier.fit`` adds its per-iteration histories to the estimator's run).

What is recorded never breaks training: every method of :class:`FitRun` catches its own errors, logs one
warning (``logging.getLogger("mlo")``) and carries on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from ..names import control_character
from . import session
from .metrics import MAX_KEY_LENGTH

log = logging.getLogger("mlo")

_lock = threading.RLock()
_stack: list[FitRun] = []  # autologged calls in progress in this process, outermost first
_SIMPLE = (str, int, float, bool, type(None))
MAX_PARAM_TEXT = 250


def in_progress() -> bool:
    """Whether an autologged call is running in this process (so another one would be its internal)."""
    return bool(_stack)


def param_value(value: Any) -> Any:
    """A parameter as a JSON value: numbers, text, booleans and None as they are, lists of them as lists, an
    estimator or other object with params by its class name, a function by its name, anything else as a short
    ``repr``."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, _SIMPLE):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= 50 and all(isinstance(v, _SIMPLE) for v in value):
        return list(value)
    if hasattr(value, "get_params"):
        return type(value).__name__
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return repr(value)[:MAX_PARAM_TEXT]


def _usable_key(key: Any) -> bool:
    return (
        isinstance(key, str)
        and bool(key.strip())
        and len(key) <= MAX_KEY_LENGTH
        and not control_character(key)
    )


class FitRun:
    """The record of one top-level autologged call; use as ``with FitRun(...) as rec:`` (``rec`` is None for
    an internal call).

    Parameters
    ----------
    integration : str
        The framework recording (``"sklearn"``, ``"xgboost"``, …): the run gets the tag ``mlo.autolog``.
    name : str
        The run's name when the call gets a run of its own (the estimator's class name).
    join : bool
        Inside a call of the same integration, give a view of that call's record (``rec.joined`` is True)
        instead of None.
    resume : str, optional
        A run id to log into again (``partial_fit`` calls on one estimator share a run).
    """

    def __init__(self, integration: str, name: str, *, join: bool = False, resume: str | None = None):
        from .autolog import current_options

        self.integration = integration
        self.name = name
        self.join = join
        self.resume = resume
        self.options = current_options()
        self.run = None
        self.own = False
        self.joined = False
        self._entered = False

    # -- scope -----------------------------------------------------------------------------------------------
    def __enter__(self) -> FitRun | None:
        with _lock:
            outer = _stack[-1] if _stack else None
            if outer is not None:
                if self.join and outer.integration == self.integration and outer.run is not None:
                    self.run, self.joined = outer.run, True
                    return self
                return None
            _stack.append(self)
            self._entered = True
        try:
            active = session.active_run()
            if self.resume is not None:
                self.run = session.start_run(run_id=self.resume, nested=active is not None)
                self.own = True
            elif active is None:
                self.run = session.start_run(self.name, tags={"mlo.autolog": self.integration})
                self.own = True
            else:
                self.run = active
        except Exception as exc:  # the store is unreachable, the name is refused…: train anyway, unrecorded
            self.warn("start a run", exc)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self._entered:
            return False
        with _lock:
            if self in _stack:
                _stack.remove(self)
        if self.own and self.run is not None:
            if exc_type is None:
                status = "finished"
            elif issubclass(exc_type, KeyboardInterrupt):
                status = "killed"
            else:
                status = "failed"
            try:
                session.end_run(status, run=self.run)
            except Exception as end_exc:
                self.warn("end its run", end_exc)
        return False

    # -- recording ---------------------------------------------------------------------------------------------
    def warn(self, what: str, exc: BaseException) -> None:
        if not self.options.silent:
            log.warning("mlo.autolog (%s) could not %s for %s: %s", self.integration, what, self.name, exc)

    @contextlib.contextmanager
    def attempt(self, what: str) -> Iterator[None]:
        """A block whose failure is reported as one warning and skipped (``with rec.attempt("metrics"):``)."""
        try:
            yield
        except Exception as exc:
            self.warn(what, exc)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values made JSON-able with :func:`param_value`; unusable names are left out)."""
        if self.run is None or not params:
            return
        with self.attempt("log params"):
            clean = {k: param_value(v) for k, v in params.items() if _usable_key(k)}
            if clean:
                session.log_params(clean, run=self.run)

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Log metric points (values that are not numbers are left out)."""
        if self.run is None or not metrics:
            return
        with self.attempt("log metrics"):
            clean = {}
            for key, value in metrics.items():
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue
                if _usable_key(key) and not isinstance(value, bool) and not math.isinf(number):
                    clean[key] = number
            if clean:
                session.log_metrics(clean, step, timestamp=timestamp, run=self.run)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.run is None or not tags:
            return
        with self.attempt("set tags"):
            session.set_tags({k: str(v) for k, v in tags.items() if _usable_key(k)}, run=self.run)

    def log_bytes(self, data: bytes, path: str) -> None:
        if self.run is None:
            return
        with self.attempt(f"store {path}"):
            session.log_bytes(data, path, run=self.run)

    def log_model(self, model: Any, *, X: Any = None, output: Any = None, flavor: str | None = None) -> None:
        """Store the fitted model with the run (``model/``) with the signature of ``X`` and ``output``, unless
        ``mlo.autolog(log_models=False)``. ``flavor`` names an integration's own format (its ``save_model``)."""
        if self.run is None or not self.options.log_models:
            return
        with self.attempt("store the model"):
            from .logged_model import log_model

            log_model(self.run, model, X=X, output=output, flavor=flavor)

    def child(
        self,
        name: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        histories: Mapping[str, Mapping[int, float]] | None = None,
        tags: Mapping[str, Any] | None = None,
        status: str = "finished",
    ) -> str | None:
        """A finished child run of this record's run (a search candidate); returns its id."""
        if self.run is None:
            return None
        child_id = None
        with self.attempt(f"record {name}"):
            clean_params = {k: param_value(v) for k, v in (params or {}).items() if _usable_key(k)}
            clean_tags = {k: str(v) for k, v in (tags or {}).items() if _usable_key(k)}
            child = session.start_run(
                name, params=clean_params, tags=clean_tags, parent=self.run, activate=False
            )
            child_id = child.id
            try:
                view = FitRun.__new__(FitRun)
                view.__dict__.update(self.__dict__, run=child, own=False, _entered=False)
                for key, points in (histories or {}).items():
                    for step, value in sorted(points.items()):
                        view.log_metrics({key: value}, step=step)
                view.log_metrics(metrics or {})
            finally:
                session.end_run(status, run=child)
        return child_id
