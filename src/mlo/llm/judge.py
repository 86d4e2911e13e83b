"""LLM-as-judge: a scorer that asks a model for a verdict as JSON (``{"score": …, "reason": …}``), from a versioned
judge prompt, and whose agreement with human labels is measured (Cohen's kappa) when the data carries them.

The judge prompt is a registered prompt like any other: ``scorers.judge("The answer is correct.")`` registers
``judge`` with the criteria in its template (same criteria, same version), or ``prompt="grader@production"``
uses yours (variables among ``input``, ``output``, ``expected``, ``criteria``). The scorer's version names the
prompt version and the judge model, so a report says exactly which judge judged it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from ..errors import InvalidInput
from .scorers import Score, Scorer, parse_json

TEMPLATE = """[system]
You are a strict grader. Judge the answer against the criteria. Reply with JSON only: \
{"score": <VERDICT>, "reason": "<one short sentence>"}.
Criteria: CRITERIA
[user]
Question: {{ input }}
Reference answer: {{ expected }}
Answer to judge: {{ output }}"""

VARIABLES = ("input", "output", "expected", "criteria")
_OBJECT = re.compile(r"\{.*\}", re.S)


def _levels(scale: Any) -> list[Any]:
    if scale == "pass_fail":
        return ["fail", "pass"]
    if (
        isinstance(scale, tuple)
        and len(scale) == 2
        and all(isinstance(v, int) for v in scale)
        and scale[0] < scale[1]
    ):
        return list(range(scale[0], scale[1] + 1))
    raise InvalidInput(f"scale must be 'pass_fail' or a (low, high) pair of whole numbers, got {scale!r}")


def level_of(value: Any, levels: list[Any]) -> int | None:
    """The index of ``value`` among ``levels`` (``pass``/``fail``, true/false, 1/0 for a pass-fail scale; the
    number for a numeric one), or None when it is none of them."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if levels == ["fail", "pass"]:
        if isinstance(value, str):
            v = value.strip().lower()
            return (
                1
                if v in ("pass", "yes", "true", "correct", "1")
                else 0
                if v in ("fail", "no", "false", "incorrect", "0")
                else None
            )
        if isinstance(value, (bool, int, float)):
            return 1 if value in (1, True) else 0 if value in (0, False) else None
        return None
    try:
        n = float(value)
    except (TypeError, ValueError):
        return None
    if n != int(n) or int(n) not in levels:
        return None
    return levels.index(int(n))


def cohen_kappa(a: list[int], b: list[int]) -> float:
    """Cohen's kappa of two raters' labels (same length): 1 agreement, 0 what chance gives, < 0 worse."""
    n = len(a)
    if n == 0:
        return math.nan
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else math.nan
    return (observed - expected) / (1 - expected)


class Judge(Scorer):
    """A scorer that asks a model (see :func:`judge`)."""

    def __init__(self, prompt, *, name: str, scale, labels: str | None, chat_params: dict[str, Any]):
        self.prompt = prompt
        self.levels = _levels(scale)
        self.labels = labels
        self.chat_params = chat_params
        unknown = [v for v in prompt.variables if v not in VARIABLES]
        if unknown:
            raise InvalidInput(
                f"judge prompt {prompt.ref} has variable(s) {', '.join(unknown)}; a judge fills {', '.join(VARIABLES)}"
            )
        model = chat_params.get("model") or prompt.model or "the [llm] model"
        super().__init__(
            self._judge,
            name=name,
            kind="judge",
            version=f"judge@{prompt.ref}:{model}",
            params={"prompt": prompt.ref, "model": model, "scale": self.levels, "labels": labels},
        )

    def _schema(self) -> dict:
        score = (
            {"type": "string", "enum": ["pass", "fail"]}
            if self.levels == ["fail", "pass"]
            else {"type": "integer", "minimum": self.levels[0], "maximum": self.levels[-1]}
        )
        return {
            "type": "object",
            "properties": {"score": score, "reason": {"type": "string"}},
            "required": ["score", "reason"],
        }

    def _judge(self, output, expected, inputs) -> Score:
        from .client import chat

        values = {
            "input": next(iter(inputs.values())) if len(inputs) == 1 else json.dumps(inputs, default=str),
            "output": "" if output is None else str(output),
            "expected": "" if expected is None else str(expected),
            "criteria": self.params.get("criteria", ""),
        }
        params = {"temperature": 0, **self.chat_params}
        params.setdefault(
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "verdict", "schema": self._schema()}},
        )
        reply = chat(
            prompt=self.prompt,
            variables={k: values[k] for k in self.prompt.variables},
            errors="return",
            **params,
        )
        spent = _spent(reply)
        if not reply.ok:
            return Score(None, f"the judge failed: {reply.error}"[:300], **spent)
        verdict = _verdict(reply.text or "")
        if verdict is None:
            return Score(None, f"the judge answered no JSON verdict: {(reply.text or '')[:80]!r}", **spent)
        level = level_of(verdict.get("score"), self.levels)
        if level is None:
            return Score(
                None, f"the judge's score {verdict.get('score')!r} is not on the scale {self.levels}", **spent
            )
        return Score(level / (len(self.levels) - 1), str(verdict.get("reason", ""))[:300], **spent)

    def agreement(self, rows: list[dict], scores: dict[int, list[float]]) -> dict[str, Any] | None:
        """Cohen's kappa between the judge and the ``labels`` column over the rows that have both (each row's
        first repeat), or None without labels."""
        if not self.labels:
            return None
        judged, human = [], []
        for i, row in enumerate(rows):
            h = level_of(row.get(self.labels), self.levels)
            js = scores.get(i)
            if h is None or not js or js[0] is None:
                continue
            judged.append(round(js[0] * (len(self.levels) - 1)))
            human.append(h)
        k = cohen_kappa(judged, human)
        agree = sum(a == b for a, b in zip(judged, human, strict=True))
        return {"kappa": k, "labelled": len(human), "agreement": agree / len(human) if human else math.nan}


def _spent(reply) -> dict[str, Any]:
    """The judge call's tokens and price (None when its model has no price, or it sent nothing back)."""
    u = reply.usage
    if u.input is None and u.output is None:
        return {"usage": None, "cost_usd": None}
    return {
        "usage": {"input_tokens": u.input or 0, "output_tokens": u.output or 0},
        "cost_usd": reply.cost.usd,
    }


def _verdict(text: str) -> dict | None:
    try:
        v = parse_json(text)
    except ValueError:
        m = _OBJECT.search(text)
        if not m:
            return None
        try:
            v = json.loads(m.group())
        except ValueError:
            return None
    return v if isinstance(v, dict) and "score" in v else None


def judge(
    criteria: str | None = None,
    *,
    prompt: Any = None,
    name: str = "judge",
    scale: Any = "pass_fail",
    labels: str | None = None,
    **chat_params: Any,
) -> Judge:
    """An LLM-as-judge scorer.

    Parameters
    ----------
    criteria : str, optional
        What a good answer is ("The answer names the right city."); it goes into a registered judge prompt
        ``judge`` (``judge-<name>`` for another ``name``; a new version when the criteria change).
    prompt : str or Prompt, optional
        Your own judge prompt (``"grader@production"``) instead; variables among input, output, expected, criteria.
    name : str
        The report's column.
    scale : "pass_fail" or (low, high)
        The verdicts: pass/fail (scored 1/0) or whole numbers (scored 0…1 from low to high).
    labels : str, optional
        A column of human verdicts on the same scale: the report then gives the judge's Cohen's kappa against them.
    **chat_params
        ``model``, ``base_url``, ``temperature`` (default 0), … for :func:`mlo.llm.chat`. The verdict is asked
        for with a JSON schema (``response_format``), which llama.cpp, vLLM and OpenAI enforce.
    """
    from .prompts import Prompt, load_prompt, register

    if prompt is None:
        if not isinstance(criteria, str) or not criteria.strip():
            raise InvalidInput("judge needs criteria ('The answer is correct.') or a judge prompt=")
        levels = _levels(scale)
        verdict = (
            '"pass" or "fail"'
            if levels == ["fail", "pass"]
            else f"a whole number from {levels[0]} to {levels[-1]}"
        )
        template = TEMPLATE.replace("<VERDICT>", verdict).replace("CRITERIA", criteria.strip())
        p = register(
            "judge" if name == "judge" else f"judge-{name}", template, model=chat_params.get("model")
        )
    else:
        p = prompt if isinstance(prompt, Prompt) else load_prompt(str(prompt).removeprefix("prompt:"))
    j = Judge(p, name=name, scale=scale, labels=labels, chat_params=chat_params)
    if criteria:
        j.params["criteria"] = criteria.strip()
    return j
