"""LLM traces in JupyterLab, in Debian's chromium: the panel's Traces section, a trace's tab with its span tree,
and the Traces section of the run that made them, against a real ``jupyter lab`` on a workspace whose traces
were recorded through mlo's fake OpenAI-compatible endpoint (fixtures in this folder's conftest.py)."""

from __future__ import annotations

import re
import textwrap

from screenshots import docs_screenshot

try:
    from playwright.sync_api import expect
except ImportError:  # the `lab` fixture skips (or, in strict mode, fails) with the reason
    expect = None

SHOT = "lab-trace.png"
HOSTILE = "<img src=x onerror=document.title='owned'>"

LAB_SEED = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import mlo
    from mlo.llm import FakeEndpoint, chat

    Path("mlo.toml").write_text(
        '[llm.prices."fake-model"]\\ninput = 1.0\\noutput = 4.0\\neffective = 2025-01-01\\n'
    )
    mlo.init(".")
    ids = {}
    for i in range(24):
        with mlo.trace(f"batch-{i:02d}", kind="chain") as s:
            s.set_outputs(i)
    with FakeEndpoint() as ep, mlo.start_run("rag-eval", experiment="llm") as run:
        with mlo.trace("answer", kind="chain") as root:
            root.set_inputs({"question": "What is the capital of France?"})
            with mlo.trace("retrieve", kind="retrieval") as r:
                r.set_outputs(["Paris is the capital of France."])
            reply = chat("What is the capital of France?", model="fake-model", base_url=ep.url, api_key="x")
            root.set_outputs(reply.text)
            ids["answer"] = root.trace_id
    ids["run"] = run.id
    try:
        with mlo.trace(HOSTILE, kind="tool") as bad:
            ids["broken"] = bad.trace_id
            raise ValueError("the tool got <b>no</b> input")
    except ValueError:
        pass
    json.dump(ids, sys.stdout)
    """
).replace("HOSTILE", repr(HOSTILE))


def open_traces(page, lab, workspace: str):
    """Load JupyterLab, open the MLO sidebar tab and wait for the Traces section to list traces."""
    page.goto(lab.page_url(workspace))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="mlo-panel"]')
    expect(tab).to_be_visible(timeout=45_000)
    panel = page.locator("#mlo-panel")
    if not panel.is_visible():
        tab.click()
    section = panel.locator('.mlo-section[data-section="traces"]')
    expect(section.locator(".mlo-trace").first).to_be_visible()
    return section


def test_traces_section_lists_the_newest_first_and_pages(page, lab):
    section = open_traces(page, lab, "traces-list")
    rows = section.locator(".mlo-trace")
    expect(rows).to_have_count(20)
    names = section.locator(".mlo-trace-name")
    expect(names.nth(0)).to_have_text(HOSTILE)  # as text: the name is never markup
    expect(names.nth(1)).to_have_text("answer")
    expect(names.nth(2)).to_have_text("batch-23")
    broken = section.locator(f'.mlo-trace[data-trace-id="{lab.runs["broken"]}"]')
    expect(broken.locator(".mlo-status")).to_have_text("error")
    answer = section.locator(f'.mlo-trace[data-trace-id="{lab.runs["answer"]}"]')
    expect(answer.locator(".mlo-status")).to_have_text("ok")
    expect(answer.locator(".mlo-trace-figures")).to_have_text(re.compile(r"^\$0\.0000\d+ · [\d.]+ (ms|s)$"))
    assert "1 LLM call" in answer.locator(".mlo-trace-name").get_attribute("title")
    more = section.locator(".mlo-traces-more")
    expect(more).to_have_text("more (20 of 26 shown)")
    more.click()
    expect(rows).to_have_count(26)
    expect(names.last).to_have_text("batch-00")
    expect(more).to_have_count(0)
    assert page.locator("#mlo-panel img").count() == 0 and page.title() != "owned"


def test_a_trace_tab_shows_the_span_tree_with_tokens_cost_and_contents(page, lab):
    section = open_traces(page, lab, "trace-tab")
    trace_id = lab.runs["answer"]
    section.locator(f'.mlo-trace-name[data-trace-id="{trace_id}"]').click()
    view = page.locator(f'.mlo-trace-view[data-trace-id="{trace_id}"]')
    expect(view.locator(".mlo-run-title")).to_have_text("answer")
    header = view.locator(".mlo-trace-header")
    expect(header.locator('tr[data-field="status"] td')).to_have_text("ok")
    expect(header.locator('tr[data-field="spans"] td')).to_have_text("3")
    expect(header.locator('tr[data-field="tokens"] td')).to_have_text(re.compile(r"^\d+ in · \d+ out$"))
    expect(header.locator('tr[data-field="cost"] td')).to_have_text(re.compile(r"^\$0\.0000\d+$"))

    root = view.locator(".mlo-spans > .mlo-span")
    expect(root).to_have_count(1)
    expect(root).to_have_attribute("open", "")
    expect(root.locator(":scope > .mlo-span-body > .mlo-span-io[data-io='input'] pre")).to_have_text(
        re.compile(r'"question": "What is the capital of France\?"')
    )
    children = root.locator(":scope > .mlo-span-body > .mlo-span")
    expect(children).to_have_count(2)
    expect(children.locator(":scope > summary .mlo-span-kind")).to_have_text(["retrieval", "llm"])
    call = children.nth(1)
    expect(call.locator(":scope > summary .mlo-span-model")).to_have_text("fake-model")
    expect(call.locator(":scope > summary .mlo-span-tokens")).to_have_text(re.compile(r"^\d+ in · \d+ out$"))
    expect(call.locator(":scope > summary .mlo-span-cost")).to_have_text(re.compile(r"^\$0\.0000\d+$"))
    body = call.locator(":scope > .mlo-span-body")
    expect(body).to_be_hidden()  # deeper spans start folded
    call.locator(":scope > summary").click()
    expect(body.locator("[data-io='input'] pre")).to_have_text(re.compile(r"\[user\] What is the capital"))
    expect(body.locator("[data-io='output'] pre")).to_have_text(re.compile(r"^echo: "))
    expect(body.locator(".mlo-span-attributes summary")).to_have_text(re.compile(r"attributes \(\d+\)"))
    body.locator(".mlo-span-attributes summary").click()
    expect(body.locator('.mlo-span-attributes tr[data-key="gen_ai.request.model"] td')).to_have_text(
        "fake-model"
    )
    bar = call.locator(":scope > summary .mlo-span-bar")
    assert bar.bounding_box()["width"] > 0
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="answer")).to_have_count(1)
    docs_screenshot(page, SHOT)

    # the run that made it opens from the trace's header
    view.locator(".mlo-trace-run").click()
    run_view = page.locator(f'.mlo-run-view[data-run-id="{lab.runs["run"]}"]')
    expect(run_view.locator(".mlo-run-title")).to_have_text("rag-eval")


def test_a_failed_trace_shows_its_error_and_hostile_text_stays_text(page, lab):
    section = open_traces(page, lab, "trace-error")
    trace_id = lab.runs["broken"]
    section.locator(f'.mlo-trace-name[data-trace-id="{trace_id}"]').click()
    view = page.locator(f'.mlo-trace-view[data-trace-id="{trace_id}"]')
    expect(view.locator(".mlo-run-title")).to_have_text(HOSTILE)
    expect(view.locator('.mlo-trace-header tr[data-field="status"] td')).to_have_text("error")
    expect(view.locator(".mlo-trace-error")).to_have_text(
        re.compile(r"ValueError: the tool got <b>no</b> input")
    )
    span = view.locator(".mlo-spans > .mlo-span")
    expect(span).to_have_attribute("data-status", "error")
    expect(span.locator(".mlo-span-error")).to_have_text(re.compile("<b>no</b>"))
    assert view.locator("img, b").count() == 0 and page.title() != "owned"


def test_the_run_tab_lists_the_traces_of_the_run(page, lab):
    open_traces(page, lab, "run-traces")
    page.locator("#mlo-panel .mlo-experiment[data-experiment='llm'] .mlo-experiment-toggle").click()
    page.locator(f'#mlo-panel .mlo-run-name[data-run-id="{lab.runs["run"]}"]').click()
    view = page.locator(f'.mlo-run-view[data-run-id="{lab.runs["run"]}"]')
    section = view.locator('.mlo-run-section[data-section="traces"]')
    expect(section.locator("h2")).to_have_text("Traces (1)")
    row = section.locator(f'.mlo-run-trace[data-trace-id="{lab.runs["answer"]}"]')
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^[\d.]+ (ms|s)$"))  # slow on a loaded machine
    expect(row.locator(".mlo-trace-cost")).to_have_text(re.compile(r"^\$0\.0000\d+$"))
    row.locator(".mlo-trace-name").click()
    expect(
        page.locator(f'.mlo-trace-view[data-trace-id="{lab.runs["answer"]}"] .mlo-run-title')
    ).to_have_text("answer")


def test_the_trace_tab_reads_in_the_dark_theme(page, lab):
    from theme import luminance, set_theme

    set_theme(lab, "JupyterLab Dark")
    try:
        section = open_traces(page, lab, "trace-dark")
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        section.locator(f'.mlo-trace-name[data-trace-id="{lab.runs["answer"]}"]').click()
        view = page.locator(f'.mlo-trace-view[data-trace-id="{lab.runs["answer"]}"]')
        root = view.locator(".mlo-spans > .mlo-span")
        expect(root.locator(":scope > summary .mlo-span-name")).to_have_text("answer")
        style = "n => getComputedStyle(n)"
        background = luminance(page, view.evaluate(f"{style}.backgroundColor"))
        name = luminance(page, root.locator(":scope > summary .mlo-span-name").evaluate(f"{style}.color"))
        pre = root.locator(":scope > .mlo-span-body > .mlo-span-io pre").first
        assert background < 0.3 < name
        assert (
            luminance(page, pre.evaluate(f"{style}.color"))
            > 0.5
            > luminance(page, pre.evaluate(f"{style}.backgroundColor"))
        )
        docs_screenshot(view, "lab-trace-dark.png")
    finally:
        set_theme(lab, "JupyterLab Light")
