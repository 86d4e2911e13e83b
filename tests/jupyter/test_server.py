"""The REST API of the Jupyter server extension, through a real jupyter_server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json

import pytest
import tornado

import mlo

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(jp_server_config):
    return {"ServerApp": {"jpserver_extensions": {"mlo": True}}}


@pytest.fixture
def recorded(sqlite_ws, tmp_path):
    import pandas as pd

    (tmp_path / "notes.txt").write_text("hello")
    with mlo.start_run("a", experiment="shop", params={"C": 1.0}) as a:
        mlo.log_metric("auc", 0.85)
        mlo.log_artifact(tmp_path / "notes.txt")
        mlo.snapshot(pd.DataFrame({"x": [1, 2]}), "train")
    for i in range(5):
        with mlo.start_run(f"b{i}", experiment="shop", params={"C": float(i)}):
            mlo.log_metric("auc", 0.5 + i / 10)
    return a


async def get(jp_fetch, *parts, **params):
    response = await jp_fetch("mlo", "api", *parts, params=params)
    return json.loads(response.body)


async def test_runs_experiments_run_and_artifact(jp_fetch, recorded):
    assert [e["name"] for e in await get(jp_fetch, "experiments")] == ["shop"]
    page = await get(
        jp_fetch, "runs", limit="2", offset="1", order_by="metrics.auc desc", columns="name,metrics.auc"
    )
    assert page["total"] == 6 and [r["name"] for r in page["runs"]] == ["a", "b3"]
    assert set(page["runs"][0]) == {"run_id", "name", "metrics.auc"}
    assert (await get(jp_fetch, "runs", where="params.C >= 3"))["total"] == 2
    run = await get(jp_fetch, "runs", recorded.id[:12])
    assert run["name"] == "a" and run["params"] == {"C": 1.0} and run["metrics"] == {"auc": 0.85}
    response = await jp_fetch("mlo", "api", "runs", recorded.id, "artifacts", "notes.txt")
    assert response.body == b"hello"
    snaps = await get(jp_fetch, "snapshots")
    assert [s["name"] for s in snaps["snapshots"]] == ["train"]
    lin = await get(jp_fetch, "lineage", ref="train")
    assert [n["label"] for n in lin["nodes"]] == ["train@1", "a"]


async def test_metric_histories_for_charts_and_only_new_points_of_a_live_run(jp_fetch, sqlite_ws):
    run = mlo.start_run("live", experiment="shop")
    for step in range(5):
        mlo.log_metrics({"loss": 1 / (step + 1), "acc": step / 10}, step=step)
    mlo.log_metric("odd", float("nan"), step=0)
    mlo.flush()
    first = await get(jp_fetch, "runs", run.id, "metrics")
    assert first["status"] == "running" and set(first["metrics"]) == {"loss", "acc", "odd"}
    loss = first["metrics"]["loss"]
    assert loss["step"] == [0, 1, 2, 3, 4] and loss["value"][:2] == [1.0, 0.5] and loss["points"] == 5
    assert len(loss["time"]) == 5 and loss["time"][0] > 1.7e9 and not loss["thinned"]
    assert first["metrics"]["odd"]["value"] == [None]  # NaN is a gap, not invalid JSON

    # a chart polls with the last step it has: only the points logged since come back
    for step in range(5, 8):
        mlo.log_metric("loss", 1 / (step + 1), step=step)
    mlo.flush()
    later = await get(jp_fetch, "runs", run.id, "metrics", since_step="4", key="loss")
    assert set(later["metrics"]) == {"loss"} and later["metrics"]["loss"]["step"] == [5, 6, 7]
    assert (await get(jp_fetch, "runs", run.id, "metrics", since_step="7"))["metrics"] == {}
    mlo.end_run()
    assert (await get(jp_fetch, "runs", run.id, "metrics", key="acc"))["status"] == "finished"

    # long series are thinned to the bound, keeping the extremes
    with mlo.start_run("long", experiment="shop") as big:
        values = [0.0] * 5000
        values[1234] = 9.0
        for step, value in enumerate(values):
            mlo.log_metric("spiky", value, step=step)
    thinned = (await get(jp_fetch, "runs", big.id, "metrics", max_points="100"))["metrics"]["spiky"]
    assert thinned["thinned"] and thinned["points"] == 5000 and len(thinned["step"]) <= 102
    assert 9.0 in thinned["value"] and thinned["step"][0] == 0 and thinned["step"][-1] == 4999

    for params, fragment in (({"since_step": "two"}, "whole numbers"), ({"max_points": "3"}, "at least 10")):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("mlo", "api", "runs", run.id, "metrics", params=params)
        assert exc.value.code == 400 and fragment in json.loads(exc.value.response.body)["error"]


async def test_bad_requests_and_path_escapes_are_refused(jp_fetch, recorded):
    for parts, params, status, fragment in (
        (("runs",), {"where": "metrics.auc >"}, 400, "bad filter"),
        (("runs", "zzzzzz"), {}, 404, "no run"),
        (("runs", recorded.id, "artifacts", "../../mlo.db"), {}, 404, "no artifact"),
        (("runs", recorded.id, "artifacts", "/etc/passwd"), {}, 404, "no artifact"),
        (("lineage",), {}, 400, "ref"),
        (("lineage",), {"ref": "nope"}, 404, "no snapshot named"),
        (("models", "nope"), {}, 404, "no model"),
    ):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("mlo", "api", *parts, params=params)
        assert exc.value.code == status, (parts, exc.value.code)
        assert fragment in json.loads(exc.value.response.body)["error"], (parts, exc.value.response.body)


async def test_requests_without_the_token_get_403(jp_fetch, jp_base_url, jp_http_port, recorded):
    client = tornado.httpclient.AsyncHTTPClient()
    for path in (
        "runs",
        f"runs/{recorded.id}",
        f"runs/{recorded.id}/metrics",
        "experiments",
        "models",
        "snapshots",
        "lineage?ref=train",
        "traces",
    ):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await client.fetch(f"http://localhost:{jp_http_port}{jp_base_url}mlo/api/{path}")
        assert exc.value.code == 403, path


def test_the_extension_point_is_declared():
    assert mlo._jupyter_server_extension_points() == [{"module": "mlo.jupyter.server"}]


async def test_the_api_never_sets_mlo_home_for_the_server_process(jp_fetch, jp_root_dir, monkeypatch):
    """The probe: the first REST call set MLO_HOME inside the Jupyter server, so every kernel started later wrote
    to the server's workspace instead of its own."""
    import os

    from mlo import workspace

    monkeypatch.delenv("MLO_HOME", raising=False)
    workspace.reset_cache()
    mlo.init(jp_root_dir)
    with workspace.using(jp_root_dir / ".mlo"):
        with mlo.start_run("in-root", experiment="root"):
            mlo.log_metric("m", 1.0)
    assert [e["name"] for e in await get(jp_fetch, "experiments")] == ["root"]
    assert (await get(jp_fetch, "runs"))["total"] == 1
    assert "MLO_HOME" not in os.environ
    assert workspace.find_home(jp_root_dir.parent) is None  # nothing in force outside a request either


async def test_artifacts_keep_their_media_type_in_a_sandbox(jp_fetch, sqlite_ws, tmp_path):
    files = {
        "page.html": (b"<script>alert(document.cookie)</script>", "text/html"),
        "plot.svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
        "notes.txt": (b"hello", "text/plain"),
        "scores.json": (b'{"a": 1}', "application/json"),
        "weights.bin": (b"\x00\x01", "application/octet-stream"),
        'odd "name".txt': (b"x", "text/plain"),
    }
    with mlo.start_run("art") as run:
        for name, (data, _) in files.items():
            (tmp_path / name).write_bytes(data)
            mlo.log_artifact(tmp_path / name)
    for name, (data, media) in files.items():
        response = await jp_fetch("mlo", "api", "runs", run.id, "artifacts", name)
        assert response.body == data
        assert response.headers["Content-Type"].split(";")[0] == media, name
        csp = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
        assert "sandbox" in csp and "default-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "\n" not in response.headers["Content-Disposition"]


@pytest.fixture
def traced(sqlite_ws):
    """Two traces: an LLM call through the fake endpoint inside a run, and a failed custom span outside any."""
    pytest.importorskip("openai")
    from mlo.llm import FakeEndpoint, calls, chat

    with FakeEndpoint() as ep, mlo.start_run("rag", experiment="llm") as run:
        with mlo.trace("answer", kind="chain") as root:
            root.set_inputs({"question": "capital of France?"})
            chat("capital of France?", model="fake-model", base_url=ep.url, api_key="x")
    calls.AUTOLOG.clear()
    with pytest.raises(ValueError), mlo.trace("broken", kind="tool"):
        raise ValueError("bad <tool> input")
    return run


async def test_traces_list_pages_filters_and_opens_one_with_its_contents(jp_fetch, traced):
    page = await get(jp_fetch, "traces")
    assert page["total"] == 2 and [t["name"] for t in page["traces"]] == ["broken", "answer"]
    assert page["traces"][0]["status"] == "error" and "bad <tool> input" in page["traces"][0]["error"]
    second = await get(jp_fetch, "traces", offset="1", limit="1")
    assert second["total"] == 2 and [t["name"] for t in second["traces"]] == ["answer"]
    mine = await get(jp_fetch, "traces", run=traced.id)
    assert [t["name"] for t in mine["traces"]] == ["answer"] and mine["traces"][0]["run_id"] == traced.id
    assert mine["traces"][0]["llm_calls"] == 1 and mine["traces"][0]["input_tokens"] > 0
    failed = await get(jp_fetch, "traces", where="status = 'error'")
    assert failed["total"] == 1

    tid = mine["traces"][0]["trace_id"]
    trace = await get(jp_fetch, "traces", tid[:16])
    assert trace["trace_id"] == tid and trace["span_count"] == 2 and trace["run_id"] == traced.id
    (root,) = trace["spans"]
    assert root["name"] == "answer" and json.loads(root["input"]) == {"question": "capital of France?"}
    (call,) = root["children"]
    assert call["kind"] == "llm" and call["model"] == "fake-model" and call["usage"]["input"] > 0
    assert "[user] capital of France?" in call["input"] and call["output"].startswith("echo:")
    assert call["content"] == "full" and "mlo.response.text" not in call["attributes"]


async def test_trace_requests_that_cannot_be_answered(jp_fetch, traced):
    for parts, params, status, fragment in (
        (("traces", "zzzzzzzz"), {}, 404, "no trace"),
        (("traces", "%25%25%25%25"), {}, 404, "no trace"),
        (("traces", "ab"), {}, 404, "at least 4"),
        (("traces",), {"where": "cost_usd >"}, 400, "filter"),
        (("traces",), {"where": "nope = 1"}, 400, "unknown field"),
        (("traces",), {"limit": "x"}, 400, "whole numbers"),
        (("traces",), {"run": "nosuchrun"}, 404, "no run"),
    ):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("mlo", "api", *parts, params=params)
        assert exc.value.code == status, (parts, params, exc.value.code, exc.value.response.body)
        assert fragment in json.loads(exc.value.response.body)["error"], (parts, exc.value.response.body)


async def test_a_server_without_a_workspace_answers_one_line_that_says_run_mlo_init(
    jp_fetch, jp_root_dir, monkeypatch
):
    from mlo import workspace

    monkeypatch.delenv("MLO_HOME", raising=False)
    workspace.reset_cache()
    for parts in (("experiments",), ("runs",), ("models",), ("traces",), ("runs", "abc", "metrics")):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("mlo", "api", *parts)
        body = json.loads(exc.value.response.body)
        assert exc.value.code == 404, parts
        assert "run `mlo init`" in body["error"] and "\n" not in body["error"], (parts, body)


async def test_table_previews_of_csv_and_parquet_artifacts(jp_fetch, sqlite_ws, tmp_path):
    import pandas as pd

    pd.DataFrame({"a": range(30), "b": [None] + ["x"] * 29}).to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,\n")
    (tmp_path / "bad.csv").write_bytes(b'a,b\n"1,2\n' + b"\x00" * 10)
    (tmp_path / "n.txt").write_text("x")
    with mlo.start_run("tables") as run:
        for name in ("t.parquet", "t.csv", "bad.csv", "n.txt"):
            mlo.log_artifact(tmp_path / name)
    head = await get(jp_fetch, "runs", run.id, "artifacts", "t.parquet", preview="table")
    assert head["columns"] == ["a", "b"] and head["rows_total"] == 30 and len(head["rows"]) == 20
    assert head["rows"][:2] == [[0, None], [1, "x"]]
    head = await get(jp_fetch, "runs", run.id, "artifacts", "t.csv", preview="table")
    assert head == {"columns": ["a", "b"], "rows": [[1, "x"], [2, None]], "rows_total": None}
    for name, fragment in (("bad.csv", "cannot read"), ("n.txt", "not a table")):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("mlo", "api", "runs", run.id, "artifacts", name, params={"preview": "table"})
        assert exc.value.code == 400 and fragment in json.loads(exc.value.response.body)["error"], name


async def test_diff_of_two_runs_params_metrics_cells_environment_and_git(jp_fetch, sqlite_ws):
    with mlo.start_run("a", experiment="shop", params={"C": 1, "penalty": "l2"}) as a:
        mlo.log_metric("auc", 0.8)
        mlo.record_cell("model = fit(C=1)")
        mlo.record_cell("score(model)")
    with mlo.start_run("b", experiment="shop", params={"C": 2, "penalty": "l2", "seed": 7}) as b:
        mlo.log_metric("auc", float("nan"))
        mlo.record_cell("model = fit(C=2)")
        mlo.record_cell("score(model)")
    diff = await get(jp_fetch, "diff", a=a.id, b=b.id[:12])
    assert (diff["a"]["name"], diff["b"]["name"]) == ("a", "b")
    params = {p["key"]: p for p in diff["params"]}
    assert params["C"]["a"] == 1 and params["C"]["b"] == 2 and not params["C"]["same"]
    assert params["penalty"]["same"] and params["seed"]["only"] == "b"
    assert diff["metrics"] == [{"key": "auc", "a": 0.8, "b": None, "only": None, "same": False}]
    assert "-model = fit(C=1)" in diff["cells"] and "+model = fit(C=2)" in diff["cells"]
    assert " score(model)" in diff["cells"]
    # the same process ran both: the same environment, so no package or platform differs
    assert diff["packages_compared"] and diff["packages"] == [] and diff["env"] == []
    assert set(diff["git"]) == {"a", "b", "same"}
    for params, status, fragment in (
        ({"a": a.id}, 400, "two runs"),
        ({"a": a.id, "b": a.id}, 400, "two different runs"),
        ({"a": a.id, "b": "zzzzzz"}, 404, "no run"),
    ):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("mlo", "api", "diff", params=params)
        assert exc.value.code == status and fragment in json.loads(exc.value.response.body)["error"], params
