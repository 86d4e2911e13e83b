"""The client layer against the project's fake OpenAI-compatible endpoint: every call a span with GenAI
attributes, sync, async and streamed; retries honouring Retry-After; timeouts, malformed JSON, broken streams
and dropped connections as explicit records; the rate limiter."""

from __future__ import annotations

import asyncio
import time

import pytest

import mlo
from mlo.llm import LLMCallFailed, get_trace


def _span(trace_id=None):
    df = mlo.traces(limit=None)
    t = get_trace(trace_id or df.trace_id.iloc[0])
    return t, [s for s in t.spans if s.kind == "llm"]


def test_chat_is_traced_with_genai_attributes_and_bodies(sqlite_ws, endpoint):
    r = mlo.llm.chat("What is tea?", model="gpt-4o-mini", base_url=endpoint.url, temperature=0, max_tokens=10)
    assert r.ok and r.text == "echo: What is tea?" and r.attempts == 1
    assert (r.usage.input, r.usage.output, r.usage.cached) == (6, 4, 0)
    t, (span,) = _span(r.trace_id)
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.request.temperature"] == 0 and a["gen_ai.request.max_tokens"] == 10
    assert a["gen_ai.usage.input_tokens"] == 6 and a["gen_ai.usage.output_tokens"] == 4
    assert a["gen_ai.usage.cache_read.input_tokens"] == 0 and a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["server.address"] == "127.0.0.1" and a["http.response.status_code"] == 200
    assert span.request()["messages"] == [{"role": "user", "content": "What is tea?"}]
    assert span.response()["choices"][0]["message"]["content"] == "echo: What is tea?"
    # mlo's own headers never reach the endpoint
    assert not any(k.lower().startswith("x-mlo") for k in endpoint.requests[-1]["headers"])
    # the price of gpt-4o-mini comes from the seed table (tokencost)
    assert r.cost.usd == pytest.approx((6 * 0.15 + 4 * 0.60) / 1e6)


def test_autolog_traces_the_openai_client_sync_async_and_streamed(sqlite_ws, endpoint):
    import openai

    client = openai.OpenAI(base_url=endpoint.url, api_key="x")  # made before autolog: traced all the same
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "untraced"}])
    assert mlo.traces().empty
    mlo.llm.autolog()
    with mlo.trace("app", kind="chain"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "one"}])
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "two words"}], stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        client.embeddings.create(model="e", input=["a b", "c"])

    async def go():
        ac = openai.AsyncOpenAI(base_url=endpoint.url, api_key="x")
        with mlo.trace("async app"):
            r = await ac.chat.completions.create(model="m", messages=[{"role": "user", "content": "three"}])
            s = await ac.chat.completions.create(model="m", messages=[{"role": "user", "content": "four"}], stream=True,
                                                 stream_options={"include_usage": True})  # fmt: skip
            parts = [c.choices[0].delta.content or "" async for c in s if c.choices]
        return r.choices[0].message.content, "".join(parts)

    assert asyncio.run(go()) == ("echo: three", "echo: four")
    assert text == "echo: two words"
    df = mlo.traces().set_index("name")
    assert df.loc["app", "llm_calls"] == 3 and df.loc["async app", "llm_calls"] == 2
    t = get_trace(df.loc["app", "trace_id"])
    chat, streamed, emb = t.spans[1:]
    assert streamed.attributes["mlo.stream"] and streamed.usage.output == 3
    assert streamed.attributes["mlo.time_to_first_token_ms"] > 0
    assert streamed.attributes["mlo.response.text"] == "echo: two words"
    assert emb.kind == "embedding" and emb.usage.input == 3
    a = get_trace(df.loc["async app", "trace_id"])
    assert [s.status for s in a.spans] == ["ok", "ok", "ok"] and a.spans[2].usage.output == 2
    mlo.llm.autolog(disable=True)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "off"}])
    assert len(mlo.traces()) == 2


def test_429_is_retried_after_the_wait_it_asks_for(sqlite_ws, endpoint):
    endpoint.fail("429", times=2, retry_after=0.3)
    t0 = time.monotonic()
    r = mlo.llm.chat("hi", model="m", base_url=endpoint.url)
    assert r.ok and r.attempts == 3
    assert time.monotonic() - t0 >= 0.6  # two waits of Retry-After: 0.3 s
    df = mlo.traces()
    assert df.status.tolist() == ["ok", "error", "error"]
    failed = get_trace(df.trace_id.iloc[-1]).spans[0]
    assert failed.error == "HTTP 429: rate limit reached" and failed.attributes["mlo.retry_after_s"] == 0.3


def test_failures_are_explicit_records_never_nan_nor_a_hang(sqlite_ws, endpoint):
    endpoint.fail("503", times=10)
    with pytest.raises(LLMCallFailed, match=r"failed after 3 attempts .*HTTP 503: overloaded"):
        mlo.llm.chat("hi", model="m", base_url=endpoint.url, retries=2)
    endpoint.clear()
    endpoint.fail("timeout", delay=2.0)
    r = mlo.llm.chat("slow", model="m", base_url=endpoint.url, retries=0, timeout=0.3, errors="return")
    assert not r.ok and r.text is None and "no answer within 0.3 s" in r.error
    endpoint.fail("malformed")
    r = mlo.llm.chat("bad", model="m", base_url=endpoint.url, retries=0, errors="return")
    assert "not a completion" in r.error
    endpoint.fail("disconnect")
    r = mlo.llm.chat("gone", model="m", base_url=endpoint.url, retries=0, errors="return")
    assert "connection failed" in r.error
    errors = mlo.traces("status = 'error'").error.tolist()
    assert any("ReadTimeout" in e for e in errors)
    assert any("malformed JSON" in e for e in errors)
    assert sum("HTTP 503" in e for e in errors) == 3
    # nothing was priced as zero: failed calls have no usage
    assert mlo.llm.costs("call").input_tokens.sum() == 0


def test_a_broken_stream_is_recorded_as_such(sqlite_ws, endpoint):
    import openai

    mlo.llm.autolog()
    client = openai.OpenAI(base_url=endpoint.url, api_key="x", max_retries=0)
    endpoint.fail("broken_stream", after_events=2)
    with pytest.raises(openai.APIConnectionError):
        for _ in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "a b c"}], stream=True
        ):
            pass
    _, (span,) = _span()
    assert (
        span.status == "error" and "RemoteProtocolError" in span.error and "bytes of the answer" in span.error
    )


def test_a_stream_the_caller_stops_reading_is_marked_cut_short(sqlite_ws, endpoint):
    import openai

    mlo.llm.autolog()
    client = openai.OpenAI(base_url=endpoint.url, api_key="x")
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
    )
    next(iter(stream))
    stream.close()
    _, (span,) = _span()
    assert span.status == "error" and "closed by the caller" in span.error


def test_the_rate_limiter_paces_calls(sqlite_ws, endpoint):
    from mlo.llm.limits import RateLimiter, set_rate_limit

    set_rate_limit("*", 600, burst=1)  # one every 0.1 s
    t0 = time.monotonic()
    for i in range(4):
        mlo.llm.chat(f"n{i}", model="m", base_url=endpoint.url)
    assert time.monotonic() - t0 >= 0.29  # the first goes at once, each next one 0.1 s after the one before
    waits = [get_trace(t).spans[0].attributes["mlo.rate_limit_wait_s"] for t in mlo.traces().trace_id]
    assert waits[-1] == 0.0 and all(w > 0 for w in waits[:-1])
    with pytest.raises(mlo.InvalidInput, match="requests_per_minute"):
        RateLimiter(0)


def test_chat_refuses_bad_input_in_one_line(sqlite_ws, endpoint):
    with pytest.raises(mlo.InvalidInput, match="no model"):
        mlo.llm.chat("hi", base_url=endpoint.url)
    with pytest.raises(mlo.InvalidInput, match="no endpoint"):
        mlo.llm.chat("hi", model="m")
    with pytest.raises(mlo.InvalidInput, match="messages must be"):
        mlo.llm.chat(5, model="m", base_url=endpoint.url)
    with pytest.raises(mlo.InvalidInput, match=r"messages\[0\]"):
        mlo.llm.chat([{"content": "no role"}], model="m", base_url=endpoint.url)
    with pytest.raises(mlo.InvalidInput, match="errors must be"):
        mlo.llm.chat("hi", model="m", base_url=endpoint.url, errors="ignore")
    assert mlo.traces().empty  # nothing was sent


def test_settings_come_from_mlo_toml(sqlite_ws, endpoint):
    (sqlite_ws.home / "mlo.toml").write_text(
        f'[llm]\nbase_url = "{endpoint.url}"\nmodel = "gpt-4o-mini"\nretries = 0\n'
    )
    from mlo import workspace

    workspace.reset_cache()
    assert mlo.llm.chat("configured").text == "echo: configured"
    (sqlite_ws.home / "mlo.toml").write_text("[llm]\nretry = 1\n")
    workspace.reset_cache()
    with pytest.raises(mlo.InvalidInput, match="unknown key 'retry' in \\[llm\\] — did you mean 'retries'"):
        workspace.current().config  # noqa: B018
