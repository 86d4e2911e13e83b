"""``mlo ui``: JupyterLab with mlo's panel and REST API on the workspace, behind a token, started as a user would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

import mlo
from strict import need


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlo(*args: str, cwd, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "mlo", *args], cwd=cwd, env=env, capture_output=True, text=True, **kwargs
    )


def test_mlo_ui_refuses_without_a_workspace_or_with_a_weak_token(tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "MLO_HOME"}
    done = _mlo("ui", cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2 and "run `mlo init`" in done.stderr
    (tmp_path / ".mlo").mkdir()
    done = _mlo("ui", "--token", "abc", cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2 and "at least 8 characters" in done.stderr


def test_mlo_ui_lab_serves_the_workspace_behind_its_token(sqlite_ws, tmp_path):
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        need(False, "jupyterlab is not installed (pip install -e '.[lab]')")
    with mlo.start_run("seen", experiment="ui") as run:
        mlo.log_metric("loss", 0.5, step=0)
        mlo.log_metric("loss", 0.25, step=1)
    port, token = _free_port(), "a-test-token-1234"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "JPY_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jrun"),
        JUPYTER_DATA_DIR=str(tmp_path / "jdata"),
        MLO_UI_TOKEN=token,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlo", "ui", "--lab", "--port", str(port), "--format", "json"],
        cwd=sqlite_ws.home.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # with --format json, one line once the server answers (Jupyter's own log goes to stderr)
        line = proc.stdout.readline().decode()
        assert line, f"mlo ui exited with {proc.wait()}"
        started = json.loads(line)
        assert started["url"] == f"{base}/lab?token={token}"
        assert started["workspace"] == str(sqlite_ws.home)
        ask = urllib.request.Request(f"{base}/mlo/api/runs/{run.id}/metrics")
        ask.add_header("Authorization", f"token {token}")
        with urllib.request.urlopen(ask, timeout=10) as response:
            assert json.loads(response.read())["metrics"]["loss"]["value"] == [0.5, 0.25]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/mlo/api/experiments", timeout=10)
        assert refused.value.code == 403
        # the token is not on the command line, where any user's ps would show it
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert token not in ps
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
