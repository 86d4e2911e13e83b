"""``mlo.explain(model, X, y=None)``: which features a model relies on, for a frame or for one prediction.

Methods, chosen by what is given and installed (``method="auto"``):

* **permutation** (a frame): scikit-learn's permutation importance — how much the score drops when one feature's
  values are shuffled, mean and spread over ``n_repeats``. With ``y`` the score is the model's own metric
  (accuracy for a classifier, R² for a regressor, or ``scoring=``); without ``y`` it is agreement with the model's
  unshuffled predictions (how much the *predictions* rely on the feature), and says so.
* **shap** (a frame or one row, when the ``shap`` package is installed and the model is one it explains): mean
  absolute SHAP values per feature, and each row's own values.
* **ablation** (one row, without shap): each feature of the row replaced by the values of ``background`` rows,
  the mean change of the prediction — a single-feature effect, not a Shapley value, and labelled as such.

Validation keeps a permutation importance in its report when it is evidence for a model version (so the model card
shows it), on at most ``MAX_ROWS`` rows, and the importance on the worst slice when a slices check found one.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput

MAX_ROWS = 2000
METHODS = ("auto", "permutation", "shap", "ablation")


@dataclass
class Explanation:
    """Feature importances (``importances``: feature, importance, std, sorted by importance) and, for SHAP or an
    ablation, per-row values (``values``: one column per feature)."""

    method: str
    scoring: str
    importances: pd.DataFrame
    values: pd.DataFrame | None = None
    n_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def top(self, n: int = 10) -> pd.DataFrame:
        return self.importances.head(n)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        imp = self.importances if top is None else self.importances.head(top)
        return {
            "method": self.method,
            "scoring": self.scoring,
            "n_rows": self.n_rows,
            "notes": list(self.notes),
            "importances": [
                {"feature": str(r.feature), "importance": _f(r.importance), "std": _f(r.std)}
                for r in imp.itertuples(index=False)
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Explanation:
        imp = pd.DataFrame(d.get("importances", []), columns=["feature", "importance", "std"])
        return cls(
            d.get("method", ""), d.get("scoring", ""), imp, None, d.get("n_rows", 0), d.get("notes", [])
        )

    def __repr__(self) -> str:
        head = ", ".join(f"{r.feature}={r.importance:.3g}" for r in self.importances.head(5).itertuples())
        return f"<Explanation {self.method} ({self.scoring}) on {self.n_rows} rows: {head}>"

    def _repr_html_(self) -> str:
        from .explain_render import explanation_html

        return explanation_html(self)


def _f(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def _frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        return X.to_frame().T
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InvalidInput(f"explain needs a frame or a 2-D array of rows, got an array of shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


def _estimator(model: Any) -> Any:
    """What scikit-learn and shap should call: the raw model under an ``mlo.load_model`` handle."""
    return getattr(model, "raw", None) or model


def _is_classifier(model: Any) -> bool:
    est = _estimator(model)
    return hasattr(est, "classes_") or getattr(est, "_estimator_type", None) == "classifier"


def permutation(model: Any, X: pd.DataFrame, y: Any = None, *, scoring: str | None = None, n_repeats: int = 5,
                random_state: int = 0, max_rows: int = MAX_ROWS) -> Explanation:  # fmt: skip
    """Permutation importance of each column of ``X`` (see the module)."""
    from sklearn.inspection import permutation_importance

    notes = []
    if len(X) > max_rows:
        keep = np.random.default_rng(random_state).choice(len(X), max_rows, replace=False)
        keep.sort()
        X = X.iloc[keep]
        y = None if y is None else np.asarray(y)[keep]
        notes.append(f"on a sample of {max_rows:,} rows (seed {random_state})")
    from sklearn.metrics import get_scorer

    name = scoring or ("accuracy" if _is_classifier(model) else "r2")
    try:
        get_scorer(name)
    except ValueError:
        raise InvalidInput(
            f"explain: unknown scoring {scoring!r}; use a scikit-learn scorer name such as 'accuracy', "
            "'roc_auc', 'r2' or 'neg_mean_absolute_error'"
        ) from None
    target = np.asarray(model.predict(X)) if y is None else np.asarray(y)
    if y is None:
        notes.append("without labels: the score is agreement with the model's own predictions")
    result = permutation_importance(
        _Estimator(model), X, target, scoring=name, n_repeats=n_repeats, random_state=random_state
    )
    imp = pd.DataFrame(
        {"feature": list(X.columns), "importance": result.importances_mean, "std": result.importances_std}
    ).sort_values("importance", ascending=False, kind="stable", ignore_index=True)
    return Explanation("permutation", name, imp, None, len(X), notes)


class _Estimator:
    """A model as scikit-learn's scorers need it (fit is never called): predict, predict_proba, classes_."""

    def __init__(self, model: Any):
        self._model = model
        est = _estimator(model)
        if hasattr(est, "classes_"):
            self.classes_ = est.classes_
        self._estimator_type = "classifier" if _is_classifier(model) else "regressor"

    def fit(self, X, y=None):  # pragma: no cover - never called by permutation_importance
        return self

    def predict(self, X):
        return self._model.predict(X)

    def __getattr__(self, name: str):
        if name in ("predict_proba", "decision_function") and hasattr(self._model, name):
            return getattr(self._model, name)
        raise AttributeError(name)

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags

        tags = Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=True))
        return tags


def _shap(model: Any, X: pd.DataFrame, background: pd.DataFrame | None, random_state: int = 0) -> Explanation:
    import shap  # optional: only when installed

    notes = []
    if len(X) > MAX_ROWS:
        X = X.sample(MAX_ROWS, random_state=random_state).sort_index()
        notes.append(f"on a sample of {MAX_ROWS:,} rows (seed {random_state})")
    est = _estimator(model)
    bg = background if background is not None else X
    bg = bg.sample(min(len(bg), 100), random_state=0) if len(bg) > 100 else bg
    explainer = shap.Explainer(est, bg)
    sv = explainer(X)
    vals = np.asarray(sv.values)
    if vals.ndim == 3:  # classes: the positive (last) class
        vals = vals[:, :, -1]
    values = pd.DataFrame(vals, columns=list(X.columns), index=X.index)
    imp = pd.DataFrame(
        {"feature": list(X.columns), "importance": np.abs(vals).mean(axis=0), "std": np.abs(vals).std(axis=0)}
    ).sort_values("importance", ascending=False, kind="stable", ignore_index=True)
    return Explanation("shap", "mean |SHAP value|", imp, values, len(X), notes)


def ablation(model: Any, row: pd.DataFrame, background: pd.DataFrame, *, max_background: int = 200,
             random_state: int = 0) -> Explanation:  # fmt: skip
    """Each feature of the one ``row`` replaced by the values of ``background`` rows: the mean change of the
    prediction (the score of the positive class for a classifier)."""
    if len(row) != 1:
        raise InvalidInput(f"an ablation explains one row; got {len(row)} (use permutation for a frame)")
    missing = [c for c in row.columns if c not in background.columns]
    if missing:
        raise InvalidInput(f"background lacks the columns {', '.join(map(str, missing[:5]))} of the row")
    if len(background) > max_background:
        background = background.sample(max_background, random_state=random_state)
    predict = _output(model)
    base = float(predict(row)[0])
    effects = {}
    for col in row.columns:
        probe = pd.concat([row] * len(background), ignore_index=True)
        probe[col] = background[col].to_numpy()
        effects[col] = base - float(np.mean(predict(probe)))
    vals = pd.DataFrame([effects], index=row.index)
    imp = pd.DataFrame(
        {"feature": list(effects), "importance": np.abs(list(effects.values())), "std": np.nan}
    ).sort_values("importance", ascending=False, kind="stable", ignore_index=True)
    note = (
        f"prediction {base:.4g}; each value is the prediction minus its mean with that feature taken from "
        f"{len(background)} background rows (a single-feature effect, not a Shapley value)"
    )
    return Explanation("ablation", "change of the prediction", imp, vals, 1, [note])


def _output(model: Any):
    if _is_classifier(model) and hasattr(model, "predict_proba"):
        return lambda X: np.asarray(model.predict_proba(X))[:, -1]
    return lambda X: np.asarray(model.predict(X), dtype=float)


def _shap_applies(model: Any) -> bool:
    return importlib.util.find_spec("shap") is not None


def explain(model: Any, X: Any, y: Any = None, *, method: str = "auto", background: Any = None,
            scoring: str | None = None, n_repeats: int = 5, random_state: int = 0) -> Explanation:  # fmt: skip
    """Which features ``model`` relies on, for the rows ``X`` (a frame) or one prediction (one row).

    Parameters
    ----------
    model : estimator or model handle
        Anything with ``predict`` (``mlo.load_model(ref)`` works).
    X : DataFrame, Series (one row) or 2-D array
    y : array-like, optional
        True targets: permutation importance scores against them (else against the model's own predictions).
    method : {"auto", "permutation", "shap", "ablation"}
        ``auto``: SHAP when installed and it explains the model, else permutation for a frame and ablation for
        one row.
    background : DataFrame, optional
        Reference rows for SHAP and for an ablation (required to explain one row without SHAP).
    scoring : str, optional
        A scikit-learn scorer name for permutation importance (default accuracy or R²).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidInput(f"explain: method must be one of {', '.join(METHODS)}, got {method!r}")
    if scoring is not None and (not isinstance(scoring, str) or not scoring.strip()):
        raise InvalidInput(
            f"explain: scoring must be a scikit-learn scorer name such as 'roc_auc', got {scoring!r}"
        )
    for name, value, low in (("n_repeats", n_repeats, 1), ("random_state", random_state, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidInput(f"explain: {name} must be a whole number >= {low}, got {value!r}")
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(f"explain needs a model with predict(), got {type(model).__name__}")
    frame = _frame(X)
    if frame.empty or frame.shape[1] == 0:
        raise InvalidInput("explain needs at least one row and one column")
    bg = None if background is None else _frame(background)
    if y is not None:
        target = np.asarray(y)
        if target.ndim != 1 or len(target) != len(frame):
            raise InvalidInput(
                f"explain: y must hold one target per row of X ({len(frame):,}), got {type(y).__name__} "
                f"of shape {target.shape}"
            )
    one = len(frame) == 1
    fallback = ""
    if method == "shap" and not _shap_applies(model):
        raise InvalidInput(
            "method='shap' needs the shap package (pip install shap); method='auto' falls back"
        )
    if method in ("auto", "shap") and _shap_applies(model):
        try:
            return _shap(model, frame, bg, random_state)
        except Exception as exc:  # shap cannot explain this model: fall back, and say why
            if method == "shap":
                raise InvalidInput(f"shap cannot explain {type(_estimator(model)).__name__}: {exc}") from None
            fallback = f"shap could not explain it ({type(exc).__name__}); fell back"
    if method == "ablation" or (method == "auto" and one):
        if bg is None:
            raise InvalidInput(
                "explaining one row needs background= rows to compare with (e.g. the training frame), or shap"
            )
        out = ablation(model, frame, bg, random_state=random_state)
    else:
        if one:
            raise InvalidInput("permutation importance needs many rows; for one row use method='ablation'")
        out = permutation(model, frame, y, scoring=scoring, n_repeats=n_repeats, random_state=random_state)
    if fallback:
        out.notes.insert(0, fallback)
    return out
