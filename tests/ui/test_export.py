"""``mlo ui --export DIR``: the static site's files, its refusals, and the API core's report and card pages it
pre-renders (the browser side is in tests/browser/test_ui_app.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

import pandas as pd
import pytest

import mlo
from mlo.ui.api import answer
from mlo.ui.export import compare_key, export_site, key_hash
from mlo.ui.server import built

needs_app = pytest.mark.skipif(not built(), reason="the mlo ui app is not built (make labextension)")


def _mlo(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mlo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_key_hash_matches_the_apps_fnv1a():
    # the app (static.ts) computes the same FNV-1a: these values are its answers
    assert key_hash("") == "811c9dc5"
    assert key_hash("a") == "e40c292c"
    assert key_hash("runs/é") == "6a4d704c"  # UTF-8 bytes, as TextEncoder gives them


def test_reports_and_model_cards_are_sandboxed_pages(sqlite_ws):
    ref = pd.DataFrame({"x": range(200)})
    cur = pd.DataFrame({"x": [v + 50 for v in range(200)]})
    report = mlo.drift(ref, cur)
    with mlo.start_run("fit") as run:
        mlo.log_metric("auc", 0.9)
    mlo.register_model(lambda rows: [0 for _ in rows], "m", alias="production", run=run)
    listed = answer(sqlite_ws.home, "reports", {}).data
    assert listed["total"] == 1 and listed["reports"][0]["kind"] == "drift"
    page = answer(sqlite_ws.home, f"reports/{report.id[:8]}", {})
    assert page.status == 200 and page.headers["Content-Security-Policy"].startswith("sandbox")
    assert b"<" in page.body and page.headers["Content-Type"].startswith("text/html")
    card = answer(sqlite_ws.home, "models/m/1/card", {})
    assert card.status == 200 and b"m" in card.body and "sandbox" in card.headers["Content-Security-Policy"]
    assert answer(sqlite_ws.home, "models/m/one/card", {}).status == 404
    assert answer(sqlite_ws.home, "reports/%25", {}).status == 404  # no LIKE wildcard gets through
    bad = answer(sqlite_ws.home, "reports", {"kind": ["secret"]})
    assert bad.status == 400 and "kind is one of" in bad.data["error"]


@needs_app
def test_export_writes_a_site_that_needs_no_server(sqlite_ws, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("<script>bad()</script> notes")
    for C in (0.1, 1.0):
        with mlo.start_run(f"C{C}", experiment="churn", params={"C": C}):
            mlo.log_metrics({"loss": 1 / (C + 1)}, step=0)
            mlo.log_metrics({"loss": 0.5 / (C + 1)}, step=1)
            mlo.log_artifact(tmp_path / "notes.txt")
    with mlo.start_run("other", experiment="fraud"):
        mlo.log_metric("recall", 0.5)
    done = export_site(tmp_path / "site", "churn")
    site = tmp_path / "site"
    assert done["runs"] == 2 and (site / "index.html").read_text().count("data-mlo-static") == 1
    runs = (site / "data" / f"{key_hash('runs')}.js").read_text()
    assert runs.startswith('mloData("runs", 200, "application/json"') and "fraud" not in runs
    # a stored text cannot end the script early
    texts = [p.read_text() for p in (site / "data").iterdir()]
    assert any("bad()" in t for t in texts) and not any("</script>" in t for t in texts)
    assert list((site / "mlo" / "api" / "runs").glob("*/artifacts/notes.txt"))
    # the compare page's scatter, under the key the app asks for, with the exported experiment's runs only
    key = compare_key({"view": ["scatter"], "metric": ["metrics.loss"], "param": ["params.C"]})
    scatter = (site / "data" / f"{key_hash(key)}.js").read_text()
    assert key == "compare?view=scatter&metric=metrics.loss&param=params.C"
    assert '\\"x\\": \\"C\\"' in scatter and scatter.count('\\"y\\"') == 1 + 2  # the axis label, 2 runs
    # nothing in the page reaches for the network
    for name in ("index.html", "static/app.css"):
        assert not re.search(r"https?://", (site / name).read_text())
    # exporting again replaces the site whole
    assert export_site(site)["runs"] == 3
    # a runs page counting up to a cap below the runs: the export still says how many there are
    from mlo.ui import api, export

    monkeypatch.setattr(api, "COUNT_UP_TO", 1)
    monkeypatch.setattr(export, "MAX_RUNS", 2)  # the page's end is then the cap, 2
    assert export_site(site)["runs"] == 3


@needs_app
def test_export_refuses_in_one_line_what_it_cannot_do(sqlite_ws, tmp_path):
    with mlo.start_run("r", experiment="churn"):
        mlo.log_metric("loss", 1.0)
    env = {**os.environ, "MLO_HOME": str(sqlite_ws.home)}
    done = _mlo("ui", "--export", str(tmp_path / "s"), "--experiment", "nope", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "no experiment 'nope'; experiments: churn" in done.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "thesis.tex").write_text("keep me")
    done = _mlo("ui", "--export", str(tmp_path / "full"), cwd=tmp_path, env=env)
    assert done.returncode == 2 and "other files" in done.stderr
    assert (tmp_path / "full" / "thesis.tex").read_text() == "keep me"  # nothing lost
    done = _mlo("ui", "--experiment", "churn", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "--experiment goes with --export" in done.stderr
    done = _mlo("ui", "--export", str(tmp_path / "ok"), "--format", "json", cwd=tmp_path, env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["runs"] == 1
    bare = {k: v for k, v in os.environ.items() if k != "MLO_HOME"}
    with tempfile.TemporaryDirectory() as empty:  # outside the test's workspace
        done = _mlo("ui", "--export", str(tmp_path / "x"), cwd=empty, env=bare)
    assert done.returncode == 2 and "run `mlo init`" in done.stderr
