"""``mlo ui``: the run browser in any web browser, for a terminal, a shared server or an editor without
JupyterLab: the standalone app of :mod:`mlo.ui.server` (runs, live charts, compare, models, reports, traces) on the
REST API, behind a token, in the foreground until Ctrl-C. ``--export DIR`` writes the same app as a static site;
``--lab`` runs JupyterLab with mlo's panel instead (for notebooks beside the runs).
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
@click.option(
    "--port", "-p", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.option(
    "--token",
    envvar="MLO_UI_TOKEN",
    help="The token a browser must give (?token= once, then a cookie); default: a new random one, printed. "
    "Also MLO_UI_TOKEN.",
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False),
    help="Write a static site (opens from file://, no server) to this folder instead of serving.",
)
@click.option("--experiment", help="With --export: only this experiment's runs.")
@click.option("--lab", is_flag=True, help="Run JupyterLab with mlo's panel instead of the standalone app.")
@format_option("text", "json", help="json: print one JSON line (url, workspace) once the server answers.")
def ui(
    host: str,
    port: int,
    token: str | None,
    export_dir: str | None,
    experiment: str | None,
    lab: bool,
    fmt: str,
) -> None:
    """Browse the workspace's experiments, runs (live charts, artifacts, compare), models, reports and traces."""
    from .. import workspace

    home = workspace.find_home()
    if home is None or not home.is_dir():
        raise NotFound(f"no mlo workspace at or above {os.getcwd()}: run `mlo init` there (or set MLO_HOME)")
    if experiment is not None and export_dir is None:
        raise InvalidInput("--experiment goes with --export DIR (the live app has an experiment picker)")
    if export_dir is not None:
        from ..ui.export import export_site

        done = export_site(export_dir, experiment, home=home)
        if fmt == "json":
            click.echo(json.dumps(done))
        else:
            echo(
                f"mlo ui: wrote {done['runs']} runs to {done['index']} (open it in a browser; no server needed)"
            )
        return
    if token is not None and len(token.strip()) < 8:
        raise InvalidInput("--token must be at least 8 characters: the UI is never served without one")
    token = (token or secrets.token_urlsafe(24)).strip()
    if lab:
        _lab(home, host, port, token, fmt)
        return
    from ..serve.server import require
    from ..ui.server import UiServer, built

    require()
    if not built():
        raise InvalidInput(
            "the mlo ui app is not built in this install: run `make labextension` (or use --lab)"
        )
    server = UiServer(home, token, host, port, root=os.getcwd())
    url = f"{server.url}/?token={token}"
    if fmt == "json":
        click.echo(json.dumps({"url": url, "workspace": str(home), "pid": os.getpid()}))
    else:
        echo(f"mlo ui: workspace {home}")
        echo(f"mlo ui: open {url}  (Ctrl-C stops it)")
    sys.stdout.flush()
    server.run()


def _lab(home, host: str, port: int, token: str, fmt: str) -> None:
    """JupyterLab on the workspace's folder with mlo's panel, run tabs and REST API."""
    if importlib.util.find_spec("jupyterlab") is None:
        raise InvalidInput("mlo ui --lab needs JupyterLab: pip install 'mlo-workbench[lab]'")
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
