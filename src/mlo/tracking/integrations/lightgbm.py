"""LightGBM: ``lightgbm.train`` and the scikit-learn estimators (``LGBMClassifier.fit``, …).

Params (the booster's and ``num_boost_round``), every evaluation result of every validation set after every
iteration as a step history (``valid_0-binary_logloss`` at step = iteration), the early-stopping outcome
(``best_iteration``, ``best_<set>-<metric>``) and the model in LightGBM's text format. An estimator's ``fit``
also records its training metrics; the ``train`` it calls adds its histories to the estimator's run. A logged
estimator loads back as its ``lightgbm.Booster``.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..autolog import FitRun, Integration, Patcher
from .sklearn import data_of, record_params, record_training_metrics


class LightGBM(Integration):
    name = "lightgbm"
    module = "lightgbm"

    def patch(self, patcher: Patcher, module: Any) -> None:
        import lightgbm.engine
        import lightgbm.sklearn

        original = lightgbm.engine.train
        for mod in (lightgbm.engine, module, lightgbm.sklearn):
            if getattr(mod, "train", None) is original:
                patcher.function(mod, "train", self.train, original)
        for cls in vars(lightgbm.sklearn).values():
            if isinstance(cls, type) and issubclass(cls, lightgbm.sklearn.LGBMModel):
                patcher.method(cls, "fit", self.fit)

    def fit(self, bound, est, *args, **kwargs):
        with FitRun(self.name, type(est).__name__) as rec:
            if rec is None:
                return bound(*args, **kwargs)
            X, y, weight = data_of(bound, args, kwargs)
            record_params(rec, est)
            result = bound(*args, **kwargs)
            output = record_training_metrics(rec, est, X, y, weight)
            with rec.attempt("read the early stopping outcome"):
                record_early_stopping(rec, est.booster_)
            rec.log_model(est, X=X, output=output, flavor=self.name)
            return result

    def train(self, original, *args, **kwargs):
        with FitRun(self.name, "lightgbm.train", join=True) as rec:
            if rec is None:
                return original(*args, **kwargs)
            call = inspect.signature(original).bind(*args, **kwargs)
            given = call.arguments
            data = getattr(
                given.get("train_set"), "data", None
            )  # freed once the Dataset is built: read it now
            if not rec.joined:
                rec.log_params(
                    {**dict(given.get("params") or {}), "num_boost_round": given.get("num_boost_round", 100)}
                )
            given["callbacks"] = [*(given.get("callbacks") or []), History(rec)]
            booster = original(*call.args, **call.kwargs)
            if not rec.joined:
                with rec.attempt("read the early stopping outcome"):
                    record_early_stopping(rec, booster)
                rec.log_model(booster, X=data if not isinstance(data, str) else None, flavor=self.name)
            return booster

    def save_model(self, model: Any) -> tuple[bytes, str, dict]:
        booster = getattr(model, "booster_", model)
        kind = "booster" if booster is model else "estimator"
        cls = type(model)
        details = {"kind": kind, "class": f"{cls.__module__}.{cls.__qualname__}"}
        return booster.model_to_string().encode(), "model.txt", details

    def load_model(self, data: bytes, info: dict) -> Any:
        import lightgbm

        return lightgbm.Booster(model_str=data.decode())


class History:
    """A LightGBM callback logging each iteration's evaluation results; it runs before early stopping's (which
    ends training by raising), so the last iteration is kept."""

    order = 5
    before_iteration = False

    def __init__(self, rec: FitRun):
        self.rec = rec

    def __call__(self, env: Any) -> None:
        values = {f"{item[0]}-{item[1]}": item[2] for item in env.evaluation_result_list or []}
        self.rec.log_metrics(values, step=env.iteration)


def record_early_stopping(rec: FitRun, booster: Any) -> None:
    metrics: dict[str, float] = {"boosted_rounds": booster.current_iteration()}
    if booster.best_iteration and booster.best_iteration > 0:
        metrics["best_iteration"] = booster.best_iteration
        for data, scores in (booster.best_score or {}).items():
            for metric, value in scores.items():
                metrics[f"best_{data}-{metric}"] = value
    rec.log_metrics(metrics)


INTEGRATION = LightGBM()
