"""Alert rules from mlo.toml: parsing, firing on consecutive windows, one alert per incident, and the actions —
a command, a webhook (a real HTTP server on loopback), a rollback (audited), a retrain (a real pipeline run)."""

from __future__ import annotations

import json
import logging
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


# -- rules that cannot sit silent, webhooks that cannot leak -------------------------------------------------------
def test_a_misspelt_metric_is_refused_with_the_closest_name(sqlite_ws):
    import tomllib

    for when, hint in (
        ("acuracy < 0.8", "did you mean 'accuracy'?"),
        ("latncy_p95 > 50", "did you mean 'latency_p95'?"),
        ("not dataset_drfit", "did you mean 'dataset_drift'?"),
        ("canary_wrse", "did you mean 'canary_worse'?"),
    ):
        with pytest.raises(InvalidInput, match=f"no metric .*{hint.replace('?', '[?]')}"):
            load_rules(tomllib.loads(f'[[monitor.rules]]\nname = "r"\nwhen = "{when}"\n'))
    with pytest.raises(InvalidInput, match=r"no metric 'zzz' \(metrics: n, drift_share"):
        load_rules(tomllib.loads('[[monitor.rules]]\nwhen = "zzz > 1"\n'))
    write_rules(trained_ws(), '[[monitor.rules]]\nname = "typo"\nwhen = "acuracy < 0.8"\n')
    result = CliRunner().invoke(main, ["monitor", "check"])
    assert result.exit_code == 2 and "did you mean 'accuracy'" in result.stderr


def test_every_metric_a_rule_may_name_is_one_a_report_gives(trained):
    from mlo.monitor.rules import METRICS

    mlo.register_model(trained.model, "churn")
    mlo.promote("churn", 2, "production", force=True, reason="try v2")
    serve_like(trained, canary_error_every=10)
    log = mlo.monitor.read_log("churn")
    mlo.monitor.label(log["id"], log["prediction"].fillna(0).astype(int), model="churn")
    columns = set(mlo.monitor.report("churn", window="1h", save=False).windows.columns)
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    mlo.register_model(LinearRegression().fit(X, [0.0, 1.0, 2.0, 3.5]), "reg", input_example=X)
    mlo.monitor.log("reg@v1", X, [0.1, 0.9, 2.2, 3.1], labels=[0.25, 1.5, 2.75, 3.5])
    columns |= set(mlo.monitor.report("reg", window="1h", save=False).windows.columns)
    assert set(METRICS) - {"canary_mae", "stable_mae"} <= columns  # those two: a regression with a canary
    text = {"start", "end", "versions", "drifted", "canary_reasons"}  # what a window says in words
    assert columns - set(METRICS) == text


def test_a_rule_for_a_misspelt_model_is_refused(trained):
    write_rules(trained_ws(), '[[monitor.rules]]\nname = "r"\nmodel = "chrun"\nwhen = "dataset_drift"\n')
    with pytest.raises(InvalidInput, match="no model 'chrun'; did you mean 'churn'"):
        mlo.monitor.check()


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("file:///etc/passwd", "got file:"),
        ("ftp://example.com/x", "got ftp:"),
        ("data:text/plain,hi", "got data:"),
        ("https:///no-host", "with a host"),
        ("hooks.example.com/x", "got no scheme:"),
    ],
)
def test_webhooks_are_http_or_https_only(sqlite_ws, url, fragment):
    import tomllib

    with pytest.raises(InvalidInput, match=f"webhook url must be http:// or https://.*{fragment}"):
        load_rules(
            tomllib.loads(
                f'[[monitor.rules]]\nwhen = "dataset_drift"\nactions = [{{ type = "webhook", url = "{url}" }}]\n'
            )
        )


SECRET_PATH = "T000-B000-s3cr3tPathPart"
SECRET_QUERY = "token=q5ecretQuery"
SECRET = "hmac-secret-0123456789"
HEADER = "Bearer header-secret-987654"


class SignedHook(BaseHTTPRequestHandler):
    received: list = []
    redirect_to: str | None = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        SignedHook.received.append((self.path, self.headers, body))
        if SignedHook.redirect_to:
            self.send_response(302)
            self.send_header("Location", SignedHook.redirect_to)
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def signed_hook():
    SignedHook.received, SignedHook.redirect_to = [], None
    server = HTTPServer(("127.0.0.1", 0), SignedHook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def test_webhook_secrets_never_reach_an_alert_record_or_a_log(trained, signed_hook, monkeypatch, caplog):
    import hashlib
    import hmac

    monkeypatch.setenv(
        "HOOK_URL", f"http://user:pw-secret-1@127.0.0.1:{signed_hook}/{SECRET_PATH}?{SECRET_QUERY}"
    )
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("HOOK_TOKEN", HEADER)
    write_rules(
        trained_ws(),
        """
        [[monitor.rules]]
        name = "accuracy low"
        when = "accuracy < 0.99"
        actions = [
          { type = "webhook", url = "${HOOK_URL}", secret = "${HOOK_SECRET}", headers = { Authorization = "${HOOK_TOKEN}" } },
          { type = "webhook", url = "http://127.0.0.1:9/SECRET_PATH", timeout = 2 },
        ]
        """.replace("SECRET_PATH", SECRET_PATH),
    )
    trained.log_hours(1)
    with caplog.at_level(logging.DEBUG):
        (alert,) = mlo.monitor.check(window="1h")
    path, headers, body = SignedHook.received[0]
    assert SECRET_PATH in path and headers["Authorization"] == HEADER  # the hook itself gets what it needs
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-MLO-Signature"] == f"sha256={expected}"
    assert [a["ok"] for a in alert.actions] == [True, False]
    assert alert.actions[0]["detail"] == f"POST http://127.0.0.1:{signed_hook}/… → 200"
    record = trained_ws().reports.list(kind="alert", limit=1)[0]
    shown = [
        str(alert),
        repr(alert),
        json.dumps(alert.to_dict()),
        json.dumps(record.summary, default=str),
        mlo.monitor.alerts().to_json(date_format="iso"),
        "\n".join(r.getMessage() for r in caplog.records),
        repr(load_rules(trained_ws().reread_config())),
        cli("monitor", "alerts").output,
    ]
    for text in shown:
        for secret in (SECRET_PATH, SECRET_QUERY, SECRET, HEADER, "pw-secret-1"):
            assert secret not in text, (secret, text[:300])


def test_a_webhook_redirect_to_another_scheme_is_refused(trained, signed_hook):
    SignedHook.redirect_to = "file:///etc/passwd"
    write_rules(
        trained_ws(),
        f'[[monitor.rules]]\nname = "r"\nwhen = "accuracy < 0.99"\n'
        f'actions = [{{ type = "webhook", url = "http://127.0.0.1:{signed_hook}/hook" }}]\n',
    )
    trained.log_hours(1)
    (alert,) = mlo.monitor.check(window="1h")
    assert alert.actions[0]["ok"] is False and "302" in alert.actions[0]["detail"]
    assert "passwd" not in alert.actions[0]["detail"]


def test_a_mistake_in_a_webhook_action_shows_no_secret(sqlite_ws, monkeypatch):
    import tomllib

    for action, fragment in (
        (f'{{ type = "webhok", url = "https://h.example/{SECRET_PATH}" }}', "got 'webhok'"),
        (
            f'{{ type = "webhook", url = "https://h.example/{SECRET_PATH}", secert = "x" }}',
            "did you mean 'secret'",
        ),
        ('{ type = "webhook", url = "${NOT_SET_ANYWHERE}" }', "names ${NOT_SET_ANYWHERE}, which is not set"),
        (f'{{ type = "webhook", url = "https://h.example/{SECRET_PATH}", timeout = 0 }}', "timeout"),
    ):
        with pytest.raises(InvalidInput) as exc:
            load_rules(tomllib.loads(f'[[monitor.rules]]\nwhen = "dataset_drift"\nactions = [{action}]\n'))
        assert fragment in str(exc.value) and SECRET_PATH not in str(exc.value), str(exc.value)
