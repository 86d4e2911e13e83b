"""The JupyterLab extension in a real browser: a throwaway workspace with a few runs and a model, a real
``jupyter lab`` serving it, and Debian's chromium driven by Playwright. Nothing here downloads a browser.

On a failure the test's screenshot and the page's console log land in ``build/test-artifacts/``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strict import need

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
BUILT = ROOT / "src" / "mlo" / "labextension" / "package.json"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# the workspace the tests look at: a sweep longer than a page, two small experiments with captured cells and an
# artifact, and a model with an alias
SEED = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import mlo

    mlo.init(".")
    for i in range(105):
        with mlo.start_run(f"sweep-{i:03d}", experiment="sweep", params={"i": i}):
            mlo.log_metric("score", i / 100)
    Path("notes.txt").write_text("trained on the March extract")
    ids = {}
    for C, auc in ((0.1, 0.71), (1.0, 0.84), (10.0, 0.79)):
        name = f"logreg-C{C}"
        with mlo.start_run(name, experiment="churn", params={"C": C, "penalty": "l2"}) as run:
            mlo.log_metric("auc", auc)
            mlo.log_metric("loss", round(1 - auc, 3))
            mlo.record_cell(f"model = LogisticRegression(C={C}).fit(X, y)")
            mlo.record_cell(f"auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])  # {auc}")
            if C == 1.0:
                mlo.log_artifact("notes.txt")
                best = run
        ids[name] = run.id
    with mlo.start_run("forest", experiment="fraud", params={"n_estimators": 200}) as run:
        mlo.log_metric("recall", 0.66)
    ids["forest"] = run.id
    mlo.register_model(lambda rows: [0 for _ in rows], "churn-model", alias="production", run=best)
    json.dump(ids, sys.stdout)
    """
)

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "first",
            "metadata": {},
            "outputs": [],
            "source": "x = 1",
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running ``jupyter lab`` on a seeded workspace."""

    root: Path
    url: str
    token: str
    env: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)

    def page_url(self, workspace: str, path: str = "") -> str:
        """A fresh JupyterLab workspace (no layout carried over from another test), opening ``path``."""
        tree = f"/tree/{path}" if path else ""
        return f"{self.url}/lab/workspaces/{workspace}{tree}?reset&token={self.token}"

    def python(self, code: str) -> str:
        """Run Python against the workspace in a separate process (as a notebook elsewhere would)."""
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout


@pytest.fixture(scope="module")
def lab(request):
    """``jupyter lab`` on a workspace seeded by the test module's ``LAB_SEED`` (default: ``SEED``), a script
    run in the workspace folder that prints a JSON object (kept as ``lab.runs``), with the module's
    ``LAB_CONFIG`` (if any) as the workspace's ``mlo.toml``."""
    need(
        CHROMIUM.exists(),
        f"{CHROMIUM} is missing (apt-get install chromium; make system-deps does it as root)",
    )
    try:
        import playwright  # noqa: F401
    except ImportError:
        need(False, "the playwright package is not installed (pip install -e '.[dev]')")
    need(
        BUILT.exists(), f"the JupyterLab extension is not built ({BUILT} is missing): run `make labextension`"
    )
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        need(False, "jupyterlab is not installed (pip install -e '.[lab]')")

    root = Path(tempfile.mkdtemp(prefix="mlo-lab-"))
    private = root / ".jupyter-private"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLO_", "JUPYTER_", "JPY_")) and k not in ("IPYTHONDIR", "PYTEST_CURRENT_TEST")
    }
    env.update(
        MLO_HOME=str(root / ".mlo"),
        JUPYTER_CONFIG_DIR=str(private / "config"),
        JUPYTER_RUNTIME_DIR=str(private / "runtime"),
        JUPYTER_DATA_DIR=str(private / "data"),
        IPYTHONDIR=str(private / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    # no "receive Jupyter news?" toast covering the page
    labconfig = private / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    (root / "scratch.ipynb").write_text(json.dumps(NOTEBOOK, indent=1))

    port, token = _free_port(), secrets.token_hex(16)
    lab = Lab(root=root, url=f"http://127.0.0.1:{port}", token=token, env=env)
    lab.runs = json.loads(lab.python(getattr(request.module, "LAB_SEED", SEED)))
    if hasattr(request.module, "LAB_CONFIG"):  # the workspace's mlo.toml, read when the server opens it
        (root / ".mlo" / "mlo.toml").write_text(request.module.LAB_CONFIG)

    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(root / "jupyter.log", "wb")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{_tail(root / 'jupyter.log')}")
            try:
                with urllib.request.urlopen(f"{lab.url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within 60 s:\n{_tail(root / 'jupyter.log')}")
            time.sleep(0.2)
        yield lab
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _tail(path: Path, size: int = 4000) -> str:
    return path.read_bytes()[-size:].decode(errors="replace")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context and page; on failure, its screenshot and console log are kept."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as exc:  # the page may be gone; the log still helps
            console.append(f"[screenshot failed] {exc}")
        (ARTIFACTS / f"{name}.console.log").write_text("\n".join(console) + "\n")
    context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
