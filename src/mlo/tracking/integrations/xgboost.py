"""XGBoost: ``xgboost.train`` and the scikit-learn estimators (``XGBClassifier.fit``, …).

Params (the booster's, ``num_boost_round``, ``early_stopping_rounds``), every evaluation metric of every eval
set after every iteration as a step history (``validation_0-logloss`` at step = iteration), the early-stopping
outcome (``best_iteration``, ``best_score``, ``boosted_rounds``) and the model in XGBoost's own UBJSON format.
An estimator's ``fit`` also records its training metrics; the ``train`` it calls adds its histories to the
estimator's run.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from typing import Any

from ..autolog import FitRun, Integration, Patcher
from .sklearn import data_of, record_params, record_training_metrics


class XGBoost(Integration):
    name = "xgboost"
    module = "xgboost"

    def patch(self, patcher: Patcher, module: Any) -> None:
        import xgboost.sklearn
        import xgboost.training

        original = xgboost.training.train
        for mod in (xgboost.training, module, xgboost.sklearn):
            if getattr(mod, "train", None) is original:
                patcher.function(mod, "train", self.train, original)
        for cls in vars(xgboost.sklearn).values():
            if isinstance(cls, type) and issubclass(cls, xgboost.sklearn.XGBModel):
                patcher.method(cls, "fit", self.fit)

    # -- the scikit-learn estimators -------------------------------------------------------------------------
    def fit(self, bound, est, *args, **kwargs):
        with FitRun(self.name, type(est).__name__) as rec:
            if rec is None:
                return bound(*args, **kwargs)
            X, y, weight = data_of(bound, args, kwargs)
            record_params(rec, est)
            result = bound(*args, **kwargs)
            output = record_training_metrics(rec, est, X, y, weight)
            with rec.attempt("read the early stopping outcome"):
                record_early_stopping(rec, est.get_booster())
            rec.log_model(est, X=X, output=output, flavor=self.name)
            return result

    # -- xgboost.train ---------------------------------------------------------------------------------------
    def train(self, original, *args, **kwargs):
        with FitRun(self.name, "xgboost.train", join=True) as rec:
            if rec is None:
                return original(*args, **kwargs)
            call = inspect.signature(original).bind(*args, **kwargs)
            given = call.arguments
            if not rec.joined:
                rec.log_params(
                    {
                        **dict(given.get("params") or {}),
                        "num_boost_round": given.get("num_boost_round", 10),
                        "early_stopping_rounds": given.get("early_stopping_rounds"),
                    }
                )
            given["callbacks"] = [*(given.get("callbacks") or []), history_callback(rec)]
            booster = original(*call.args, **call.kwargs)
            if not rec.joined:
                with rec.attempt("read the early stopping outcome"):
                    record_early_stopping(rec, booster)
                rec.log_model(booster, X=_columns_of(given.get("dtrain")), flavor=self.name)
            return booster

    # -- the model in XGBoost's format -----------------------------------------------------------------------
    def save_model(self, model: Any) -> tuple[bytes, str, dict]:
        import xgboost

        if isinstance(model, xgboost.Booster):
            return bytes(model.save_raw(raw_format="ubj")), "model.ubj", {"kind": "booster"}
        with tempfile.TemporaryDirectory(prefix="mlo-xgb-") as tmp:
            path = os.path.join(tmp, "model.ubj")
            model.save_model(path)  # the estimator's params and classes too
            with open(path, "rb") as fh:
                data = fh.read()
        cls = type(model)
        return data, "model.ubj", {"kind": "estimator", "class": f"{cls.__module__}.{cls.__qualname__}"}

    def load_model(self, data: bytes, info: dict) -> Any:
        import importlib

        import xgboost

        details = info.get("details") or {}
        if details.get("kind") != "estimator":
            booster = xgboost.Booster()
            booster.load_model(bytearray(data))
            return booster
        module, _, name = str(details.get("class", "")).rpartition(".")
        if module.split(".")[0] != "xgboost":  # build only XGBoost's own classes
            raise ValueError(f"not an XGBoost estimator class: {details.get('class')!r}")
        est = getattr(importlib.import_module(module), name)()
        est.load_model(bytearray(data))
        return est


def history_callback(rec: FitRun) -> Any:
    """An XGBoost callback logging each iteration's evaluation results into ``rec``."""
    from xgboost.callback import TrainingCallback

    class History(TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            values = {}
            for data, metrics in evals_log.items():
                for metric, points in metrics.items():
                    if points:
                        last = points[-1]
                        values[f"{data}-{metric}"] = last[0] if isinstance(last, tuple) else last
            rec.log_metrics(values, step=epoch)
            return False

        def __deepcopy__(self, memo) -> History:  # estimators deep-copy their callbacks: keep the record
            return self

    return History()


def record_early_stopping(rec: FitRun, booster: Any) -> None:
    metrics = {"boosted_rounds": booster.num_boosted_rounds()}
    best_iteration = booster.attr("best_iteration")
    if best_iteration is not None:
        metrics["best_iteration"] = int(best_iteration)
        if booster.attr("best_score") is not None:
            metrics["best_score"] = float(booster.attr("best_score"))
    rec.log_metrics(metrics)


def _columns_of(dtrain: Any) -> Any:
    """An empty frame (or array) with the training matrix's columns, for the model's signature."""
    import numpy as np
    import pandas as pd

    if dtrain is None:
        return None
    names = dtrain.feature_names
    if not names:
        return np.empty((0, dtrain.num_col()), dtype=np.float32)
    kinds = {"int": "int64", "i": "bool", "c": "category", "float": "float32", "q": "float64"}
    types = dtrain.feature_types or ["float"] * len(names)
    return pd.DataFrame(
        {n: pd.Series(dtype=kinds.get(t, "float64")) for n, t in zip(names, types, strict=False)}
    )


INTEGRATION = XGBoost()
