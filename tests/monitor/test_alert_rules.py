"""Alert rules from mlo.toml: parsing, firing on consecutive windows, one alert per incident, and the actions —
a command, a webhook (a real HTTP server on loopback), a rollback (audited), a retrain (a real pipeline run)."""

from __future__ import annotations

import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner
from monitor_data import serve_like

import mlo
from mlo.cli import main
from mlo.errors import InvalidInput
from mlo.monitor.rules import Rule, firing, load_rules


def write_rules(ws, text: str) -> None:
    (ws.home.parent / "mlo.toml").write_text(textwrap.dedent(text))


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "toml, message",
    [
        ("[[monitor.rules]]\nname='x'\n", "give when ="),
        ("[[monitor.rules]]\nwhen='accuracy <'\n", "cannot read when"),
        ("[[monitor.rules]]\nwhen='dataset_drift'\nfor=0\n", "for = must be a whole number"),
        ("[[monitor.rules]]\nwhen='dataset_drift'\nactions=[{type='email'}]\n", "type = one of webhook"),
        ("[[monitor.rules]]\nwhen='dataset_drift'\nactions=[{type='webhook'}]\n", 'needs url = "…"'),
        ("[[monitor.rules]]\nwhen='dataset_drift'\nevery=3\n", "unknown key(s) every"),
    ],
)
def test_rule_mistakes_are_one_line_errors(sqlite_ws, toml, message):
    import tomllib

    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_rules(tomllib.loads(toml))


def test_conditions_and_consecutive_windows():
    rows = [
        {"start": i, "accuracy": a, "dataset_drift": d}
        for i, (a, d) in enumerate([(0.9, False), (0.7, True), (0.6, True)])
    ]
    assert firing(Rule("r", "dataset_drift", 2), rows) == [
        {"start": 1, "end": None, "n": None, "dataset_drift": True},
        {"start": 2, "end": None, "n": None, "dataset_drift": True},
    ]
    assert firing(Rule("r", "dataset_drift", 3), rows) is None
    assert firing(Rule("r", "accuracy < 0.75", 2), rows) is not None
    assert firing(Rule("r", "accuracy >= 75%", 1), [{"accuracy": 0.8}]) is not None
    assert firing(Rule("r", "not dataset_drift", 1), rows) is None
    assert firing(Rule("r", "accuracy < 0.8", 1), [{"accuracy": float("nan")}]) is None  # no labels yet


def test_drift_on_two_windows_fires_once_per_incident_and_runs_a_command(trained, tmp_path):
    write_rules(
        trained_ws(),
        """
        [[monitor.rules]]
        name = "inputs drifted"
        when = "dataset_drift"
        for = 2
        actions = [{ type = "command", run = "cat > alert.json; echo $MLO_ALERT_RULE >> fired.txt" }]
        """,
    )
    trained.log_hours(4, drift_from=3)
    assert mlo.monitor.check(window="1h") == []  # one drifted window is not two
    trained.log_hours_from(4, 1, shifted=True)
    fired = mlo.monitor.check(window="1h")
    assert len(fired) == 1 and fired[0].rule == "inputs drifted"
    assert (
        fired[0].actions == [{"type": "command", "ok": True, "detail": fired[0].actions[0]["detail"]}]
        and "exited 0" in fired[0].actions[0]["detail"]
    )
    sent = json.loads((tmp_path / "alert.json").read_text())
    assert sent["model"] == "churn" and len(sent["evidence"]) == 2 and sent["report_id"]
    assert mlo.monitor.check(window="1h") == []  # the same incident: no second alert
    trained.log_hours_from(5, 1, shifted=True)
    assert mlo.monitor.check(window="1h") == []  # still the same incident, one window longer
    trained.log_hours_from(6, 1, shifted=False)
    trained.log_hours_from(7, 2, shifted=True)
    assert len(mlo.monitor.check(window="1h")) == 1  # cleared, then drifted again: a new incident
    assert (tmp_path / "fired.txt").read_text().split() == ["inputs", "drifted"] * 2
    log = mlo.monitor.alerts("churn")
    assert len(log) == 2 and log["rule"].tolist() == ["inputs drifted"] * 2
    assert json.loads(log["actions"].iloc[0])[0]["ok"] is True


def trained_ws():
    return mlo.workspace.current()


class Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 204

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


def test_webhook_gets_the_alert_and_a_failing_one_is_recorded(trained, hook):
    write_rules(
        trained_ws(),
        f"""
        [[monitor.rules]]
        name = "accuracy low"
        when = "accuracy < 0.99"
        actions = [{{ type = "webhook", url = "{hook}" }}, {{ type = "webhook", url = "http://127.0.0.1:9/x", timeout = 2 }}]
        """,
    )
    trained.log_hours(1)
    (alert,) = mlo.monitor.check(window="1h")
    (path, ctype, body) = Hook.received[0]
    assert path == "/alerts" and ctype == "application/json"
    assert (
        body["source"] == "mlo" and body["rule"] == "accuracy low" and body["evidence"][0]["accuracy"] < 0.99
    )
    assert [a["ok"] for a in alert.actions] == [True, False] and "failed" in alert.actions[1]["detail"]


def test_canary_worse_rolls_the_alias_back_with_an_audit_event(trained):
    write_rules(
        trained_ws(),
        """
        [[monitor.rules]]
        name = "canary worse"
        when = "canary_worse"
        actions = [{ type = "rollback", alias = "production" }]
        """,
    )
    mlo.register_model(trained.model, "churn")  # v2 … promoted to production, then served as the canary
    mlo.promote("churn", 2, "production", force=True, reason="try v2")
    serve_like(trained, canary_error_every=10)
    (alert,) = mlo.monitor.check(window="1h")
    assert alert.actions[0]["ok"] and "v2 → v1" in alert.actions[0]["detail"]
    assert mlo.get_model_version("churn@production").version == 1
    event = mlo.audit("churn").iloc[-1]
    assert event.action == "rollback" and "canary worse" in event.reason


def test_check_from_the_command_line(trained):
    write_rules(trained_ws(), '[[monitor.rules]]\nname = "drift"\nwhen = "dataset_drift"\n')
    trained.log_hours(2)
    result = cli("monitor", "check", "--window", "1h")
    assert result.exit_code == 0 and "no alert" in result.output
    trained.log_hours_from(2, 1, shifted=True)
    result = cli("monitor", "check", "--window", "1h", "--dry-run")
    assert result.exit_code == 1 and result.output.startswith("would fire: ALERT 'drift' on churn")
    assert mlo.monitor.alerts().empty  # a dry run stores nothing
    result = cli("monitor", "check", "--window", "1h")
    assert result.exit_code == 1 and "ALERT 'drift' on churn" in result.output
    table = cli("monitor", "alerts").output  # the one table printer: time, model, rule, message, actions
    assert "churn  drift  dataset_drift on the latest window" in table
    report = cli("monitor", "churn", "--window", "1h", "--format", "csv")
    frame = pd.read_csv(__import__("io").StringIO(report.output))
    assert frame["dataset_drift"].tolist() == [False, False, True]


def test_check_without_rules_or_with_a_bad_rule(trained):
    result = CliRunner().invoke(main, ["monitor", "check"])
    assert result.exit_code == 2 and "no alert rules: add [[monitor.rules]]" in result.stderr
    write_rules(trained_ws(), '[[monitor.rules]]\nwhen = "accuracy <"\n')
    result = CliRunner().invoke(main, ["monitor", "check"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.kernel
def test_retrain_runs_the_pipeline(trained, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("reason = ''", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("open('retrained.txt', 'w').write('again')"),
    ]
    nbformat.write(nb, tmp_path / "train.ipynb")
    (tmp_path / "pipeline.yaml").write_text(
        "experiment: retrain\nstages:\n  train:\n    notebook: train.ipynb\n    outs: [retrained.txt]\n"
    )
    write_rules(
        trained_ws(),
        """
        [[monitor.rules]]
        name = "drift"
        when = "dataset_drift"
        actions = [{ type = "retrain", pipeline = "pipeline.yaml", stages = ["train"] }]
        """,
    )
    trained.log_hours(1, drift_from=0)
    (alert,) = mlo.monitor.check(window="1h")
    assert alert.actions[0]["ok"], alert.actions[0]["detail"]
    assert (tmp_path / "retrained.txt").read_text() == "again"
    assert "`mlo pipeline run pipeline.yaml --quiet --stage train` exited 0" in alert.actions[0]["detail"]
    runs = mlo.runs(experiment="retrain")
    assert "finished" in set(runs.status) and any("train" in str(n) for n in runs.name)
