"""LLMOps: every LLM call traced, every prompt versioned, every token priced — offline, in the notebook.

* Client layer — :func:`autolog` traces the official ``openai`` client against any OpenAI-compatible endpoint;
  :func:`chat` is a thin call with retries, backoff, a timeout and a rate limit (:mod:`.client`, :mod:`.limits`,
  :mod:`.transport`, :mod:`.calls`).
* Traces — ``mlo.trace`` builds span trees with OpenTelemetry GenAI attributes, written synchronously
  (:mod:`.tracing`); ``mlo.traces(where=…)`` and :func:`get_trace` read them (:mod:`.query`).
* Record / replay — :func:`replay` (or ``MLO_LLM_REPLAY=1``) answers calls from the record (:mod:`.record`).
* Prompts — versioned through the model registry (:mod:`.prompts`): ``mlo.prompts.register``,
  ``mlo.load_prompt("support@production")``, ``render(**vars)``, diffs.
* Tokens and cost — a date-effective price table (:mod:`.pricing`), costs and budgets (:mod:`.spending`), estimates
  from a tokenizer (:mod:`.tokens`).
* A real model offline — :func:`serve_gguf` runs a GGUF model with llama.cpp (:mod:`.local_model`), and
  :class:`FakeEndpoint` is an OpenAI-compatible test server that injects faults (:mod:`.fake_endpoint`).
* Evaluations — :func:`evaluate` runs an app over a dataset with :mod:`.scorers` (deterministic, safety, custom),
  resumable and rate-limited, into an :class:`EvalReport` with bootstrap intervals, gated by :mod:`.checks`
  (:mod:`.evaluation`, :mod:`.eval_report`, :mod:`.safety`, :mod:`.judge`).
* Guardrails — :class:`Guardrails` policies from ``mlo.toml`` (:mod:`.guardrails`), shared by evaluations and
  ``mlo serve prompt:NAME@ALIAS``; :func:`monitor` reads a served prompt's windows from its traces
  (:mod:`.monitoring`), for the alert rules of :mod:`mlo.monitor`.
"""

from __future__ import annotations

from . import checks, scorers
from .client import LLMCallFailed, Reply, autolog, chat
from .eval_compare import EvalComparison
from .eval_compare import compare as compare_evals
from .eval_gc import gc_checkpoints
from .eval_report import EvalReport
from .evaluation import evaluate, evaluations
from .fake_endpoint import FakeEndpoint
from .genai import Usage
from .guardrails import Decision, Guardrails
from .local_model import LocalModel, serve_gguf
from .monitoring import LLMMonitorReport, monitor
from .pricing import Cost, Price, PriceTable, price_table, prices
from .prompts import Prompt, PromptDiff, load_prompt
from .query import Trace, get_trace, traces
from .record import Replay, ReplayMiss, replay
from .spending import BudgetExceeded, BudgetStatus, BudgetWarning, budget, costs, priced_calls
from .tokens import Estimate, count_tokens, estimate
from .tracing import Span, current_span, trace

__all__ = [
    "BudgetExceeded",
    "BudgetStatus",
    "BudgetWarning",
    "Cost",
    "Decision",
    "Estimate",
    "EvalComparison",
    "EvalReport",
    "FakeEndpoint",
    "Guardrails",
    "LLMMonitorReport",
    "LLMCallFailed",
    "LocalModel",
    "Price",
    "PriceTable",
    "Prompt",
    "PromptDiff",
    "Replay",
    "ReplayMiss",
    "Reply",
    "Span",
    "Trace",
    "Usage",
    "autolog",
    "budget",
    "chat",
    "checks",
    "compare_evals",
    "costs",
    "count_tokens",
    "current_span",
    "estimate",
    "evaluate",
    "evaluations",
    "gc_checkpoints",
    "get_trace",
    "load_prompt",
    "monitor",
    "price_table",
    "priced_calls",
    "prices",
    "replay",
    "scorers",
    "serve_gguf",
    "trace",
    "traces",
]
