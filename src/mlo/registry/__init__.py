"""The model registry: versions with signatures, aliases gated by policies, an append-only audit log, model cards.

Modules: :mod:`.flavors` (serialization and the safe-load allowlist), :mod:`.signature`, :mod:`.versions`
(``ModelVersion`` and references), :mod:`.api` (register, find, load), :mod:`.handle` (``LoadedModel``),
:mod:`.aliases` (aliases and audit), :mod:`.policy`, :mod:`.card`, :mod:`.lineage_kind`.
"""

from __future__ import annotations

from . import lineage_kind  # noqa: F401 - registers the model kind of lineage node
from .aliases import AuditEvent, audit, delete_alias, promote, rollback, set_alias
from .api import get_model_version, load_model, models, register_model
from .card import ModelCard, model_card
from .errors import ModelIntegrityError, PromotionRefused, SignatureError, UntrustedModel
from .handle import LoadedModel
from .policy import Policy, set_policy
from .signature import ColumnSpec, Signature
from .versions import ModelVersion

__all__ = [
    "AuditEvent",
    "ColumnSpec",
    "LoadedModel",
    "ModelCard",
    "ModelIntegrityError",
    "ModelVersion",
    "Policy",
    "PromotionRefused",
    "Signature",
    "SignatureError",
    "UntrustedModel",
    "audit",
    "delete_alias",
    "get_model_version",
    "load_model",
    "model_card",
    "models",
    "promote",
    "register_model",
    "rollback",
    "set_alias",
    "set_policy",
]
