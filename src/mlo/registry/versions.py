"""``ModelVersion`` and how users name versions: ``churn/3``, ``churn@production``, ``models:/churn@production``,
``model:churn/3`` (the lineage node), ``churn@latest``."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound
from ..store.addresses import short
from .signature import Signature, example_from_json

if TYPE_CHECKING:
    from ..store.models import VersionRow
    from ..workspace import Workspace

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}\Z")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,63}\Z")
RESERVED_ALIASES = {"latest"}


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidInput(
            f"model name {name!r} is not valid: use letters, digits, '_', '-' and '.', starting with a letter "
            "or digit (no '/', '@', ':' or spaces)"
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias!r} is not valid: use lowercase letters, digits, '_' and '-', starting with a letter "
            "(e.g. 'production', 'staging', 'champion')"
        )
    if alias in RESERVED_ALIASES:
        raise InvalidInput(f"alias {alias!r} is reserved (name@latest always means the newest version)")
    return alias


def who() -> str | None:
    """Who is acting: ``MLO_USER`` when set (CI), else the login name."""
    from ..tracking import capture

    return os.environ.get("MLO_USER") or capture.user()


def parse_ref(ref: str) -> tuple[str, int | str]:
    """``(name, version number or alias)`` of a reference; ``"latest"`` names the newest version."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(
            "a model reference looks like 'churn/3', 'churn@production' or 'models:/churn@production'"
        )
    text = ref.strip()
    for prefix in ("models:/", "model:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if "@" in text:
        name, _, sel = text.partition("@")
    elif "/" in text:
        name, _, sel = text.rpartition("/")
    else:
        check_name(text)
        raise InvalidInput(f"{ref!r} names no version: use {text}/<version>, {text}@<alias> or {text}@latest")
    check_name(name)
    if sel.isdigit():
        return name, int(sel)
    if sel == "latest":
        return name, "latest"
    return name, check_alias(sel)


def resolve(ws: Workspace, ref: Any, version: Any = None) -> VersionRow:
    """The stored version a reference names (``ref`` may be a ModelVersion, or a name with ``version``)."""
    if isinstance(ref, ModelVersion):
        return ref._row
    if version is not None:
        name = check_name(ref)
        sel: int | str
        if isinstance(version, bool):
            raise InvalidInput(f"version must be a number or an alias, got {version!r}")
        if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
            sel = int(version)
        elif version == "latest":
            sel = "latest"
        else:
            sel = check_alias(version)
    else:
        name, sel = parse_ref(ref)
    store = ws.models
    if sel == "latest":
        return store.latest_version(name)
    if isinstance(sel, str):
        number = store.alias_version(name, sel)
        if number is None:
            if not store.model_exists(name):
                raise NotFound(store._no_model(name))
            aliases = store.aliases(name).get(name, {})
            known = ", ".join(f"{a} → v{v}" for a, v in aliases.items()) or "none"
            raise NotFound(f"model {name!r} has no alias {sel!r} (its aliases: {known})")
        sel = number
    return store.get_version(name, sel)


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc)


class ModelVersion:
    """One registered version of a model: what was stored, where it came from, how to call it.

    Attributes
    ----------
    name, version : str, int
        ``churn`` and ``3``; ``ref`` is ``"churn/3"``, ``uri`` ``"models:/churn/3"``, ``node`` ``"model:churn/3"``.
    run_id : str or None
        The run it was registered from; ``metrics`` are that run's latest metrics.
    digest, size, flavor : str, int, str
        The SHA-256 of the stored file, its bytes, and its format (skops, cloudpickle, joblib).
    signature : Signature or None
        What it takes and gives; checked by the handle that :meth:`load` returns.
    aliases : list of str
        The aliases pointing at it now.
    """

    def __init__(self, ws: Workspace, row: VersionRow):
        self._ws = ws
        self._row = row

    id = property(lambda self: self._row.id)
    name = property(lambda self: self._row.name)
    version = property(lambda self: self._row.version)
    run_id = property(lambda self: self._row.run_id)
    digest = property(lambda self: self._row.blob)
    size = property(lambda self: self._row.size)
    flavor = property(lambda self: self._row.flavor)
    model_class = property(lambda self: self._row.model_class)
    env = property(lambda self: dict(self._row.env))
    details = property(lambda self: dict(self._row.details))
    tags = property(lambda self: dict(self._row.tags))
    description = property(lambda self: self._row.description)
    created_by = property(lambda self: self._row.created_by)

    @property
    def created_at(self) -> datetime:
        return _dt(self._row.created_at)

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def node(self) -> str:
        """The lineage node of this version."""
        return f"model:{self.name}/{self.version}"

    @property
    def signature(self) -> Signature | None:
        sig = self._row.signature
        return Signature.from_dict(sig) if sig else None

    @property
    def input_example(self) -> Any:
        """The first rows of the input example given at registration (DataFrame or array), or None."""
        return example_from_json(self._row.input_example, self.signature)

    @property
    def aliases(self) -> list[str]:
        held = self._ws.models.aliases(self.name).get(self.name, {})
        return sorted(a for a, v in held.items() if v == self.version)

    @property
    def metrics(self) -> dict[str, float]:
        """The latest metrics of the run it was registered from (empty without a run)."""
        if not self.run_id:
            return {}
        return self._ws.models.run_metrics([self.run_id])[self.run_id]

    def load(self, *, enforce: bool = True, trust: bool = False):
        """The model, ready to predict (see :func:`mlo.load_model`, and its ``trust``)."""
        from .api import load_version

        return load_version(self._ws, self._row, enforce=enforce, trust=trust)

    def card(self):
        """The model card of this version (see :func:`mlo.model_card`)."""
        from .card import ModelCard

        return ModelCard(self._ws, self._row)

    def to_dict(self) -> dict[str, Any]:
        sig = self.signature
        return {
            "name": self.name,
            "version": self.version,
            "id": self.id,
            "uri": self.uri,
            "run_id": self.run_id,
            "digest": self.digest,
            "size": self.size,
            "flavor": self.flavor,
            "model_class": self.model_class,
            "signature": sig.to_dict() if sig else None,
            "metrics": self.metrics,
            "aliases": self.aliases,
            "tags": self.tags,
            "description": self.description,
            "env": self.env,
            "details": self.details,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }

    def __repr__(self) -> str:
        aliases = self.aliases
        at = f" @{','.join(aliases)}" if aliases else ""
        run = f" run={self.run_id}" if self.run_id else ""
        return f"<ModelVersion {self.ref}{at} {self.flavor} {short(self.digest)}{run}>"

    def _repr_html_(self) -> str:
        from ..report.models import version_html

        return version_html(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)
