"""Errors of the model registry, each a subclass of the general :mod:`mlo.errors` kind it belongs to."""

from __future__ import annotations

from ..errors import CorruptBlob, GateFailed, InvalidInput


class SignatureError(InvalidInput):
    """Input that does not match a model version's signature (a missing column, a wrong dtype, a wrong shape)."""


class ModelIntegrityError(CorruptBlob):
    """A stored model that cannot be loaded safely: its bytes or its version record changed after registration."""


class UntrustedModel(InvalidInput):
    """A model whose loading would run code or construct types that nobody trusted: a pickle (cloudpickle,
    joblib) or a skops file with types beyond the safe defaults. Load it with ``trust=True``, or trust its flavor or
    types in ``mlo.toml`` ``[registry]``, only when you trust where it came from."""


class PromotionRefused(GateFailed):
    """An alias change that the alias's policy does not allow yet; ``missing`` lists what it still needs."""

    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])
