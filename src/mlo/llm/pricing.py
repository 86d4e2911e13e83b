"""The price table: USD per million tokens for each model, with the date from which each price holds.

Seeded from the prices that the ``tokencost`` package bundles (read from its data file, without importing it;
a snapshot, effective since always), overridden and extended by ``mlo.toml``::

    [llm.prices."gpt-4o-mini"]
    input = 0.15          # USD per million input tokens
    output = 0.60         # USD per million output tokens
    cached_input = 0.075  # USD per million input tokens read from the prompt cache (default: the input price)
    effective = 2025-01-01

    [[llm.prices."my-model"]]   # several dates: an array of tables
    input = 1.0
    output = 2.0
    effective = 2025-01-01
    [[llm.prices."my-model"]]
    input = 0.5
    output = 1.0
    effective = 2025-06-01

A call is priced with the entry in force on the day it was made, so a price entered today with an earlier
``effective`` date re-prices the calls since then (costs are computed when read, from the recorded tokens).
The table's ``version`` is a digest of its entries: two reports with the same version used the same prices.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .genai import Usage

ALWAYS = dt.date(1970, 1, 1)
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4})$")


@dataclass(frozen=True)
class Price:
    """What one model costs from ``effective`` on, in USD per million tokens."""

    model: str
    input: float
    output: float
    cached_input: float | None = None  # None: cached input tokens cost the input price
    effective: dt.date = ALWAYS
    source: str = "mlo.toml"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input": self.input,
            "output": self.output,
            "cached_input": self.cached_input,
            "effective": self.effective.isoformat(),
            "source": self.source,
        }


@dataclass(frozen=True)
class Cost:
    """The price of some usage. ``usd`` is None when the model has no price (never a made-up 0 or NaN);
    ``note`` says why."""

    usd: float | None
    model: str
    price: Price | None
    usage: Usage
    note: str | None = None

    def __float__(self) -> float:
        if self.usd is None:
            raise InvalidInput(f"no price for model {self.model!r}: {self.note}")
        return self.usd

    def __str__(self) -> str:
        return f"${self.usd:.6f}" if self.usd is not None else f"unpriced ({self.note})"


def usd(price: Price, usage: Usage) -> float:
    """USD for ``usage`` at ``price``: cached input tokens apart from the rest of the input."""
    inp = usage.input or 0
    cached = min(usage.cached or 0, inp)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    return ((inp - cached) * price.input + cached * cached_rate + (usage.output or 0) * price.output) / 1e6


class PriceTable:
    """Prices by model, each a list ordered by ``effective`` date."""

    def __init__(self, prices: list[Price]):
        self._by_model: dict[str, list[Price]] = {}
        for p in sorted(prices, key=lambda p: (p.model, p.effective)):
            entries = self._by_model.setdefault(p.model, [])
            if entries and entries[-1].effective == p.effective:
                entries[-1] = p  # a later source (mlo.toml) replaces the same date
            else:
                entries.append(p)
        self._dates = {m: [p.effective for p in e] for m, e in self._by_model.items()}
        self._lower = {m.lower(): m for m in self._by_model}
        self._resolved: dict[str, str | None] = {}
        canonical = json.dumps([p.to_dict() for e in self._by_model.values() for p in e], sort_keys=True)
        self.version = hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def __len__(self) -> int:
        return len(self._by_model)

    def models(self) -> list[str]:
        return sorted(self._by_model)

    def _resolve(self, model: str) -> str | None:
        """The table's name for ``model``: exact, any case, without a provider prefix (``openai/``), a path
        (llama.cpp names the model file) or a date suffix (``-2024-08-06``)."""
        if model in self._by_model:
            return model
        found = self._resolved.get(model, ...)
        if found is not ...:
            return found
        candidates = [model, model.lower()]
        base = model.replace("\\", "/").rsplit("/", 1)[-1]
        for suffix in (".gguf",):
            if base.lower().endswith(suffix):
                base = base[: -len(suffix)]
        candidates += [base, base.lower(), _DATE_SUFFIX.sub("", base), _DATE_SUFFIX.sub("", base).lower()]
        name = None
        for c in candidates:
            if c in self._by_model:
                name = c
                break
            if c.lower() in self._lower:
                name = self._lower[c.lower()]
                break
        self._resolved[model] = name
        return name

    def price(self, model: str, when: dt.date | dt.datetime | float | None = None) -> Price | None:
        """The price of ``model`` in force on ``when`` (a date, a datetime, epoch seconds; default today)."""
        name = self._resolve(model) if isinstance(model, str) else None
        if name is None:
            return None
        day = _day(when)
        dates = self._dates[name]
        i = bisect.bisect_right(dates, day) - 1
        return self._by_model[name][i] if i >= 0 else None

    def cost(self, model: str, usage: Usage, when: dt.date | dt.datetime | float | None = None) -> Cost:
        """The cost of ``usage`` of ``model`` on ``when``."""
        p = self.price(model, when)
        if p is None:
            name = self._resolve(model) if isinstance(model, str) else None
            note = (
                f"its first price is effective {self._by_model[name][0].effective}"
                if name
                else f"no price for {model!r}; add it under [llm.prices] in mlo.toml"
            )
            return Cost(None, model, None, usage, note)
        return Cost(usd(p, usage), model, p, usage)

    def history(self, model: str) -> list[Price]:
        name = self._resolve(model)
        return list(self._by_model.get(name, [])) if name else []

    def to_frame(self, models: list[str] | None = None):
        """The table as a DataFrame: model, effective, input, output, cached_input (USD / 1M tokens), source."""
        import pandas as pd

        rows = [
            p.to_dict()
            for m, entries in sorted(self._by_model.items())
            if models is None or m in models
            for p in entries
        ]
        df = pd.DataFrame.from_records(
            rows, columns=["model", "effective", "input", "output", "cached_input", "source"]
        )
        df.attrs["version"] = self.version
        return df


def _day(when: Any) -> dt.date:
    if when is None:
        return dt.datetime.now(dt.timezone.utc).date()
    if isinstance(when, dt.datetime):
        return when.astimezone(dt.timezone.utc).date() if when.tzinfo else when.date()
    if isinstance(when, dt.date):
        return when
    if isinstance(when, (int, float)):
        return dt.datetime.fromtimestamp(when, tz=dt.timezone.utc).date()
    raise InvalidInput(f"when must be a date, a datetime or epoch seconds, got {when!r}")


# -- the seed and mlo.toml -----------------------------------------------------------------------------------------
def seed_file() -> Path | None:
    """The price file bundled by ``tokencost``, found without importing the package."""
    spec = importlib.util.find_spec("tokencost")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices.json"
    return path if path.is_file() else None


@lru_cache(maxsize=4)
def _seed(path: str | None, mtime: float) -> tuple[Price, ...]:
    if path is None:
        return ()
    from importlib import metadata

    try:
        source = f"tokencost {metadata.version('tokencost')}"
    except metadata.PackageNotFoundError:
        source = "tokencost"
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for model, entry in doc.items():
        if not isinstance(entry, dict):
            continue
        i, o = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if not isinstance(i, (int, float)) or not isinstance(o, (int, float)):
            continue
        c = entry.get("cache_read_input_token_cost")
        out.append(
            Price(
                model,
                round(i * 1e6, 9),
                round(o * 1e6, 9),
                round(c * 1e6, 9) if isinstance(c, (int, float)) else None,
                ALWAYS,
                source,
            )
        )
    return tuple(out)


def parse_prices(table: Any, where: str = "mlo.toml [llm.prices]") -> list[Price]:
    """Prices from a ``[llm.prices]`` table (see the module doc); one line naming the entry when it is wrong."""
    if not isinstance(table, dict):
        raise InvalidInput(f'{where} must be a table of models, e.g. [llm.prices."gpt-4o-mini"]')
    out = []
    for model, value in table.items():
        entries = value if isinstance(value, list) else [value]
        for n, entry in enumerate(entries):
            here = f'{where}."{model}"' + (f"[{n}]" if isinstance(value, list) else "")
            if not isinstance(entry, dict):
                raise InvalidInput(f"{here} must be a table with input and output prices (USD per 1M tokens)")
            unknown = set(entry) - {"input", "output", "cached_input", "effective"}
            if unknown:
                raise InvalidInput(
                    f"{here}: unknown key(s) {', '.join(sorted(unknown))}; use input, output, cached_input, effective"
                )
            numbers = {}
            for key in ("input", "output", "cached_input"):
                v = entry.get(key)
                if v is None and key != "cached_input":
                    raise InvalidInput(f"{here} needs {key} = <USD per million tokens>")
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                    raise InvalidInput(
                        f"{here}.{key} must be a number >= 0 (USD per million tokens), got {v!r}"
                    )
                numbers[key] = None if v is None else float(v)
            eff = entry.get("effective", ALWAYS)
            if isinstance(eff, str):
                try:
                    eff = dt.date.fromisoformat(eff)
                except ValueError:
                    raise InvalidInput(
                        f"{here}.effective must be a date like 2025-01-31, got {eff!r}"
                    ) from None
            elif isinstance(eff, dt.datetime):
                eff = eff.date()
            elif not isinstance(eff, dt.date):
                raise InvalidInput(f"{here}.effective must be a date like 2025-01-31, got {eff!r}")
            out.append(Price(str(model), numbers["input"], numbers["output"], numbers["cached_input"], eff))
    return out


_cache: dict[tuple, PriceTable] = {}


def price_table(config: dict | None = None, *, seed: bool = True) -> PriceTable:
    """The price table in force: the seed, then ``[llm.prices]`` of the workspace's ``mlo.toml`` (or of
    ``config``). Built once per distinct configuration."""
    if config is None:
        from .. import workspace
        from ..errors import MloError

        try:
            config = workspace.current(create=False).config
        except MloError:
            config = {}
    prices_cfg = (config.get("llm") or {}).get("prices") if isinstance(config.get("llm"), dict) else None
    path = seed_file() if seed else None
    key = (
        str(path),
        path.stat().st_mtime if path else 0.0,
        json.dumps(prices_cfg, sort_keys=True, default=str),
    )
    table = _cache.get(key)
    if table is None:
        entries = list(_seed(str(path) if path else None, key[1]))
        if prices_cfg:
            entries += parse_prices(prices_cfg)
        table = _cache[key] = PriceTable(entries)
    return table


def prices(model: str | None = None):
    """The price table in force as a DataFrame (of one model's dated entries when ``model`` is given); its
    ``attrs["version"]`` names the table."""
    table = price_table()
    if model is None:
        return table.to_frame()
    if not isinstance(model, str) or not model:
        raise InvalidInput(f"model must be a model name, got {model!r}")
    name = table._resolve(model)
    return table.to_frame([name] if name else [])
