"""``mlo ui``: the run browser in any web browser, for a terminal, a shared server or an editor without
JupyterLab. It runs JupyterLab on the workspace's folder with mlo's panel, run tabs, charts and diffs and its REST API
(``/mlo/api/``), behind a token, in the foreground until Ctrl-C.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys

import click

from ..errors import InvalidInput, NotFound
from . import main
from .output import echo, format_option


def lab_command(host: str, port: int, root: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.ip={host}",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # a container's root user; the token still guards every request
    return cmd


@main.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", "-p", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token",
    envvar="MLO_UI_TOKEN",
    help="The token a browser must give (?token= once, then a cookie); default: a new random one, printed. "
    "Also MLO_UI_TOKEN.",
)
@format_option("text", "json", help="json: print one JSON line (url, workspace) once the server answers.")
def ui(host: str, port: int, token: str | None, fmt: str) -> None:
    """Browse the workspace's experiments, runs (live charts, artifacts, diffs), models and traces in a browser."""
    from .. import workspace

    home = workspace.find_home()
    if home is None or not home.is_dir():
        raise NotFound(f"no mlo workspace at or above {os.getcwd()}: run `mlo init` there (or set MLO_HOME)")
    if importlib.util.find_spec("jupyterlab") is None:
        raise InvalidInput("mlo ui needs JupyterLab: pip install 'mlo-workbench[lab]'")
    if token is not None and len(token.strip()) < 8:
        raise InvalidInput("--token must be at least 8 characters: the UI is never served without one")
    token = (token or secrets.token_urlsafe(24)).strip()
    env = {
        **os.environ,
        "MLO_HOME": str(home),
        "JUPYTER_TOKEN": token,
    }  # not on the command line: ps shows that
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/lab?token={token}"
    if fmt == "text":
        echo(f"mlo ui: workspace {home}")
        echo(f"mlo ui: open {url}  (Ctrl-C stops it)")
    proc = subprocess.Popen(lab_command(host, port, str(home.parent)), env=env)
    try:
        if fmt == "json":
            if _answers(f"http://{shown}:{port}/api/status?token={token}", proc):
                click.echo(json.dumps({"url": url, "workspace": str(home), "pid": proc.pid}))
                sys.stdout.flush()
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()
    sys.exit(code)


def _answers(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Whether the server at ``url`` answers before ``timeout`` seconds (False when it exited first)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False
