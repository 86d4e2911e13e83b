"""scikit-learn: every estimator's ``fit``, ``fit_transform``, ``fit_predict`` and ``partial_fit``.

Every class of ``sklearn.utils.all_estimators()``, the successive-halving searches and ``BaseSearchCV`` (so a
search class of another library is recorded too) get their methods wrapped on the class itself, whether they
define or inherit them: ``RandomForestClassifier`` inherits ``fit`` from ``BaseForest`` and is recorded as
itself. A fit records the estimator's ``get_params(deep=True)``, its class as tags, training metrics, and the
fitted model with the signature of its training data. Searches are recorded by :mod:`.sklearn_search`.

``partial_fit`` calls on one estimator share a run: the active run, or a run of the estimator's own that each
call resumes; training metrics of each batch are step histories (step = the call's number).
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref
from typing import Any

from ..autolog import FitRun, Integration, Patcher
from ..fit_run import in_progress

METHODS = ("fit", "fit_transform", "fit_predict", "partial_fit")


class Sklearn(Integration):
    name = "sklearn"
    module = "sklearn"

    def patch(self, patcher: Patcher, module: Any) -> None:
        for cls in estimator_classes():
            for method in METHODS:
                if _has(cls, method):
                    patcher.method(cls, method, functools.partial(self.call, method))

    def call(self, method: str, bound, est, *args, **kwargs):
        if method == "partial_fit":
            return self.partial_fit(bound, est, args, kwargs)
        with FitRun(self.name, type(est).__name__) as rec:
            if rec is None:
                return bound(*args, **kwargs)
            X, y, weight = data_of(bound, args, kwargs)
            record_params(rec, est)
            result = bound(*args, **kwargs)
            from .sklearn_search import is_search, record_search

            if is_search(est):
                record_search(rec, est, X, y, weight)
            else:
                output = record_training_metrics(rec, est, X, y, weight)
                rec.log_model(est, X=X, output=output)
            return result

    def partial_fit(self, bound, est, args, kwargs):
        if in_progress():  # IncrementalPCA.fit, MultiOutputClassifier.partial_fit: internals
            return bound(*args, **kwargs)
        from .. import session

        state = _partial.get(est)
        active = session.active_run()
        resume = state["own"] if (active is None and state is not None) else None
        with FitRun(self.name, type(est).__name__, resume=resume) as rec:
            if rec is None or rec.run is None:
                return bound(*args, **kwargs)
            if state is None or state["run"] != rec.run.id:
                state = {"run": rec.run.id, "own": rec.run.id if rec.own else None, "step": 0}
                record_params(rec, est)
            X, y, weight = data_of(bound, args, kwargs)
            result = bound(*args, **kwargs)
            record_training_metrics(rec, est, X, y, weight, step=state["step"])
            state["step"] += 1
            try:
                _partial[est] = state
            except TypeError:  # not weakly referenceable: each call is a run of its own
                pass
            return result


_partial: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _has(cls: type, method: str) -> bool:
    return any(method in klass.__dict__ for klass in cls.__mro__)


def estimator_classes() -> list[type]:
    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.utils import all_estimators

    classes = [cls for _, cls in all_estimators()]
    try:  # experimental, so not in all_estimators(); importable without enabling them
        from sklearn.model_selection import _search_successive_halving as halving

        classes += [halving.HalvingGridSearchCV, halving.HalvingRandomSearchCV]
    except ImportError:
        pass
    return [BaseSearchCV, *classes]


@functools.lru_cache(maxsize=1024)
def _data_parameters(func: Any) -> tuple[str | None, str | None, tuple[str, ...]]:
    """The names of a fit method's data and target parameters (``X``/``raw_documents``, ``y``/``Y``) and of
    its positional parameters after ``self``."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return "X", "y", ("X", "y")
    names = [p.name for p in params[1:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    first = names[0] if names else None
    target = next((n for n in names if n in ("y", "Y")), None)
    return (None if first in ("y", "Y") else first), target, tuple(names)


def data_of(bound, args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    """``(X, y, sample_weight)`` of a fit call."""
    func = getattr(bound, "__func__", bound)
    try:
        x_name, y_name, names = _data_parameters(func)
    except TypeError:  # an unhashable callable
        return (args[0] if args else None), (args[1] if len(args) > 1 else None), None
    given = dict(zip(names, args, strict=False)) | kwargs
    return (
        given.get(x_name) if x_name else None,
        given.get(y_name) if y_name else None,
        given.get("sample_weight"),
    )


def record_params(rec: FitRun, est: Any) -> None:
    with rec.attempt("read params"):
        rec.log_params(est.get_params(deep=True))
    rec.set_tags(
        {
            "estimator_class": f"{type(est).__module__}.{type(est).__qualname__}",
            "estimator_name": type(est).__name__,
        }
    )


def record_training_metrics(
    rec: FitRun, est: Any, X: Any, y: Any, weight: Any, step: int | None = None
) -> Any:
    """Log ``training_*`` metrics of ``est`` on its training data; returns its prediction (or None)."""
    if not rec.options.metrics or X is None:
        return None
    with rec.attempt("score on the training data"):
        metrics, output = training_metrics(est, X, y, weight)
        rec.log_metrics(metrics, step=step)
        return output
    return None


def training_metrics(est: Any, X: Any, y: Any, weight: Any) -> tuple[dict[str, float], Any]:
    """Classification (accuracy, precision, recall, f1, log loss, ROC AUC) or regression (MSE, RMSE, MAE, R²)
    scores of ``est`` on ``X``, ``y``; ``training_score`` (``est.score``) for other estimators with a target or
    a score of their own (a clusterer's, a density's). Each metric that cannot be computed is left out."""
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    output = None
    kw = {"sample_weight": weight}

    def add(key: str, fn) -> None:
        try:
            out[key] = float(fn())
        except Exception:
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if y is not None and is_classifier(est) and hasattr(est, "predict"):
            output = est.predict(X)
            n_classes = len(getattr(est, "classes_", []))
            avg = "binary" if n_classes == 2 else "weighted"
            add("training_accuracy", lambda: m.accuracy_score(y, output, **kw))
            add(
                "training_precision", lambda: m.precision_score(y, output, average=avg, zero_division=0, **kw)
            )
            add("training_recall", lambda: m.recall_score(y, output, average=avg, zero_division=0, **kw))
            add("training_f1", lambda: m.f1_score(y, output, average=avg, zero_division=0, **kw))
            if hasattr(est, "predict_proba"):
                try:
                    proba = est.predict_proba(X)
                except Exception:  # only for some settings (SVC(probability=False), …)
                    proba = None
                if proba is not None and getattr(proba, "ndim", 0) == 2:
                    add("training_log_loss", lambda: m.log_loss(y, proba, labels=est.classes_, **kw))
                    if proba.shape[1] == 2:
                        add("training_roc_auc", lambda: m.roc_auc_score(y, proba[:, 1], **kw))
                    else:
                        add(
                            "training_roc_auc",
                            lambda: m.roc_auc_score(y, proba, multi_class="ovr", labels=est.classes_, **kw),
                        )
        elif y is not None and is_regressor(est) and hasattr(est, "predict"):
            output = est.predict(X)
            add("training_mse", lambda: m.mean_squared_error(y, output, **kw))
            if "training_mse" in out:
                out["training_rmse"] = out["training_mse"] ** 0.5
            add("training_mae", lambda: m.mean_absolute_error(y, output, **kw))
            add("training_r2", lambda: m.r2_score(y, output, **kw))
        elif hasattr(est, "score"):
            add("training_score", lambda: est.score(X, y) if y is not None else est.score(X))
    return out, output


INTEGRATION = Sklearn()
