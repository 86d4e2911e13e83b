"""``mlo serve``: usage errors in-process (CliRunner), and real servers stopped with Ctrl-C and SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest
from click.testing import CliRunner

import mlo
from mlo.cli import main


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def m(sqlite_ws):
    def double(X):  # local, so it is stored by value and loads in another process
        return X["x"] * 2

    mlo.register_model(
        double, "m", signature={"x": "float64"}, input_example=pd.DataFrame({"x": [1.0]}), alias="production"
    )
    return sqlite_ws


def test_bad_references_and_shares_exit_2_with_one_line(m):
    for args, text in [
        (["m@nope"], "no alias 'nope'"),
        (["ghost@production"], "ghost"),
        (["m@production", "--canary", "m@production:150"], "between 0 and 100"),
        (["m@production", "--canary", "m@production"], "NAME@ALIAS:PCT"),
        (["m@production", "--canary", "m@production:x"], "not a number"),
    ]:
        out = cli("serve", *args)
        assert out.exit_code == 2, args
        assert out.stderr.startswith("mlo: ") and out.stderr.count("\n") == 1 and text in out.stderr, (
            out.stderr
        )
    assert cli("serve", "m@production", "--port", "70000").exit_code == 2  # click's range check
    assert "NAME@ALIAS:PCT" in cli("serve", "--help").stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_foreground_server_answers_and_flushes_its_log_when_stopped(m, sig):
    env = {**os.environ, "MLO_HOME": str(m.home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlo", "serve", "m@production", "--port", "0", "--canary", "m@production:50"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stderr.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+) ", line)
        assert found, (line, None if found else proc.stderr.read())
        url = found.group(1)
        ids = []
        for x in range(5):
            req = urllib.request.Request(
                url + "/predict", data=json.dumps({"records": [{"x": x}]}).encode(), method="POST"
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                doc = json.loads(resp.read())
            assert doc["predictions"] == [2.0 * x] and resp.headers["X-MLO-Route"] in ("stable", "canary")
            ids += doc["ids"]
        time.sleep(0.05)
        proc.send_signal(sig)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 0, rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "5 predictions logged" in rest
    log = mlo.monitor.read_log("m")
    assert sorted(log["id"]) == sorted(ids) and set(log["version"]) == {1}


def test_tokens_and_limits_from_the_command_line(m, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("cli-predict-token-0123456789 predict\n")
    tokens.chmod(0o600)
    out = cli("serve", "m@production", "--token-file", str(tmp_path / "nope"))
    assert out.exit_code == 2 and "no token file" in out.stderr
    out = cli("serve", "m@production", "--max-body", "lots")
    assert out.exit_code == 2 and "size like '4MB'" in out.stderr
    env = {**os.environ, "MLO_HOME": str(m.home)}
    env.pop("MLO_SERVE_TOKEN", None)
    cmd = [sys.executable, "-m", "mlo", "serve", "m@production", "--port", "0", "--token-file", str(tokens)]
    proc = subprocess.Popen([*cmd, "--max-rows", "2"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+) \(token required", line)
        assert found, (line, None if found else proc.stderr.read())

        def call(body: dict, token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            req = urllib.request.Request(
                found.group(1) + "/predict", data=json.dumps(body).encode(), method="POST", headers=headers
            )
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        one = {"records": [{"x": 1.0}]}
        assert call(one, None) == 401 and call(one, "cli-predict-token-0123456789") == 200
        assert call({"records": [{"x": 1.0}] * 3}, "cli-predict-token-0123456789") == 413
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
