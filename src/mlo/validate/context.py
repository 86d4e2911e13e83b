"""What the checks of one validation share: the data, and each model's outputs computed at most once.

Every check asks the :class:`Context` for what it needs (labels, scores, a metric's value, a column); the first
ask calls the model, later ones reuse the result. Perturbed inputs (robustness) are the only repeated calls.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .metrics import Metric, fast_value

# metric functions that take a pos_label: validate(pos_label=...) reaches them unless the check sets its own
POS_LABEL_FUNCS = {
    "precision_score",
    "recall_score",
    "f1_score",
    "fbeta_score",
    "jaccard_score",
    "average_precision_score",
    "brier_score_loss",
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
}


def _as_1d(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def classes_of(model: Any) -> np.ndarray | None:
    for obj in (model, getattr(model, "raw", None)):
        if obj is None:
            continue
        try:
            classes = obj.classes_
        except AttributeError:
            continue
        if classes is not None:
            return np.asarray(classes)
    return None


def _model_label(model: Any) -> str:
    mv = getattr(model, "model_version", None)
    if mv is not None and hasattr(mv, "name") and hasattr(mv, "version"):
        return f"{mv.name}/{mv.version}"
    raw = getattr(model, "raw", model)
    return type(raw).__name__


class ModelOutputs:
    """One model's outputs on the validation data, each computed on first use."""

    def __init__(self, ctx: Context, model: Any, label: str):
        self.ctx = ctx
        self.model = model
        self.label = label
        self._cache: dict[str, Any] = {}
        self.classes = classes_of(model)

    def _call(self, method: str) -> Any:
        if method not in self._cache:
            fn = getattr(self.model, method, None)
            if fn is None:
                raise InvalidInput(f"{self.label} has no {method}(); validate needs a model with predict()")
            self._cache[method] = self.ctx.timed(self.label, method, fn, self.ctx.X)
        return self._cache[method]

    def has(self, method: str) -> bool:
        return callable(getattr(self.model, method, None))

    @property
    def labels(self) -> np.ndarray:
        """``predict(X)`` as a 1-D array."""
        if "labels" not in self._cache:
            self._cache["labels"] = _as_1d(self._call("predict"))
        return self._cache["labels"]

    @property
    def proba(self) -> np.ndarray:
        """``predict_proba(X)`` as a 2-D array (columns in the order of ``classes``)."""
        if not self.has("predict_proba"):
            raise InvalidInput(
                f"{self.label} has no predict_proba(), which this metric needs; use a metric on labels "
                "(accuracy, f1, …) or a model with probabilities"
            )
        if "proba_2d" not in self._cache:
            p = np.asarray(self._call("predict_proba"))
            self._cache["proba_2d"] = p.reshape(-1, 1) if p.ndim == 1 else p
        return self._cache["proba_2d"]

    def score_label(self) -> Any:
        """The class a 1-D score is the probability of: ``pos_label`` of the validation, else the last class."""
        if self.ctx.pos_label is not None:
            return self.ctx.pos_label
        if self.classes is not None and len(self.classes) == 2:
            last = self.classes[-1]
            return last.item() if hasattr(last, "item") else last
        return None

    def positive_index(self, pos_label: Any = None) -> int:
        if pos_label is None or self.classes is None:
            return -1
        hits = np.flatnonzero(self.classes == pos_label)
        if hits.size == 0:
            raise InvalidInput(
                f"pos_label={pos_label!r} is not a class of {self.label} (classes: {list(self.classes)})"
            )
        return int(hits[0])

    def score(self, pos_label: Any = None) -> np.ndarray:
        """The positive class's probability for a binary model (the matrix for more classes); the decision
        function when the model has no ``predict_proba``."""
        if pos_label is None:
            pos_label = self.ctx.pos_label
        if self.has("predict_proba"):
            p = self.proba
            return p[:, self.positive_index(pos_label)] if p.shape[1] == 2 else p
        if self.has("decision_function"):
            if "decision" not in self._cache:
                self._cache["decision"] = np.asarray(self._call("decision_function"))
            d = self._cache["decision"]
            return -d if d.ndim == 1 and self.positive_index(pos_label) == 0 else d
        raise InvalidInput(
            f"{self.label} has neither predict_proba() nor decision_function(), which score metrics "
            "(roc_auc, average_precision, …) need; use a metric on labels"
        )

    def for_metric(self, metric: Metric) -> tuple[np.ndarray, Metric]:
        """The output ``metric`` reads, and the metric adjusted to it (multi-class options, label order)."""
        pos = metric.kwargs.get("pos_label")
        if pos is None and self.ctx.pos_label is not None and metric.func_name in POS_LABEL_FUNCS:
            pos = self.ctx.pos_label
            metric = metric.with_kwargs(pos_label=pos)
        if metric.response == "label":
            return self.labels, metric
        if metric.response == "score":
            out = self.score(pos)
            if out.ndim == 2 and metric.func_name == "roc_auc_score" and "multi_class" not in metric.kwargs:
                metric = metric.with_kwargs(multi_class="ovr")
            if (
                out.ndim == 1
                and metric.func_name in ("average_precision_score", "brier_score_loss")
                and pos is None
            ):
                if self.classes is not None and len(self.classes) == 2:
                    metric = metric.with_kwargs(pos_label=self.classes[-1])
            return out, metric
        out = self.proba
        if metric.func_name in ("log_loss", "top_k_accuracy_score") and self.classes is not None:
            if "labels" not in metric.kwargs:
                metric = metric.with_kwargs(labels=self.classes)
        return out, metric

    def metric(self, metric: Metric, y: np.ndarray) -> float:
        """``metric`` on all rows (cached per metric)."""
        key = ("metric", metric.name, metric.func, repr(sorted(metric.kwargs.items())))
        if key not in self._cache:
            out, m = self.for_metric(metric)  # a model that fails to predict raises its own error
            try:
                fast = fast_value(m, y, out, self.score_label())
                self._cache[key] = fast if fast is not None else m(y, out)
            except (ValueError, TypeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InvalidInput(
                    f"metric {metric.name!r} could not be computed on {self.label}: {first}"
                ) from None
        return self._cache[key]


class Context:
    """The inputs of one validation and the shared outputs of the models it looks at.

    Checks read ``X``, ``y``, ``y_pred``, ``proba``, ``column(...)``; custom rules get the same object.
    """

    def __init__(self, model: Any, X: Any, y: Any = None, *, pos_label: Any = None, signature: Any = None):
        if not hasattr(model, "predict"):
            raise InvalidInput(
                f"validate needs a model with predict() (or a handle from mlo.load_model), got {type(model).__name__}"
            )
        if isinstance(X, pd.Series):
            X = X.to_frame()
        elif isinstance(X, list):
            X = np.asarray(X)
            X = X.reshape(-1, 1) if X.ndim == 1 else X
        if not hasattr(X, "shape") or len(X.shape) != 2:
            raise InvalidInput("X must be a 2-D table (a pandas DataFrame or a 2-D array)")
        self.model = model
        self.X = X
        self.n_rows = int(X.shape[0])
        if self.n_rows == 0:
            raise InvalidInput("X has no rows: validate needs data to measure the model on")
        self.y = None
        self.y_name = getattr(y, "name", None) if isinstance(getattr(y, "name", None), str) else None
        if y is not None:
            self.y = _as_1d(y.to_numpy() if hasattr(y, "to_numpy") else y)
            if self.y.ndim != 1:
                raise InvalidInput(
                    f"y must be one target per row of X (a Series or 1-D array), got {y!r:.40}"
                )
            if len(self.y) != self.n_rows:
                raise InvalidInput(
                    f"y has {len(self.y)} values for {self.n_rows} rows of X; pass one target per row"
                )
        self.pos_label = pos_label
        self.signature = signature
        self.calls: list[dict[str, Any]] = []
        self._outputs: dict[int, ModelOutputs] = {}
        self._champions: dict[str, Any] = {}
        self.outputs = self.outputs_of(model)

    # -- model calls ------------------------------------------------------------------------------------------
    def timed(self, label: str, method: str, fn, X) -> Any:
        t0 = time.perf_counter()
        out = fn(X)
        self.calls.append(
            {"model": label, "method": method, "rows": int(X.shape[0]), "seconds": time.perf_counter() - t0}
        )
        return out

    def outputs_of(self, model: Any, label: str | None = None) -> ModelOutputs:
        """The shared outputs of ``model`` (the candidate, or a champion) on ``X``."""
        key = id(model)
        if key not in self._outputs:
            self._outputs[key] = ModelOutputs(self, model, label or _model_label(model))
        return self._outputs[key]

    def predict(self, X: Any, model: Any = None, purpose: str = "predict") -> np.ndarray:
        """``predict`` on other inputs (perturbed rows): never cached."""
        m = self.model if model is None else model
        return _as_1d(self.timed(_model_label(m), purpose, m.predict, X))

    def champion(self, against: Any) -> tuple[Any, str]:
        """The model to compare with: a ref loaded once per validation, or a model object as given."""
        if not isinstance(against, str):
            return against, _model_label(against)
        if against not in self._champions:
            from ..registry import load_model

            model = load_model(against)
            self._champions[against] = (model, _model_label(model))
        return self._champions[against]

    # -- what checks read ---------------------------------------------------------------------------------------
    @property
    def y_pred(self) -> np.ndarray:
        return self.outputs.labels

    @property
    def proba(self) -> np.ndarray:
        return self.outputs.proba

    @property
    def is_classifier(self) -> bool:
        if self.outputs.classes is not None:
            return True
        return self.y_pred.dtype.kind not in "fc"

    def require_y(self, who: str) -> np.ndarray:
        if self.y is None:
            raise InvalidInput(f"{who} needs the true targets: call mlo.validate(model, X, y, checks=[...])")
        return self.y

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.X.columns] if isinstance(self.X, pd.DataFrame) else []

    def column(self, spec: Any, who: str) -> pd.Series | pd.DataFrame:
        """Values to group by: a column of X (by name), several (a list of names), or values given per row."""
        if isinstance(spec, str):
            if not isinstance(self.X, pd.DataFrame):
                raise InvalidInput(f"{who}: X has no column names; pass the values instead of {spec!r}")
            if spec not in self.X.columns:
                import difflib

                close = difflib.get_close_matches(spec, self.columns, n=3)
                hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
                raise InvalidInput(
                    f"{who}: column {spec!r} is not in X; {hint}pass values for columns outside X "
                    f"(e.g. by=df[{spec!r}])"
                )
            return self.X[spec]
        if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
            return pd.concat([self.column(s, who) for s in spec], axis=1)
        if isinstance(spec, (pd.DataFrame, pd.Series)):
            values = spec.reset_index(drop=True)
            if isinstance(values, pd.Series) and values.name is None:
                values = values.rename("values")
        else:
            values = pd.Series(np.asarray(spec), name="values")
        if len(values) != self.n_rows:
            raise InvalidInput(
                f"{who}: {len(values)} values given for {self.n_rows} rows of X; give one per row"
            )
        return values
