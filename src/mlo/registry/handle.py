"""``LoadedModel``: a registered model ready to predict, checking every input against the version's signature."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .signature import Signature
from .versions import ModelVersion


class LoadedModel:
    """What :func:`mlo.load_model` returns.

    ``predict`` (and ``predict_proba``, ``decision_function``, ``transform`` when the model has them) check the
    input against the signature first: a missing column or a wrong dtype raises :class:`SignatureError` naming
    it. ``raw`` is the model itself, ``model_version`` the :class:`ModelVersion` it came from.
    """

    _METHODS = ("predict_proba", "predict_log_proba", "decision_function", "transform", "score_samples")

    def __init__(self, raw: Any, model_version: ModelVersion, *, enforce: bool = True):
        self.raw = raw
        self.model_version = model_version
        self.signature: Signature | None = model_version.signature if enforce else None
        self._label = f"model {model_version.ref}"

    def conform(self, X: Any) -> Any:
        """``X`` as the model takes it (checked against the signature; columns in the signature's order)."""
        if self.signature is None:
            return X
        return self.signature.enforce(X, self._label)

    def predict(self, X: Any) -> Any:
        """The model's predictions for ``X`` (a plain callable is called with ``X``)."""
        fn = getattr(self.raw, "predict", None)
        if fn is None:
            if not callable(self.raw):
                raise InvalidInput(
                    f"{self._label} ({type(self.raw).__name__}) has no predict() and is not callable; use .raw"
                )
            fn = self.raw
        return fn(self.conform(X))

    __call__ = predict

    def __getattr__(self, name: str) -> Any:
        # predict_proba & co. exist on the handle exactly when the model has them, so hasattr() tells the truth
        if name in LoadedModel._METHODS:
            fn = getattr(self.__dict__.get("raw"), name, None)
            if callable(fn):
                return lambda X: fn(self.conform(X))
        if name in ("classes_", "feature_names_in_", "n_features_in_"):
            return getattr(self.__dict__.get("raw"), name)
        raise AttributeError(
            f"{type(self).__name__} of {type(self.__dict__.get('raw')).__name__} has no {name!r}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_version.to_dict(), "enforce": self.signature is not None}

    def __repr__(self) -> str:
        return f"<LoadedModel {self.model_version.ref} {type(self.raw).__name__}>"

    def _repr_html_(self) -> str:
        return self.model_version._repr_html_()
