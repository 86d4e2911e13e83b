"""End to end on a real model: SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1 (one thread, one server
for the session). Spans, token counts equal to the server's own tokenizer, cached-token pricing, replay."""

from __future__ import annotations

import pytest

import mlo
from mlo import workspace
from mlo.llm import get_trace

QUESTION = [
    {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


def test_a_real_model_traced_counted_priced_and_replayed(sqlite_ws, smollm):
    import openai

    (sqlite_ws.home / "mlo.toml").write_text(
        f'[llm]\nbase_url = "{smollm.base_url}"\nmodel = "{smollm.model}"\n\n'
        f'[llm.prices."{smollm.model}"]\ninput = 1.0\noutput = 2.0\ncached_input = 0.1\n'
    )
    workspace.reset_cache()
    est = mlo.llm.estimate([QUESTION], tokenizer="server", max_tokens=12)
    with mlo.start_run("real") as run:
        first = mlo.llm.chat(QUESTION, temperature=0, max_tokens=12)
        second = mlo.llm.chat(
            QUESTION, temperature=0, max_tokens=12
        )  # the server's prompt cache answers part
        mlo.llm.autolog()
        client = openai.OpenAI(base_url=smollm.base_url, api_key="none")
        stream = client.chat.completions.create(
            model=smollm.model, messages=QUESTION, temperature=0, max_tokens=12, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in first.text and first.text == second.text == streamed  # deterministic at temperature 0
    # the usage the server reports is its tokenizer's count of the templated prompt
    assert first.usage.input == est.per_call[0]
    assert second.usage.cached > 0 and second.usage.cached <= second.usage.input
    u = second.usage
    assert second.cost.usd == pytest.approx(
        ((u.input - u.cached) * 1.0 + u.cached * 0.1 + u.output * 2.0) / 1e6
    )
    assert second.cost.usd < first.cost.usd
    df = mlo.traces(run=run.id)
    assert len(df) == 3 and (df.status == "ok").all()
    span = get_trace(first.trace_id).spans[0]
    assert span.attributes["gen_ai.request.model"] == smollm.model
    assert span.attributes["gen_ai.usage.input_tokens"] == est.per_call[0]
    streamed_span = get_trace(df.trace_id.iloc[0]).spans[0]
    assert streamed_span.usage.output > 0 and streamed_span.attributes["mlo.time_to_first_token_ms"] > 0
    vs = est.actual(run=run)
    assert vs.loc["input_tokens", "actual"] == 3 * est.input_tokens

    # replay: the same answers, byte for byte, with the server never asked
    with mlo.llm.replay(run) as rp:
        again = mlo.llm.chat(QUESTION, temperature=0, max_tokens=12)
        stream = client.chat.completions.create(
            model=smollm.model, messages=QUESTION, temperature=0, max_tokens=12, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        replayed = [c.model_dump_json() for c in stream]
    assert rp.answered == 2 and rp.missed == 0
    assert again.raw.model_dump_json() == first.raw.model_dump_json()
    assert replayed == [c.model_dump_json() for c in chunks]
