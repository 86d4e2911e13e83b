"""``/mlo/api/evals`` and ``/mlo/api/evals/compare`` through a real jupyter_server: the list of LLM evaluations
and two of them compared, and one-line errors for what a stranger sends."""

from __future__ import annotations

import json

import pytest
import tornado

import mlo

pytest_plugins = ["pytest_jupyter.jupyter_server"]

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def jp_server_config(jp_server_config):
    return {"ServerApp": {"jpserver_extensions": {"mlo": True}}}


@pytest.fixture
def evals(sqlite_ws):
    data = [
        {"q": "Paris", "expected": "Paris"},
        {"q": "Rome", "expected": "Answer"},
        {"q": HOSTILE, "expected": "x" * 5000},
    ]

    def v1(q):
        return q

    def v2(q):
        return f"Answer: {q}"

    a = mlo.llm.evaluate(v1, data, ["contains"])
    b = mlo.llm.evaluate(v2, data, ["contains", "similarity"])
    other = mlo.llm.evaluate(v1, data[:2], ["contains"])
    return a, b, other


async def get(jp_fetch, *parts, **params):
    response = await jp_fetch("mlo", "api", *parts, params=params)
    return json.loads(response.body)


async def test_evaluations_are_listed_and_compared(jp_fetch, evals):
    a, b, other = evals
    page = await get(jp_fetch, "evals")
    assert page["total"] == 3 and [e["id"] for e in page["evals"]] == [other.id, b.id, a.id]
    first = page["evals"][1]
    assert (
        first["app"].endswith("v2")
        and first["rows"] == 3
        and first["means"]["contains"] == pytest.approx(2 / 3)
    )
    cmp = await get(jp_fetch, "evals", "compare", a=a.id[:12], b=b.id)
    assert (
        cmp["a"]["label"].endswith("v1")
        and cmp["b"]["label"].endswith("v2")
        and list(cmp["scorers"]) == ["contains"]
    )
    s = cmp["scorers"]["contains"]
    assert (s["a"], s["b"], s["delta"], s["rows"]) == (
        pytest.approx(1 / 3),
        pytest.approx(2 / 3),
        pytest.approx(1 / 3),
        3,
    )
    assert cmp["examples"][0]["index"] == 1 and cmp["examples"][0]["scores"]["contains"]["delta"] == 1.0
    assert [e["scores"]["contains"]["delta"] for e in cmp["examples"][1:]] == [0.0, 0.0]
    hostile = next(e for e in cmp["examples"] if e["index"] == 2)
    assert hostile["inputs"]["q"] == HOSTILE and len(hostile["expected"]) == 2000  # long text is cut


async def test_what_a_stranger_sends_is_one_line(jp_fetch, evals):
    a, _, other = evals
    for params in ({}, {"a": a.id}, {"a": "%", "b": a.id}, {"a": a.id, "b": "x' or 1=1"}):
        with pytest.raises(tornado.httpclient.HTTPClientError) as err:
            await jp_fetch("mlo", "api", "evals", "compare", params=params)
        assert err.value.code == 400 and "two evaluation ids" in json.loads(err.value.response.body)["error"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as err:
        await jp_fetch("mlo", "api", "evals", "compare", params={"a": a.id, "b": other.id})
    assert err.value.code == 400 and "different data" in json.loads(err.value.response.body)["error"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as err:
        await jp_fetch("mlo", "api", "evals", "compare", params={"a": a.id, "b": "zzzzzzzzzzzz"})
    assert err.value.code == 404
    with pytest.raises(tornado.httpclient.HTTPClientError) as err:
        await jp_fetch("mlo", "api", "evals", params={"limit": "lots"})
    assert err.value.code == 400
