"""Guardrail policies: cheap rule-based checks on what goes into a model and what comes out, named in ``mlo.toml``
and applied the same way by :func:`mlo.llm.evaluate` and by ``mlo serve prompt:NAME@ALIAS``::

    [guardrails.support]
    input = { pii = "redact", injection = "block", blocklist = ["wire transfer"], max_chars = 4000 }
    output = { pii = "redact", blocklist = ["competitor"], refusal = "flag", json_schema = { type = "object" } }
    max_tokens = 256          # caps each request's max_tokens
    max_cost_usd = 0.01       # blocks a request whose worst-case cost (input + max_tokens) is more
    message = "I can't help with that request."

Each rule's action is ``"block"`` (answer ``message`` instead), ``"redact"`` (replace the match with ``[KIND]`` and go
on) or ``"flag"`` (record and go on). A ``blocklist`` is a list of terms (blocks) or ``{terms = […], action = …}``.
Every check returns a :class:`Decision` — the action taken and the evidence — and records it on the current trace
span (attributes ``mlo.guardrail.<stage>``), so trip rates can be read from the traces. No rule calls a model:
a check costs microseconds.

Optional model-based rules (``similar_to``, ``on_topic``: the local e5 embedding model, :mod:`.guard_models`) run
after them, only when no rule blocked, and their latency is kept in the decision (``model_ms``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput, NotFound
from . import safety

ACTIONS = ("flag", "redact", "block")
SEVERITY = {"pass": 0, "flag": 1, "redact": 2, "block": 3}
RULES = {
    "input": {"pii", "injection", "blocklist", "max_chars", "similar_to", "on_topic"},
    "output": {
        "pii",
        "injection",
        "blocklist",
        "refusal",
        "json_schema",
        "max_chars",
        "similar_to",
        "on_topic",
    },
}
DEFAULT_MESSAGE = "I can't help with that request."


@dataclass
class Decision:
    """What a guardrail check decided: ``action`` (``pass``, ``flag``, ``redact`` or ``block``), the ``text`` to
    go on with (redacted; the block message when blocked), and the evidence: one finding per rule that fired."""

    stage: str
    action: str = "pass"
    text: str = ""
    findings: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    policy: str | None = None
    model: list[dict] = field(default_factory=list)  # what each model-based check measured (similarity, ms)

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "action": self.action,
            "policy": self.policy,
            "findings": self.findings,
            "microseconds": round(self.seconds * 1e6, 1),
            **(
                {"model": self.model, "model_ms": round(sum(m["ms"] for m in self.model), 3)}
                if self.model
                else {}
            ),
        }

    def _raise_to(self, action: str) -> None:
        if SEVERITY[action] > SEVERITY[self.action]:
            self.action = action


def _action(value: Any, where: str) -> str:
    if value not in ACTIONS:
        raise InvalidInput(f"{where} must be one of {', '.join(ACTIONS)}, got {value!r}")
    return value


class Guardrails:
    """A guardrail policy (see the module's docs for its settings).

    Parameters
    ----------
    name : str
        For the records.
    input, output : dict
        Rules by stage: ``pii``, ``injection``, ``refusal`` (an action), ``blocklist`` (terms, or ``{terms,
        action}``), ``json_schema`` (a schema; output only; blocks when not valid), ``max_chars`` (blocks longer
        text).
    max_tokens : int, optional
        Each request's ``max_tokens`` is capped at this.
    max_cost_usd : float, optional
        A request whose worst-case cost (its input tokens and ``max_tokens``, priced) is more is blocked.
    message : str
        The answer given instead of a blocked one.
    """

    def __init__(
        self,
        name: str = "custom",
        *,
        input: dict | None = None,  # noqa: A002 - the stage's name in mlo.toml
        output: dict | None = None,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        message: str = DEFAULT_MESSAGE,
    ):
        self.name = name
        self.config = {
            "input": dict(input or {}),
            "output": dict(output or {}),
            "max_tokens": max_tokens,
            "max_cost_usd": max_cost_usd,
            "message": message,
        }
        where = f"guardrails {name!r}"
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise InvalidInput(f"{where}: max_tokens must be a whole number ≥ 1, got {max_tokens!r}")
        if max_cost_usd is not None and (
            isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, (int, float)) or max_cost_usd <= 0
        ):
            raise InvalidInput(f"{where}: max_cost_usd must be a positive number, got {max_cost_usd!r}")
        if not isinstance(message, str) or not message:
            raise InvalidInput(f"{where}: message must be a non-empty string")
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self.message = message
        self._rules = {
            stage: self._compile(stage, self.config[stage], where) for stage in ("input", "output")
        }
        self._models = {
            stage: self._compile_models(stage, self.config[stage], where) for stage in ("input", "output")
        }
        blob = json.dumps(self.config, sort_keys=True, default=str).encode()
        self.version = hashlib.blake2b(blob, digest_size=6).hexdigest()

    @staticmethod
    def _compile(stage: str, rules: dict, where: str) -> list[tuple[str, str, Any]]:
        if not isinstance(rules, dict):
            raise InvalidInput(f'{where}: {stage} must be a table of rules, e.g. {{ pii = "redact" }}')
        unknown = set(rules) - RULES[stage]
        if unknown:
            raise InvalidInput(
                f"{where}.{stage}: unknown rule(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(RULES[stage]))}"
            )
        out: list[tuple[str, str, Any]] = []
        at = f"{where}.{stage}"
        if "max_chars" in rules:
            n = rules["max_chars"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise InvalidInput(f"{at}.max_chars must be a whole number ≥ 1")
            out.append(("max_chars", "block", n))
        for rule in ("injection", "pii", "refusal"):
            if rule in rules:
                act = _action(rules[rule], f"{at}.{rule}")
                if rule == "refusal" and act == "redact":
                    raise InvalidInput(f"{at}.refusal can flag or block, not redact")
                out.append((rule, act, None))
        if "blocklist" in rules:
            spec = rules["blocklist"]
            terms, act = (
                (spec, "block")
                if isinstance(spec, list)
                else (
                    (spec.get("terms"), _action(spec.get("action", "block"), f"{at}.blocklist.action"))
                    if isinstance(spec, dict)
                    else (None, "block")
                )
            )
            if not isinstance(terms, list):
                raise InvalidInput(f"{at}.blocklist must be a list of terms or {{ terms = […], action = … }}")
            out.append(("blocklist", act, safety.blocklist_pattern(terms)))
        if "json_schema" in rules:
            from .scorers import json_schema

            out.append(("json_schema", "block", json_schema(rules["json_schema"])))
        return out

    @staticmethod
    def _compile_models(stage: str, rules: dict, where: str) -> list:
        from .guard_models import MODEL_RULES, SimilarityCheck

        return [SimilarityCheck(r, rules[r], f"{where}.{stage}") for r in MODEL_RULES if r in rules]

    @property
    def uses_models(self) -> bool:
        return any(self._models.values())

    @classmethod
    def load(cls, name: str) -> Guardrails:
        """The policy ``[guardrails.NAME]`` of ``mlo.toml``."""
        from .. import workspace

        table = workspace.current().config.get("guardrails") or {}
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise NotFound(
                f"no guardrail policy {name!r} in mlo.toml [guardrails.{name}] (policies: {known})"
            )
        spec = table[name]
        if not isinstance(spec, dict):
            raise InvalidInput(f"mlo.toml [guardrails.{name}] must be a table")
        unknown = set(spec) - {"input", "output", "max_tokens", "max_cost_usd", "message"}
        if unknown:
            raise InvalidInput(
                f"mlo.toml [guardrails.{name}]: unknown key(s) {', '.join(sorted(unknown))}; use input, output, "
                "max_tokens, max_cost_usd, message"
            )
        return cls(name, **spec)

    # -- checks -------------------------------------------------------------------------------------------------
    def check(self, text: Any, stage: str = "input", *, record: bool = True) -> Decision:
        """Apply the ``stage``'s rules to ``text``; record the decision on the current trace span."""
        if stage not in RULES:
            raise InvalidInput(f"stage must be 'input' or 'output', got {stage!r}")
        started = time.perf_counter()
        text = "" if text is None else str(text)
        d = Decision(stage, text=text, policy=self.name)
        for rule, act, arg in self._rules[stage]:
            found = self._fire(rule, arg, d.text)
            if not found:
                continue
            d.findings.extend({"rule": rule, "action": act, **f} for f in found)
            d._raise_to(act)
            if act == "redact":
                d.text = safety.redact(
                    d.text, [safety.Finding(f["kind"], f["text"], f["start"], f["end"]) for f in found]
                )
            elif act == "block":
                break
        if not d.blocked:  # the model checks only when every rule let the text through
            for check in self._models[stage]:
                found, measured = check.fire(d.text)
                d.model.append(measured)
                if found:
                    d.findings.extend(found)
                    d._raise_to(found[0]["action"])
                    if d.blocked:
                        break
        if d.blocked:
            d.text = self.message
        d.seconds = time.perf_counter() - started
        if record:
            self.record(d)
        return d

    @staticmethod
    def _fire(rule: str, arg: Any, text: str) -> list[dict]:
        if rule == "max_chars":
            return (
                [{"kind": "max_chars", "text": f"{len(text)} characters", "start": 0, "end": 0}]
                if len(text) > arg
                else []
            )
        if rule == "pii":
            found = safety.find_pii(text)
        elif rule == "injection":
            found = safety.find_injection(text)
        elif rule == "refusal":
            found = safety.find_refusal(text)
        elif rule == "blocklist":
            found = safety.find_blocked(text, arg)
        else:  # json_schema: a scorer
            sc = arg.score(text)
            return (
                []
                if sc.value == 1.0
                else [{"kind": "json_schema", "text": sc.reason[:120], "start": 0, "end": 0}]
            )
        return [f.to_dict() for f in found]

    def check_request(self, texts: list[str], *, model: str | None, max_tokens: int | None) -> Decision:
        """The input check over the texts of one request, and its cost bound: a block if any text is blocked or
        the worst-case cost is over ``max_cost_usd``; the texts redacted in ``decision.texts``."""
        started = time.perf_counter()
        d = Decision("input", policy=self.name)
        out = []
        for t in texts:
            one = self.check(t, "input", record=False)
            d.findings.extend(one.findings)
            d.model.extend(one.model)
            d._raise_to(one.action)
            out.append(one.text if not one.blocked else t)
        if not d.blocked and self.max_cost_usd is not None and model:
            cost = self._worst_cost(texts, model, max_tokens)
            if cost is not None and cost > self.max_cost_usd:
                d.findings.append(
                    {
                        "rule": "max_cost_usd",
                        "action": "block",
                        "kind": "cost",
                        "text": f"up to ${cost:.4g} > ${self.max_cost_usd:g}",
                        "start": 0,
                        "end": 0,
                    }
                )
                d._raise_to("block")
        d.texts = out  # type: ignore[attr-defined]
        d.text = self.message if d.blocked else ""
        d.seconds = time.perf_counter() - started
        self.record(d)
        return d

    def _worst_cost(self, texts: list[str], model: str, max_tokens: int | None) -> float | None:
        from .genai import Usage
        from .pricing import price_table
        from .tokens import count_tokens

        n_in = sum(count_tokens(t) for t in texts)
        out = max_tokens or self.max_tokens or 0
        return price_table().cost(model, Usage(n_in, out)).usd

    def cap_tokens(self, requested: int | None) -> int | None:
        """The ``max_tokens`` to send: the request's, capped by the policy's."""
        if self.max_tokens is None:
            return requested
        return self.max_tokens if requested is None else min(requested, self.max_tokens)

    @staticmethod
    def record(d: Decision) -> None:
        from .tracing import current_span

        span = current_span()
        if span is not None:
            span.set_attribute(f"mlo.guardrail.{d.stage}", d.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, **self.config}

    def __repr__(self) -> str:
        return f"<Guardrails {self.name} ({self.version})>"


def policy(spec: Any) -> Guardrails | None:
    """A policy from a name in ``mlo.toml``, a dict of settings, or a :class:`Guardrails` (None stays None)."""
    if spec is None or isinstance(spec, Guardrails):
        return spec
    if isinstance(spec, str):
        return Guardrails.load(spec)
    if isinstance(spec, dict):
        return Guardrails(**spec)
    raise InvalidInput(
        f"guardrails= takes a policy name from mlo.toml, a dict or a Guardrails, got {type(spec).__name__}"
    )
