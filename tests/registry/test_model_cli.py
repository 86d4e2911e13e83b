"""``mlo models | promote | rollback | audit | card``: CliRunner in-process, and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import mlo
from mlo.cli import main


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def two(sqlite_ws, logreg):
    with mlo.start_run("fit"):
        mlo.log_metric("auc", 0.8)
        mlo.register_model(logreg, "lr")
    mlo.register_model(logreg, "lr")
    return sqlite_ws


def test_models_table_csv_and_json(two):
    out = cli("models")
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["name", "version", "aliases", "model_class"] and "auc" in lines[0]
    assert len(lines) == 4
    rows = json.loads(cli("models", "lr", "--format", "json").stdout)
    assert [r["version"] for r in rows] == [2, 1] and rows[1]["metrics.auc"] == 0.8
    assert cli("models", "--format", "csv").stdout.startswith("name,version,aliases")


def test_promote_exit_codes_rollback_and_audit(two):
    mlo.set_policy("production", validation=True)
    refused = cli("promote", "lr", "2", "production")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert (
        refused.stderr.startswith("mlo: cannot promote lr/2 to 'production'")
        and refused.stderr.count("\n") == 1
    )
    bad = cli("promote", "lr", "9", "production")
    assert bad.exit_code == 2 and "has no version 9" in bad.stderr
    ok = cli("promote", "lr", "1", "production", "--force", "--reason", "first")
    assert ok.exit_code == 0 and "lr@production → v1 (forced" in ok.stdout
    two.reports.save("validation", {}, None, subject="model:lr/2", passed=True)
    ok = cli("promote", "lr", "2", "production")
    assert ok.exit_code == 0 and ok.stdout.startswith("lr@production → v2 (evidence: ")
    back = cli("rollback", "lr", "production", "--reason", "regression")
    assert back.exit_code == 0 and back.stdout.strip() == "lr@production: v2 → v1"
    assert cli("rollback", "lr", "production").exit_code == 2
    log = cli("audit", "lr")
    assert log.exit_code == 0
    actions = [line.split()[3] for line in log.stdout.splitlines()[2:]]
    assert actions == ["register", "register", "promote", "promote", "rollback"]
    events = json.loads(cli("audit", "lr", "--format", "json").stdout)
    assert events[-1]["reason"] == "regression" and events[2]["forced"] is True


def test_card_to_stdout_and_files(two, tmp_path):
    md = cli("card", "lr", "1")
    assert md.exit_code == 0 and md.stdout.startswith("# lr v1")
    assert cli("card", "lr@latest").stdout.startswith("# lr v2")
    out = cli("card", "lr", "1", "-o", str(tmp_path / "lr.html"))
    assert out.exit_code == 0 and (tmp_path / "lr.html").read_text().startswith("<!doctype html>")
    assert json.loads(cli("card", "lr", "2", "--format", "json").stdout)["version"] == 2
    assert cli("card", "lr", "1", "-o", str(tmp_path / "lr.txt")).exit_code == 2


def test_promote_in_a_real_process_exits_1_for_a_gate(two):
    mlo.set_policy("production", validation=True)
    env = {**os.environ, "MLO_HOME": str(two.home)}
    p = subprocess.run(
        [sys.executable, "-m", "mlo", "promote", "lr", "1", "production"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 1 and "needs a passed validation of lr/1" in p.stderr
