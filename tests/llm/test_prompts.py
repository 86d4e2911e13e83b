"""Prompts as versioned registry artifacts: versions, aliases, promotion, audit, rendering, diffs, magics."""

from __future__ import annotations

import pytest

import mlo
from mlo.llm import get_trace

SUPPORT = """[system]
You answer questions about {{ product }} in one sentence.
[user]
{{ question }}"""


def test_register_version_alias_load_and_render(sqlite_ws):
    p1 = mlo.prompts.register("support", SUPPORT, model="gpt-4o-mini", params={"temperature": 0})
    assert (p1.ref, p1.variables, p1.model, p1.params) == (
        "support/1",
        ["product", "question"],
        "gpt-4o-mini",
        {"temperature": 0},
    )
    assert (
        mlo.prompts.register("support", SUPPORT, model="gpt-4o-mini", params={"temperature": 0}).version == 1
    )
    p2 = mlo.prompts.register(
        "support", SUPPORT.replace("one sentence", "two sentences"), model="gpt-4o-mini"
    )
    assert p2.version == 2
    mlo.set_alias("support", "production", 1)
    assert mlo.load_prompt("support@production").ref == "support/1"
    assert mlo.load_prompt("support").ref == "support/2" == mlo.load_prompt("prompts:/support@latest").ref
    assert p1.messages(product="tea", question="Is it hot?") == [
        {"role": "system", "content": "You answer questions about tea in one sentence."},
        {"role": "user", "content": "Is it hot?"},
    ]
    assert mlo.load_prompt("support/1").render(product="tea", question="?").startswith("[system]\nYou answer")
    events = mlo.audit("support")
    assert events.action.tolist() == ["register", "register", "set_alias"]
    assert mlo.prompts.versions().version.tolist() == [2, 1] and "support" not in set(mlo.models().name)


def test_render_checks_its_variables(sqlite_ws):
    p = mlo.prompts.register("greet", "Hello {{ name }}, from {{ place }}")
    with pytest.raises(mlo.InvalidInput, match=r"needs place: render\(place=…\)"):
        p.render(name="Ana")
    with pytest.raises(mlo.InvalidInput, match="has no variable 'nmae' — did you mean 'name'"):
        p.render(nmae="Ana", place="Porto")
    assert p.render(name="Ana", place="Porto") == "Hello Ana, from Porto"


def test_diff_between_versions_and_aliases(sqlite_ws):
    mlo.prompts.register("s", "Answer {{ q }} briefly.", model="a", params={"temperature": 0})
    mlo.prompts.register(
        "s", "Answer {{ q }} in detail about {{ topic }}.", model="b", params={"temperature": 0.7}
    )
    mlo.set_alias("s", "staging", 2)
    d = mlo.prompts.diff("s/1", "s@staging")
    assert (
        "-Answer {{ q }} briefly." in d.template
        and "+Answer {{ q }} in detail about {{ topic }}." in d.template
    )
    assert d.variables == {"added": ["topic"], "removed": []}
    assert d.settings == [("model", "a", "b"), ("temperature", 0, 0.7)]
    html = d._repr_html_()
    assert "class='a'" in html and "class='r'" in html
    assert mlo.prompts.diff("s/2", "s@staging").same


def test_promotion_and_policies_are_the_registry_s(sqlite_ws):
    mlo.prompts.register("s", "Hi {{ x }}")
    mlo.set_policy("production", validation=True, model="s")
    with pytest.raises(mlo.GateFailed, match="cannot promote s/1 to 'production'"):
        mlo.promote("s", 1, "production")
    with pytest.raises(mlo.GateFailed, match="needs evidence"):
        mlo.prompts.register("s", "Hi {{ x }}!", alias="production")
    mlo.promote("s", 1, "production", force=True, reason="hotfix")
    assert mlo.load_prompt("s@production").version == 1
    assert mlo.audit("s").forced.tolist()[-1]


def test_prompts_and_models_do_not_share_a_name(sqlite_ws):
    mlo.register_model(lambda x: x, "shared")
    with pytest.raises(mlo.InvalidInput, match="'shared' is a registered model, not a prompt"):
        mlo.prompts.register("shared", "Hi")
    mlo.prompts.register("words", "Hi")
    with pytest.raises(mlo.InvalidInput, match="'words' is a registered prompt"):
        mlo.register_model(lambda x: x, "words")
    with pytest.raises(mlo.InvalidInput, match="is a prompt, not a model"):
        mlo.load_model("words/1")
    with pytest.raises(mlo.InvalidInput, match="is a model, not a prompt"):
        mlo.load_prompt("shared/1")


def test_the_prompt_version_is_recorded_on_every_trace_that_used_it(sqlite_ws, endpoint):
    import openai

    p = mlo.prompts.register("support", SUPPORT, model="gpt-4o-mini")
    r = mlo.llm.chat(
        prompt="support/1", variables={"product": "tea", "question": "Hot?"}, base_url=endpoint.url
    )
    assert r.prompt == "support/1" and endpoint.requests[-1]["body"]["model"] == "gpt-4o-mini"
    mlo.llm.autolog()  # a call of the user's own client, sending a rendered prompt
    client = openai.OpenAI(base_url=endpoint.url, api_key="x")
    client.chat.completions.create(model="m", messages=p.messages(product="tea", question="Cold?"))
    df = mlo.traces()
    assert df.prompts.tolist() == ["support/1", "support/1"]
    assert get_trace(df.trace_id[0]).spans[0].prompt == "support/1"
    assert mlo.llm.costs("prompt").prompt.tolist() == ["support/1"]


def test_the_prompt_cell_magic_versions_a_cell_when_it_changes(shell, capsys):
    shell.run(
        "%%mlo prompt support --model gpt-4o-mini --param temperature=0\nAnswer {{ question }} briefly."
    )
    shell.run(
        "%%mlo prompt support --model gpt-4o-mini --param temperature=0\nAnswer {{ question }} briefly."
    )
    shell.run(
        "%%mlo prompt support --model gpt-4o-mini --param temperature=0\nAnswer {{ question }} in detail."
    )
    out = capsys.readouterr().out
    assert (
        "registered prompt support/1" in out
        and "support/1 unchanged" in out
        and "registered prompt support/2" in out
    )
    assert mlo.load_prompt("support").params == {"temperature": 0}
    d = shell.run("%mlo prompts diff support/1 support/2")
    assert "+Answer {{ question }} in detail." in str(d)
    assert shell.run("%mlo prompts").version.tolist() == [2, 1]
    err = shell.fails("%%mlo prompt support\n   ")
    assert "needs a cell body" in str(err)
    err = shell.fails("%mlo prompts diff support/1")
    assert "%mlo prompts diff OLD NEW" in str(err)
