"""Prompts as versioned artifacts of the model registry: versions, aliases, policies, promotion and the audit log
are the registry's own (``mlo.promote("support", 3, "production")``, ``mlo.audit("support")``); a prompt version
is a registry version whose flavor is ``prompt`` and whose blob holds the template, the model and its params.

A template names its variables as ``{{ name }}``. It is one user message, or a chat when it has role lines::

    [system]
    You answer questions about {{ product }} in one sentence.
    [user]
    {{ question }}

``render(**variables)`` refuses a missing or an unknown variable; the texts it renders are remembered, so any
traced call that sends them records the prompt version (``span.prompt``, ``"support/3"``).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import workspace
from ..config import did_you_mean
from ..errors import InvalidInput, NotFound
from . import rendered

FLAVOR = "prompt"
CLASS = "mlo.llm.Prompt"
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
ROLE_LINE = re.compile(r"^\[(system|user|assistant|developer)\][ \t]*$", re.MULTILINE)


def variables_of(template: str) -> list[str]:
    """The variables a template names, in order of first use."""
    seen: list[str] = []
    for name in VARIABLE.findall(template):
        if name not in seen:
            seen.append(name)
    return seen


def _sections(template: str) -> list[tuple[str, str]]:
    """``[(role, text)]`` of a template: one user message, or the sections its role lines start."""
    marks = list(ROLE_LINE.finditer(template))
    if not marks:
        return [("user", template.strip("\n"))]
    out = []
    if template[: marks[0].start()].strip():
        out.append(("user", template[: marks[0].start()].strip("\n")))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(template)
        out.append((m.group(1), template[m.end() : end].strip("\n")))
    return out


def _check_params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) and k for k in params):
        raise InvalidInput(f"params must be a dict like {{'temperature': 0}}, got {type(params).__name__}")
    try:
        return json.loads(json.dumps(params, allow_nan=False))
    except (TypeError, ValueError):
        raise InvalidInput("params must hold JSON values (numbers, text, lists, dicts)") from None


class Prompt:
    """One version of a registered prompt.

    Attributes
    ----------
    name, version, ref : str, int, str
        ``support``, ``3``, ``"support/3"``.
    template : str
    variables : list of str
    model : str or None
        The model it is meant for (the default of :func:`mlo.llm.chat`).
    params : dict
        Request parameters (``temperature``, ``max_tokens``, …).
    aliases : list of str
    """

    def __init__(self, name: str, version: int, doc: dict[str, Any], *, ws=None, row=None):
        self.name = name
        self.version = version
        self.template: str = doc["template"]
        self.model: str | None = doc.get("model")
        self.params: dict[str, Any] = dict(doc.get("params") or {})
        self.variables: list[str] = variables_of(self.template)
        self._ws = ws
        self._row = row

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def digest(self) -> str | None:
        return self._row.blob if self._row is not None else None

    @property
    def created_at(self) -> datetime | None:
        return datetime.fromtimestamp(self._row.created_at / 1e6, tz=timezone.utc) if self._row else None

    @property
    def description(self) -> str | None:
        return self._row.description if self._row is not None else None

    @property
    def aliases(self) -> list[str]:
        if self._ws is None:
            return []
        held = self._ws.models.aliases(self.name).get(self.name, {})
        return sorted(a for a, v in held.items() if v == self.version)

    def _fill(self, text: str, values: dict[str, str]) -> str:
        return VARIABLE.sub(lambda m: values[m.group(1)], text)

    def _values(self, variables: dict[str, Any]) -> dict[str, str]:
        missing = [v for v in self.variables if v not in variables]
        unknown = [k for k in variables if k not in self.variables]
        if unknown:
            hint = did_you_mean(unknown[0], self.variables)
            raise InvalidInput(
                f"prompt {self.ref} has no variable {unknown[0]!r}{hint} (its variables: "
                f"{', '.join(self.variables) or 'none'})"
            )
        if missing:
            raise InvalidInput(
                f"prompt {self.ref} needs {', '.join(missing)}: render({', '.join(f'{m}=…' for m in missing)})"
            )
        return {k: v if isinstance(v, str) else str(v) for k, v in variables.items()}

    def render(self, **variables: Any) -> str:
        """The template with its variables filled in (every one, and no other). For a chat template, the
        sections joined as text; :meth:`messages` gives the chat."""
        values = self._values(variables)
        text = self._fill(self.template, values)
        for _, section in _sections(self.template):
            rendered.remember(self._fill(section, values), self.ref)
        rendered.remember(text, self.ref)
        return text

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        """The chat messages the template renders to (a template without role lines is one user message)."""
        values = self._values(variables)
        out = []
        for role, section in _sections(self.template):
            text = self._fill(section, values)
            rendered.remember(text, self.ref)
            out.append({"role": role, "content": text})
        return out

    def diff(self, other: Prompt | str) -> PromptDiff:
        """What changed from this version to ``other`` (a Prompt or a reference like ``"support@staging"``)."""
        if isinstance(other, str):
            other = load_prompt(other)
        if not isinstance(other, Prompt):
            raise InvalidInput(f"diff takes a Prompt or a prompt reference, got {type(other).__name__}")
        return PromptDiff(self, other)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "template": self.template,
            "variables": self.variables,
            "model": self.model,
            "params": self.params,
            "aliases": self.aliases,
            "digest": self.digest,
            "description": self.description,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    def __repr__(self) -> str:
        at = f" @{','.join(self.aliases)}" if self.aliases else ""
        return f"<Prompt {self.ref}{at} variables={self.variables} model={self.model!r}>"

    def _repr_html_(self) -> str:
        from .render import prompt_html

        return prompt_html(self)


@dataclass
class PromptDiff:
    """The differences between two prompt versions: template lines, variables, model and params."""

    old: Prompt
    new: Prompt

    @property
    def template(self) -> list[str]:
        """Unified diff lines of the templates."""
        return list(
            difflib.unified_diff(
                self.old.template.splitlines(),
                self.new.template.splitlines(),
                self.old.ref,
                self.new.ref,
                lineterm="",
            )
        )

    @property
    def variables(self) -> dict[str, list[str]]:
        return {
            "added": [v for v in self.new.variables if v not in self.old.variables],
            "removed": [v for v in self.old.variables if v not in self.new.variables],
        }

    @property
    def settings(self) -> list[tuple[str, Any, Any]]:
        """``(name, old, new)`` of the model and each param that differs."""
        out = []
        if self.old.model != self.new.model:
            out.append(("model", self.old.model, self.new.model))
        for k in sorted(set(self.old.params) | set(self.new.params)):
            a, b = self.old.params.get(k), self.new.params.get(k)
            if a != b:
                out.append((k, a, b))
        return out

    @property
    def same(self) -> bool:
        return not self.template and not self.settings

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old.ref,
            "new": self.new.ref,
            "template": self.template,
            "variables": self.variables,
            "settings": [{"name": n, "old": a, "new": b} for n, a, b in self.settings],
        }

    def __str__(self) -> str:
        if self.same:
            return f"{self.old.ref} and {self.new.ref} are the same prompt"
        lines = list(self.template)
        v = self.variables
        if v["added"] or v["removed"]:
            lines.append(f"variables: +{v['added']} -{v['removed']}")
        lines += [f"{n}: {a!r} → {b!r}" for n, a, b in self.settings]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from .render import diff_html

        return diff_html(self)


# -- the registry ----------------------------------------------------------------------------------------------
def _check_prompt_name(ws, name: str) -> None:
    from ..registry.versions import check_name

    check_name(name)
    rows = ws.models.versions(name)
    if rows and rows[0].flavor != FLAVOR:
        raise InvalidInput(
            f"{name!r} is a registered model, not a prompt: give the prompt another name (`mlo models` lists "
            "the models)"
        )


def _load(ws, row) -> Prompt:
    if row.flavor != FLAVOR:
        raise InvalidInput(
            f"{row.name}/{row.version} is a model, not a prompt: load it with mlo.load_model('{row.name}/{row.version}')"
        )
    from ..registry.errors import ModelIntegrityError
    from ..store.models import record_mismatch

    changed = record_mismatch(row, ws.models.registration(row.name, row.version))
    if changed is not None:
        raise ModelIntegrityError(
            f"prompt {row.name}/{row.version}: its record does not match its registration ({changed}); restore "
            "the database from a backup"
        )
    doc = json.loads(ws.blobs.get_bytes(row.blob))
    return Prompt(row.name, row.version, doc, ws=ws, row=row)


def register(
    name: str,
    template: str,
    *,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    alias: str | None = None,
    description: str | None = None,
) -> Prompt:
    """Register ``template`` as the next version of prompt ``name`` — unless it is the latest version already
    (same template, model and params), which is returned as it is.

    Parameters
    ----------
    name : str
        Letters, digits, ``_``, ``-``, ``.``; shares the registry's names with models.
    template : str
        Text with ``{{ variables }}``; ``[system]`` / ``[user]`` / ``[assistant]`` lines make it a chat.
    model : str, optional
        The model it is written for.
    params : dict, optional
        Request parameters to send with it (``temperature``, ``max_tokens``, …).
    alias : str, optional
        Point this alias at the version (not an alias a policy governs: use :func:`mlo.promote`).
    description : str, optional
    """
    from ..registry.versions import check_alias, who

    if not isinstance(template, str) or not template.strip():
        raise InvalidInput("a prompt template must be non-empty text")
    if "\x00" in template:
        raise InvalidInput("a prompt template cannot hold a NUL character")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidInput(f"model must be a model name, got {model!r}")
    if description is not None and not isinstance(description, str):
        raise InvalidInput(f"description must be text, got {type(description).__name__}")
    params = _check_params(params)
    ws = workspace.current()
    _check_prompt_name(ws, name)
    if alias is not None:
        check_alias(alias)
        from ..registry.errors import PromotionRefused
        from ..registry.policy import policy_for

        policy = policy_for(ws, name, alias)
        if policy is not None and policy.requirements:
            raise PromotionRefused(
                f"alias {alias!r} of {name!r} needs evidence ({policy.describe()}): register without alias=, "
                f"then mlo.promote({name!r}, <version>, {alias!r})"
            )
    doc = {"template": template, "model": model, "params": params}
    data = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")
    from ..store.blobs import hash_bytes

    digest = hash_bytes(data)
    rows = ws.models.versions(name)
    if rows and rows[0].blob == digest:  # unchanged: no new version
        p = _load(ws, rows[0])
        if alias is not None and alias not in p.aliases and not workspace.reproducing():
            from ..registry.aliases import set_alias

            set_alias(name, alias, p.version)
        return p
    if (
        workspace.reproducing()
    ):  # a replay registers nothing: the same text, a version it had, or a scratch one
        same = next((r for r in rows if r.blob == digest), None)
        if same is not None:
            return _load(ws, same)
        return Prompt(name, 0, doc, ws=ws)
    ws.blobs.put_bytes(data, algo="sha256")  # named by the digest computed above
    from ..tracking import session

    active = session.active_run()
    values = {
        "run_id": active.id if active is not None else None,
        "flavor": FLAVOR,
        "blob": digest,
        "size": len(data),
        "model_class": CLASS,
        "signature": None,
        "details": {"variables": variables_of(template), "model": model, "params": params},
        "tags": {},
        "description": description,
        "env": {},
    }
    row = ws.models.add_version(name, values, user=who(), alias=alias)
    return Prompt(name, row.version, doc, ws=ws, row=row)


def load_prompt(ref: Any) -> Prompt:
    """A prompt version: ``"support@production"``, ``"support/3"``, ``"support@latest"``, ``"support"`` (the
    latest), or ``"prompts:/support@production"``."""
    from ..registry.versions import resolve

    if isinstance(ref, Prompt):
        return ref
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("a prompt reference looks like 'support@production', 'support/3' or 'support'")
    text = ref.strip()
    if text.startswith("prompts:/"):
        text = text[len("prompts:/") :]
    if "@" not in text and "/" not in text:
        text += "@latest"
    ws = workspace.current(create=False)
    try:
        row = resolve(ws, text)
    except NotFound as exc:
        raise NotFound(str(exc).replace("model", "prompt", 1)) from None
    return _load(ws, row)


def get(ref: Any) -> Prompt:
    """Same as :func:`load_prompt`."""
    return load_prompt(ref)


def diff(a: Any, b: Any) -> PromptDiff:
    """What changed from prompt version ``a`` to ``b`` (references or Prompt objects): template, variables,
    model and params."""
    return load_prompt(a).diff(load_prompt(b))


def versions(name: str | None = None):
    """Registered prompt versions as a DataFrame, newest first per prompt: name, version, aliases, model,
    variables, digest, created_by, created_at."""
    import pandas as pd

    ws = workspace.current(create=False)
    if name is not None:
        from ..registry.versions import check_name

        check_name(name)
    rows = [r for r in ws.models.versions(name) if r.flavor == FLAVOR]
    if name is not None and not rows:
        raise NotFound(f"no prompt named {name!r}; register one with mlo.prompts.register or %%mlo prompt")
    aliases = ws.models.aliases(name)
    records = [
        {
            "name": r.name,
            "version": r.version,
            "aliases": ", ".join(sorted(a for a, v in aliases.get(r.name, {}).items() if v == r.version)),
            "model": r.details.get("model"),
            "variables": ", ".join(r.details.get("variables") or []),
            "digest": r.blob,
            "created_by": r.created_by,
            "created_at": pd.Timestamp(r.created_at, unit="us", tz="UTC"),
        }
        for r in rows
    ]
    cols = ["name", "version", "aliases", "model", "variables", "digest", "created_by", "created_at"]
    return pd.DataFrame.from_records(records, columns=cols)


__all__ = ["Prompt", "PromptDiff", "diff", "get", "load_prompt", "register", "versions"]
