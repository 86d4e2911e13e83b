"""mlo.llm.evaluate: apps over datasets, failures as rows, intervals, stored reports, gates, the promotion policy,
resumption after SIGKILL, rate limits, the %mlo eval magic and the real local model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import mlo
from mlo.llm import checks, scorers

QA = "[system]\nRepeat the word.\n[user]\n{{ word }}"
DATA = pd.DataFrame(
    {"word": ["tea", "coffee", "milk", "water"], "expected": ["tea", "cocoa", "milk", "water"]}
)


def test_a_prompt_evaluated_on_the_fake_endpoint_keeps_its_report(ws, endpoint):
    mlo.prompts.register("qa", QA, model="gpt-4o-mini", params={"temperature": 0})
    mlo.snapshot(DATA, "words")
    endpoint.fail("500")  # the first row fails for good (no retries), the rest answer
    rep = mlo.llm.evaluate(
        "qa@latest",
        "words",
        [scorers.contains(), scorers.exact(), "no_pii"],
        base_url=endpoint.url,
        retries=0,
    )
    assert rep.subject == "model:qa/1" and rep.data["ref"] == "snapshot:words@1" and rep.n == 4
    assert rep.aggregates["failed"] == 1 and rep.aggregates["failure_rate"] == 0.25
    failed = rep.rows[0]
    assert failed["error"].startswith("the LLM call") and failed["scores"] == {} and failed["output"] is None
    # the failed row is explicit, and left out of the means: contains is 2 of the 3 answered rows
    assert rep.mean("contains") == pytest.approx(2 / 3) and rep.aggregates["contains"]["n"] == 3
    lo, hi = rep.ci("contains")
    assert 0.0 <= lo <= rep.mean("contains") <= hi <= 1.0
    assert rep.rows[1]["output"] == "echo: coffee" and rep.rows[1]["input_tokens"] > 0
    assert rep.aggregates["cost_usd"] > 0 and rep.rows[1]["trace_id"]
    assert mlo.llm.get_trace(rep.rows[1]["trace_id"]).spans[0].name == "eval qa/1"
    # stored: the report, its run with the headline metrics, lineage to the prompt version and the snapshot
    stored = mlo.llm.EvalReport.load(rep.id[:12])
    assert (
        stored.to_dict()["rows"] == rep.to_dict()["rows"] and stored.scorer("exact")["version"] == "exact@1"
    )
    run = mlo.get_run(rep.run_id)
    assert run.name == "eval qa/1" and run.status == "finished"
    assert run.metrics["eval.contains"] == pytest.approx(2 / 3) and run.metrics["eval.failure_rate"] == 0.25
    assert mlo.llm.evaluations("qa").id.tolist() == [rep.id]
    assert not os.listdir(ws.home / "evals")  # the checkpoint is gone once the report is kept
    # the notebook view: the failure first, then the worst scores
    html = rep._repr_html_()
    assert html.index("error: the LLM call") < html.index("echo: coffee") < html.index("echo: milk")
    assert [r["index"] for r in rep.worst()][:2] == [0, 1]
    frame = rep.to_frame()
    assert frame["contains"].tolist()[1:] == [0.0, 1.0, 1.0] and pd.isna(frame["contains"][0])


def test_functions_repeats_and_custom_scorers(sqlite_ws):
    calls = []

    def app(word):
        calls.append(word)
        return {"answer": word.upper() if len(calls) % 2 else word}  # noisy across repeats

    @scorers.scorer(name="upper")
    def upper(output):
        return json.loads(output)["answer"].isupper()

    rep = mlo.llm.evaluate(app, DATA, [upper, scorers.json_schema({"type": "object"})], repeats=4)
    assert len(calls) == 16 and rep.mean("upper") == 0.5 and rep.mean("json_schema") == 1.0
    lo, hi = rep.ci("upper")
    assert lo <= 0.5 <= hi and hi - lo > 0  # the repeats' spread widens the interval
    assert rep.app["kind"] == "function" and rep.subject is None
    assert rep.scorer("upper")["version"].startswith("custom@")
    with pytest.raises(mlo.InvalidInput, match="no column 'question'"):
        mlo.llm.evaluate(app, DATA, ["exact"], inputs=["question"])
    with pytest.raises(mlo.InvalidInput, match="repeats must be"):
        mlo.llm.evaluate(app, DATA, ["exact"], repeats=0)
    with pytest.raises(mlo.InvalidInput, match="data must be a DataFrame"):
        mlo.llm.evaluate(app, "a string is no frame".split(), ["exact"])
    with pytest.raises(mlo.InvalidInput, match="app must be"):
        mlo.llm.evaluate(42, DATA, ["exact"])


def test_an_app_that_raises_is_a_failed_row_and_calls_are_paced(sqlite_ws):
    def app(word):
        if word == "milk":
            raise RuntimeError("no milk today")
        return word

    rows = pd.concat([DATA] * 3, ignore_index=True)
    rep = mlo.llm.evaluate(app, rows, ["exact"], requests_per_minute=600)  # bursts of 10, then 10 a second
    assert rep.aggregates["failed"] == 3 and rep.rows[2]["error"] == "RuntimeError: no milk today"
    assert rep.timing["rate_limit_wait_s"] > 0


def test_gates_fail_the_report_and_the_promotion_policy_requires_a_passed_eval(sqlite_ws, endpoint):
    mlo.prompts.register("qa", QA, model="gpt-4o-mini", params={"temperature": 0})
    mlo.set_alias("qa", "production", 1)
    mlo.prompts.register("qa", "[system]\nSay something else.\n[user]\nnothing", model="gpt-4o-mini")
    mlo.set_policy("production", eval={"max_age_days": 7})
    with pytest.raises(
        mlo.MloError, match=r"a passed evaluation of qa/2 no older than 7 days \(none found\)"
    ):
        mlo.promote("qa", 2, "production")

    rep = mlo.llm.evaluate(
        "qa/2",
        DATA,
        ["contains"],
        base_url=endpoint.url,
        inputs=[],
        checks=[checks.threshold("contains", 0.5), checks.no_regression("qa@production")],
    )
    assert not rep.passed and [c.name for c in rep.failures] == ["contains", "no_regression.contains"]
    reg = rep.checks[1]
    assert reg.data["baseline"] == "qa/1" and reg.data["baseline_mean"] == 0.75 and reg.value == -0.75
    baseline = mlo.llm.EvalReport.load(reg.data["baseline_report"])
    assert baseline.subject == "model:qa/1" and baseline.mean("contains") == 0.75
    with pytest.raises(mlo.GateFailed, match=r"evaluation of qa/2 failed 2 of 2 checks: contains: 0 ≥ 0.5"):
        rep.raise_for_failures()
    with pytest.raises(mlo.MloError, match="the latest, report .* failed"):
        mlo.promote("qa", 2, "production")

    # the baseline's stored report is reused, not run again; a passing version may be promoted
    mlo.prompts.register("qa", QA.replace("Repeat", "Echo"), model="gpt-4o-mini", params={"temperature": 0})
    before = len(endpoint.requests)
    ok = mlo.llm.evaluate(
        "qa/3",
        DATA,
        ["contains"],
        base_url=endpoint.url,
        checks=[checks.threshold("contains", 0.5), checks.no_regression("qa@production")],
    )
    assert ok.passed and len(endpoint.requests) - before == 4 and ok.checks[1].value == 0.0
    mlo.promote("qa", 3, "production")
    # the compare view: the two versions side by side, per-example deltas largest first
    cmp = mlo.llm.compare_evals(rep, ok.id)
    assert cmp.scorers["contains"]["delta"] == 0.75 and cmp.scorers["contains"]["rows"] == 4
    frame = cmp.to_frame()
    assert frame["contains.delta"].tolist() == [1.0, 1.0, 1.0, 0.0] and frame["index"].tolist()[-1] == 1
    assert frame["output_a"].iloc[0] == "echo: nothing" and "qa/2 → qa/3" in cmp._repr_html_()
    with pytest.raises(mlo.InvalidInput, match="different data"):
        mlo.llm.compare_evals(rep, mlo.llm.evaluate(lambda word: word, DATA.head(2), ["contains"]))
    assert mlo.load_prompt("qa@production").ref == "qa/3"
    with pytest.raises(mlo.InvalidInput, match="threshold 'exact' needs a bound"):
        checks.threshold("exact")
    with pytest.raises(mlo.InvalidInput, match="checks= takes a list"):
        mlo.llm.evaluate(lambda word: word, DATA, ["exact"], checks=[0.8])


def test_a_judge_scores_from_a_versioned_prompt_and_reports_its_agreement_with_humans(sqlite_ws, endpoint):
    # the fake endpoint echoes its last user message: a grader whose user message is the output echoes a verdict
    mlo.prompts.register("grader", "[system]\nGrade it.\n[user]\n{{ output }}", model="gpt-4o-mini")
    j = scorers.judge(prompt="grader@latest", base_url=endpoint.url, labels="human")
    assert j.version == "judge@grader/1:gpt-4o-mini"
    verdicts = ["pass", "pass", "fail", "fail", "pass", "fail", "maybe"]
    human = ["pass", "pass", "fail", "pass", "fail", "fail", "pass"]
    data = [{"v": v, "human": h} for v, h in zip(verdicts, human, strict=True)]

    def app(v):
        return json.dumps({"score": v, "reason": f"it is {v}"})

    rep = mlo.llm.evaluate(app, data, [j], checks=[checks.threshold("judge", 0.5, on="kappa")])
    assert rep.app["inputs"] == ["v"]  # the label column is not an input
    agg = rep.aggregates["judge"]
    # 6 judged rows with labels, 4 agree; 3 pass and 3 fail on each side: chance agreement 0.5, kappa 1/3
    assert (agg["labelled"], agg["agreement"], agg["kappa"]) == (
        6,
        pytest.approx(4 / 6),
        pytest.approx(1 / 3),
    )
    assert rep.rows[0]["reasons"]["judge"] == "it is pass" and rep.rows[6]["scores"]["judge"] is None
    assert "not on the scale" in rep.rows[6]["reasons"]["judge"]
    assert not rep.passed and rep.checks[0].value == pytest.approx(1 / 3)
    # the judge's calls are priced into each row's cost, and shown apart too
    r0 = rep.rows[0]
    assert r0["judge_input_tokens"] > 0 and r0["judge_output_tokens"] > 0 and r0["judge_cost_usd"] > 0
    assert r0["cost_usd"] == r0["judge_cost_usd"] and r0["app_cost_usd"] is None  # the app made no call
    assert rep.aggregates["judge_cost_usd"] == pytest.approx(sum(r["judge_cost_usd"] for r in rep.rows))
    assert rep.aggregates["cost_usd"] == pytest.approx(rep.aggregates["judge_cost_usd"])
    assert "(judge " in rep._repr_html_() and "judge_cost_usd" in rep.to_frame()
    stored = mlo.llm.EvalReport.load(rep.id)
    assert stored.rows[0]["judge_cost_usd"] == r0["judge_cost_usd"]
    # a prompt app pays for its own call as well: the row's cost is the sum of both
    mlo.prompts.register("asker", "[user]\n{{ v }}", model="gpt-4o-mini")
    both = mlo.llm.evaluate("asker@latest", data[:1], [j], base_url=endpoint.url)
    b0 = both.rows[0]
    assert b0["app_cost_usd"] > 0 and b0["cost_usd"] == pytest.approx(
        b0["app_cost_usd"] + b0["judge_cost_usd"]
    )
    sent = endpoint.requests[-1]["body"]
    assert sent["temperature"] == 0 and sent["response_format"]["json_schema"]["schema"]["required"] == [
        "score",
        "reason",
    ]
    # criteria make a judge prompt of their own, versioned with them
    a = scorers.judge("The answer names the right city.", base_url=endpoint.url, model="gpt-4o-mini")
    b = scorers.judge("The answer names the right city.", base_url=endpoint.url, model="gpt-4o-mini")
    c = scorers.judge("The answer is polite.", base_url=endpoint.url, model="gpt-4o-mini")
    assert a.version == b.version == "judge@judge/1:gpt-4o-mini" and c.version == "judge@judge/2:gpt-4o-mini"
    assert "right city" in mlo.load_prompt("judge/1").template
    with pytest.raises(mlo.InvalidInput, match="judge needs criteria"):
        scorers.judge()
    with pytest.raises(mlo.InvalidInput, match="scale must be"):
        scorers.judge("ok", scale=(5, 1))


def _child(code: str, tmp_path, **env_vars) -> subprocess.Popen:
    env = {**os.environ, "MLO_HOME": str(tmp_path / ".mlo"), **env_vars}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


EVAL_IN_CHILD = """
    import os, time, mlo
    import pandas as pd

    def app(n):
        with open("calls.txt", "a") as f:
            f.write(f"{n}\\n")
        if n >= int(os.environ["SLOW_FROM"]):
            print("slow", flush=True)
            time.sleep(60)
        return str(n * 2)

    rows = pd.DataFrame({"n": range(8), "expected": [str(i * 2) for i in range(8)]})
    rep = mlo.llm.evaluate(app, rows, ["exact"])
    print(rep.id, rep.timing["resumed_rows"], rep.mean("exact"), flush=True)
"""


def test_an_evaluation_killed_half_way_resumes_at_the_first_row_not_done(sqlite_ws, tmp_path):
    first = _child(EVAL_IN_CHILD, tmp_path, SLOW_FROM="5")
    assert first.stdout.readline().strip() == "slow"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    (ckpt,) = (tmp_path / ".mlo" / "evals").iterdir()
    with open(ckpt, "a") as f:
        f.write('{"index": 5, "rep')  # a line torn by the kill
    second = _child(EVAL_IN_CHILD, tmp_path, SLOW_FROM="99")
    out, _ = second.communicate(timeout=120)
    report_id, resumed, mean = out.split()
    assert (int(resumed), float(mean)) == (5, 1.0)
    assert (tmp_path / "calls.txt").read_text().split() == ["0", "1", "2", "3", "4", "5", "5", "6", "7"]
    rep = mlo.llm.EvalReport.load(report_id)
    assert [r["index"] for r in rep.rows] == list(range(8)) and not ckpt.exists()
    runs = mlo.runs()
    assert sorted(runs.status) == ["finished", "killed"] or sorted(runs.status) == ["finished", "running"]


def test_the_eval_magic(shell, endpoint, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.url)
    shell.run(
        'import pandas as pd\nrows = pd.DataFrame({"word": ["tea", "milk"], "expected": ["tea", "oat"]})'
    )
    shell.run("%%mlo prompt qa --model gpt-4o-mini\n[user]\n{{ word }}")
    rep = shell.run("%mlo eval qa rows --scorer contains --scorer no_pii --min contains=0.4")
    assert rep.passed and rep.mean("contains") == 0.5
    err = shell.fails("%mlo eval qa rows --scorer contains --min contains=0.9 --gate")
    assert isinstance(err, mlo.GateFailed) and "contains: 0.5 ≥ 0.9" in str(
        err
    )  # a papermill stage sees the gate
    assert "needs at least one --scorer" in str(shell.fails("%mlo eval qa rows"))
    assert "unknown scorer 'exakt'" in str(shell.fails("%mlo eval qa rows --scorer exakt"))


def test_two_prompt_versions_on_the_real_local_model(sqlite_ws, smollm):
    """Few real calls: two versions, two rows each, greedy decoding."""
    rows = [
        {"q": "What is the capital of France?", "expected": "Paris"},
        {"q": "What color is the sky on a clear day?", "expected": "blue"},
    ]
    mlo.prompts.register(
        "geo", "[user]\n{{ q }}", model=smollm.model, params={"temperature": 0, "max_tokens": 24}
    )
    mlo.set_alias("geo", "production", 1)
    mlo.prompts.register(
        "geo",
        "[system]\nAnswer in one word.\n[user]\n{{ q }}",
        model=smollm.model,
        params={"temperature": 0, "max_tokens": 24},
    )
    judge = scorers.judge(
        "The answer is correct.", model=smollm.model, base_url=smollm.base_url, max_tokens=60
    )
    rep = mlo.llm.evaluate(
        "geo/2",
        rows,
        ["contains", "refusal", judge],
        base_url=smollm.base_url,
        checks=[checks.no_regression("geo@production", tolerance=1.0)],
    )
    assert rep.aggregates["failed"] == 0 and all(r["output"] for r in rep.rows)
    assert rep.aggregates["output_tokens"] > 0 and rep.passed
    verdicts = [r["scores"]["judge"] for r in rep.rows]  # the schema makes even a small model answer JSON
    assert all(v in (0.0, 1.0) for v in verdicts), [r["reasons"] for r in rep.rows]
    assert len(mlo.llm.evaluations("geo")) == 2  # the candidate and the baseline it was compared with


EVAL_STAGE = """
import mlo
from mlo.llm import checks

def app(word):
    return "tea" if word == "tea" else "no idea"

rows = [{"word": w, "expected": w} for w in ("tea", "milk", "water", "cocoa")]
report = mlo.llm.evaluate(app, rows, ["exact"], checks=[checks.threshold("exact", min_exact)])
report.raise_for_failures()
"""


def test_an_eval_stage_fails_the_pipeline_with_exit_1(sqlite_ws, tmp_path):
    import nbformat
    from click.testing import CliRunner

    from mlo.cli import main

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("min_exact = 0.2")
    params.metadata["tags"] = ["parameters"]
    nb.cells += [params, nbformat.v4.new_code_cell(EVAL_STAGE.strip())]
    nbformat.write(nb, tmp_path / "eval.ipynb")
    (tmp_path / "pipeline.yaml").write_text("stages:\n  eval: {notebook: eval.ipynb}\n")
    r = CliRunner().invoke(main, ["pipeline", "run", "pipeline.yaml", "--param", "eval.min_exact=0.5"])
    assert r.exit_code == 1, r.output
    assert "exact: 0.25 ≥ 0.5" in r.output
    (stored,) = mlo.llm.evaluations().to_dict("records")
    assert stored["passed"] is False or stored["passed"] == 0
    r = CliRunner().invoke(main, ["pipeline", "run", "pipeline.yaml"])  # the notebook's own bound: 0.2
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["llm", "evals", "--format", "json"])
    assert r.exit_code == 0 and [e["passed"] for e in json.loads(r.output)] == [True, False]


def test_an_endpoint_url_is_an_app(sqlite_ws, endpoint):
    rows = [{"question": "tea", "expected": "tea"}, {"question": "milk", "expected": "oat"}]
    rep = mlo.llm.evaluate(endpoint.url, rows, ["contains"], model="gpt-4o-mini")
    assert rep.app == {**rep.app, "kind": "endpoint", "url": endpoint.url} and rep.mean("contains") == 0.5
    assert endpoint.requests[-1]["body"]["messages"] == [{"role": "user", "content": "milk"}]
    with pytest.raises(mlo.InvalidInput, match="sends one input column"):
        mlo.llm.evaluate(endpoint.url, DATA.assign(extra=1), ["contains"], model="gpt-4o-mini")
