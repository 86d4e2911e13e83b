"""``mlo.autolog()``: scikit-learn ``fit`` records the estimator's params and its training metrics.

Every estimator class that defines ``fit`` is wrapped once; only the outermost ``fit`` logs (a Pipeline or a
search fitting inner estimators logs itself, not each inner call). With no active run, each ``fit`` gets a
run of its own, ended when ``fit`` returns.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from . import session

log = logging.getLogger("mlo")

_patched: dict[type, Any] = {}
_local = threading.local()
_SIMPLE = (str, int, float, bool, type(None))


def autolog(disable: bool = False, *, metrics: bool = True) -> None:
    """Record scikit-learn ``fit`` calls: params (``get_params(deep=True)``) and ``training_*`` metrics.

    Parameters
    ----------
    disable : bool
        Undo the patching.
    metrics : bool
        Also score the estimator on its training data (accuracy, f1, … or r2, rmse, …).
    """
    if disable:
        for cls, original in _patched.items():
            cls.fit = original
        _patched.clear()
        return
    _Options.metrics = metrics
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        from ..errors import InvalidInput

        raise InvalidInput("autolog records scikit-learn; install scikit-learn first") from None
    for _name, cls in all_estimators():
        if "fit" in cls.__dict__ and cls not in _patched:
            _patched[cls] = cls.__dict__["fit"]
            cls.fit = _wrap(cls.__dict__["fit"])


class _Options:
    metrics = True


def _wrap(fit):
    @functools.wraps(fit)
    def logged_fit(self, *args, **kwargs):
        depth = getattr(_local, "depth", 0)
        if depth:
            return fit(self, *args, **kwargs)
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        _local.depth = 1
        own_run = session.active_run() is None
        run = session.start_run(type(self).__name__) if own_run else session.active_run()
        try:
            try:
                result = fit(self, *args, **kwargs)
            except BaseException:
                if own_run:
                    session.end_run("failed", run=run)
                raise
            try:
                _record(self, X, y, kwargs.get("sample_weight"))
            except Exception as exc:  # logging must never break training
                log.warning("mlo.autolog could not record %s: %s", type(self).__name__, exc)
            if own_run:
                session.end_run("finished", run=run)
            return result
        finally:
            _local.depth = 0

    return logged_fit


def _param_value(value: Any) -> Any:
    if isinstance(value, _SIMPLE):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _SIMPLE) for v in value):
        return list(value)
    return type(value).__name__ if hasattr(value, "get_params") else repr(value)[:250]


def _record(est, X, y, sample_weight) -> None:
    params = {k: _param_value(v) for k, v in est.get_params(deep=True).items()}
    session.log_params(params)
    session.set_tags(
        {
            "estimator_class": f"{type(est).__module__}.{type(est).__qualname__}",
            "estimator_name": type(est).__name__,
        }
    )
    if y is None or not _Options.metrics:
        return
    session.log_metrics(_training_metrics(est, X, y, sample_weight))


def _training_metrics(est, X, y, sample_weight) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    kw = {"sample_weight": sample_weight}
    if is_classifier(est):
        pred = est.predict(X)
        out["training_accuracy"] = m.accuracy_score(y, pred, **kw)
        avg = "binary" if len(getattr(est, "classes_", [])) == 2 else "weighted"
        out["training_precision"] = m.precision_score(y, pred, average=avg, zero_division=0, **kw)
        out["training_recall"] = m.recall_score(y, pred, average=avg, zero_division=0, **kw)
        out["training_f1"] = m.f1_score(y, pred, average=avg, zero_division=0, **kw)
        if hasattr(est, "predict_proba"):
            try:
                proba = est.predict_proba(X)
                out["training_log_loss"] = m.log_loss(y, proba, labels=est.classes_, **kw)
                if proba.shape[1] == 2:
                    out["training_roc_auc"] = m.roc_auc_score(y, proba[:, 1], **kw)
                else:
                    out["training_roc_auc"] = m.roc_auc_score(
                        y, proba, multi_class="ovr", labels=est.classes_, **kw
                    )
            except Exception:  # some estimators expose predict_proba only for some settings
                pass
    elif is_regressor(est):
        pred = est.predict(X)
        mse = m.mean_squared_error(y, pred, **kw)
        out.update(
            training_mse=mse,
            training_rmse=mse**0.5,
            training_mae=m.mean_absolute_error(y, pred, **kw),
            training_r2=m.r2_score(y, pred, **kw),
        )
    return {k: float(v) for k, v in out.items()}
