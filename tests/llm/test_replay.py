"""Record and replay: answers byte-identical to what was received, without contacting the endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import mlo
from mlo.llm import ReplayMiss


def _raw(endpoint_url: str, content: str, stream: bool = False):
    import openai

    client = openai.OpenAI(base_url=endpoint_url, api_key="x", max_retries=0)
    msgs = [{"role": "user", "content": content}]
    if stream:
        return [
            c.model_dump_json() for c in client.chat.completions.create(model="m", messages=msgs, stream=True)
        ]
    return client.chat.completions.with_raw_response.create(model="m", messages=msgs).http_response.content


def test_replay_answers_byte_identical_without_the_endpoint(sqlite_ws, endpoint):
    mlo.llm.autolog()
    with mlo.start_run("record") as run:
        recorded = _raw(endpoint.url, "tea?")
        recorded_stream = _raw(endpoint.url, "stream tea", stream=True)
        reply = mlo.llm.chat("chat tea", model="m", base_url=endpoint.url)
    sent = len(endpoint.requests)
    endpoint.close()  # nothing answers any more
    with mlo.llm.replay(run) as rp:
        assert _raw(endpoint.url, "tea?") == recorded
        assert _raw(endpoint.url, "stream tea", stream=True) == recorded_stream
        again = mlo.llm.chat("chat tea", model="m", base_url=endpoint.url)
        assert again.text == reply.text and again.usage == reply.usage and again.replayed
        with pytest.raises(ReplayMiss, match=r"closest recorded request differs in messages\[0\]\.content"):
            mlo.llm.chat("chat coffee", model="m", base_url=endpoint.url)
    assert rp.answered == 3 and rp.missed == 1
    assert len(endpoint.requests) == sent
    replayed = mlo.traces("replayed = true")
    assert len(replayed) >= 3 and (replayed.status == "ok").sum() == 3


def test_repeated_requests_get_their_answers_in_recorded_order(sqlite_ws, endpoint):
    mlo.llm.autolog()
    first = _raw(endpoint.url, "same")
    second = _raw(endpoint.url, "same")  # the server's prompt cache changes its answer to the same request
    assert first != second
    with mlo.llm.replay():
        assert [_raw(endpoint.url, "same") for _ in range(3)] == [first, second, second]


def test_a_replay_is_scoped_to_its_run_and_those_under_it(sqlite_ws, endpoint):
    mlo.llm.autolog()
    with mlo.start_run("parent") as parent:
        with mlo.start_run("child", nested=True):
            _raw(endpoint.url, "in the child")
    _raw(endpoint.url, "elsewhere")
    with mlo.llm.replay(parent):
        _raw(endpoint.url, "in the child")
        import openai

        with pytest.raises(openai.NotFoundError, match="no recorded answer in run"):
            _raw(endpoint.url, "elsewhere")


def test_a_non_strict_replay_sends_what_it_cannot_answer(sqlite_ws, endpoint):
    mlo.llm.autolog()
    with mlo.llm.replay(strict=False):
        assert b"echo: new" in _raw(endpoint.url, "new")
    with mlo.llm.replay():
        assert b"echo: new" in _raw(endpoint.url, "new")  # recorded by the first replay


def test_mlo_llm_replay_in_the_environment_replays_a_whole_process(sqlite_ws, endpoint, tmp_path):
    code = textwrap.dedent(f"""
        import mlo
        r = mlo.llm.chat("from a script", model="m", base_url={endpoint.url!r}, retries=0)
        print(r.text, r.replayed)
    """)
    env = {**os.environ, "MLO_HOME": str(sqlite_ws.home)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert first.stdout.strip() == "echo: from a script False", first.stderr
    endpoint.close()
    again = subprocess.run([sys.executable, "-c", code], env={**env, "MLO_LLM_REPLAY": "1"},
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert again.stdout.strip() == "echo: from a script True", again.stderr


def test_replay_takes_a_run_or_nothing(sqlite_ws):
    with pytest.raises(mlo.InvalidInput, match="replay takes a run"):
        mlo.llm.replay(5)
    with pytest.raises(mlo.NotFound):
        mlo.llm.replay("nosuchrun")
