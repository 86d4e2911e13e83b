"""LLM evaluations in JupyterLab, in Debian's chromium: the panel's Evaluations section and the tab comparing two
prompt versions (per scorer and per example, the largest changes first), in the light and the dark theme, against
a real ``jupyter lab`` on a workspace whose evaluations ran through mlo's fake OpenAI-compatible endpoint."""

from __future__ import annotations

import re
import textwrap

from screenshots import docs_screenshot

try:
    from playwright.sync_api import expect
except ImportError:  # the `lab` fixture skips (or, in strict mode, fails) with the reason
    expect = None

HOSTILE = "<img src=x onerror=document.title='owned'>"

LAB_SEED = textwrap.dedent(
    """
    import json, sys
    import mlo
    from mlo.llm import FakeEndpoint

    mlo.init(".")
    data = [
        {"q": "Paris", "expected": "Paris"},
        {"q": "Rome", "expected": "Answer"},
        {"q": HOSTILE, "expected": "zzz"},
    ]
    with FakeEndpoint() as ep:
        mlo.prompts.register("qa", "[user]\\n{{ q }}", model="fake-model")
        a = mlo.llm.evaluate("qa/1", data, ["contains"], base_url=ep.url, api_key="x")
        mlo.prompts.register("qa", "[user]\\nAnswer: {{ q }}", model="fake-model")
        b = mlo.llm.evaluate("qa/2", data, ["contains"], base_url=ep.url, api_key="x")
    json.dump({"a": a.id, "b": b.id}, sys.stdout)
    """
).replace("HOSTILE", repr(HOSTILE))


def open_evals(page, lab, workspace: str):
    page.goto(lab.page_url(workspace))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]')
    expect(tab).to_be_visible(timeout=45_000)
    panel = page.locator("#mlo-panel")
    if not panel.is_visible():
        tab.click()
    section = panel.locator('.mlo-section[data-section="evals"]')
    expect(section.locator(".mlo-eval")).to_have_count(2)
    return section


def compare_both(page, lab, section):
    button = section.locator(".mlo-evals-compare")
    expect(button).to_be_disabled()
    # checked newest first: the older evaluation is still the baseline
    section.locator(f'.mlo-eval[data-eval-id="{lab.runs["b"]}"] .mlo-eval-check').check()
    expect(button).to_have_text("Compare (1/2)")
    section.locator(f'.mlo-eval[data-eval-id="{lab.runs["a"]}"] .mlo-eval-check').check()
    expect(button).to_be_enabled()
    button.click()
    view = page.locator(f'.mlo-eval-compare[data-a="{lab.runs["a"]}"][data-b="{lab.runs["b"]}"]')
    expect(view.locator(".mlo-run-title")).to_have_text("qa/1 → qa/2")
    return view


def test_two_prompt_versions_side_by_side_with_per_example_deltas(page, lab):
    section = open_evals(page, lab, "evals")
    names = section.locator(".mlo-eval-name")
    expect(names).to_have_text(["qa/2", "qa/1"])  # newest first
    expect(section.locator(".mlo-eval-figures").first).to_have_text(re.compile(r"3 rows · contains 0\.6667"))
    view = compare_both(page, lab, section)
    row = view.locator('.mlo-eval-scorers tr[data-scorer="contains"] td')
    expect(row).to_have_text(["0.3333", "0.6667", "+0.3333", re.compile(r"^\[.*\]$"), "3"])
    expect(row.nth(2)).to_have_class(re.compile("mlo-delta-up"))
    examples = view.locator(".mlo-eval-example")
    expect(examples).to_have_count(3)
    first = examples.first  # the largest change first: Rome, answered only by v2
    expect(first).to_have_attribute("data-index", "1")
    expect(first.locator('td[data-side="a"]')).to_have_text("echo: Rome")
    expect(first.locator('td[data-side="b"]')).to_have_text("echo: Answer: Rome")
    expect(first.locator('td[data-scorer="contains"]')).to_have_text("+1")
    hostile = view.locator('.mlo-eval-example[data-index="2"] td').nth(1)
    expect(hostile).to_have_text(HOSTILE)  # as text, never markup
    assert view.locator("img").count() == 0 and page.title() != "owned"
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="qa/1 → qa/2")).to_have_count(1)
    docs_screenshot(view, "lab-evals.png")


def test_the_comparison_reads_in_the_dark_theme(page, lab):
    from theme import luminance, set_theme

    set_theme(lab, "JupyterLab Dark")
    try:
        section = open_evals(page, lab, "evals-dark")
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        view = compare_both(page, lab, section)
        style = "n => getComputedStyle(n)"
        background = luminance(page, view.evaluate(f"{style}.backgroundColor"))
        cell = view.locator(".mlo-eval-example").first.locator('td[data-side="b"]')
        expect(cell).to_have_text("echo: Answer: Rome")
        text = luminance(page, cell.evaluate(f"{style}.color"))
        up = view.locator('.mlo-eval-scorers tr[data-scorer="contains"] td').nth(2)
        assert background < 0.3 < text
        assert luminance(page, up.evaluate(f"{style}.color")) > background + 0.15  # the delta's colour shows
        docs_screenshot(view, "lab-evals-dark.png")
    finally:
        set_theme(lab, "JupyterLab Light")
