"""The package as a stranger gets it: the wheel built from this checkout, installed into a fresh virtual
environment without extras, runs the quickstart notebook and ``mlo demo``; with ``[lab]`` JupyterLab finds the
panel enabled. The wheel is built and the environment made once for the module (the slow part, ~1 min)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from strict import need

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


def _run(args, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 600)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLO_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = (ROOT / "src/mlo/labextension/package.json").is_file()
    need(
        built or shutil.which("npm") is not None,
        "the lab extension is not built and npm is missing (make labextension)",
    )
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out, ROOT], env=_clean_env())
    need(proc.returncode == 0, f"could not build the wheel: {proc.stderr[-1500:]}")
    return next(out.glob("mlo_workbench-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh environment with the wheel and no extras."""
    path = tmp_path_factory.mktemp("venv") / "env"
    proc = _run([sys.executable, "-m", "venv", path])
    need(proc.returncode == 0, f"python -m venv failed: {proc.stderr[-500:]}")
    proc = _run([path / "bin/python", "-m", "pip", "install", "-q", wheel], env=_clean_env())
    need(proc.returncode == 0, f"pip could not install the wheel (no package index?): {proc.stderr[-1500:]}")
    return path


def test_the_wheel_carries_the_lab_extension_and_the_notebooks(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    share = "mlo_workbench-0.1.0.data/data/share/jupyter/labextensions/mlo-workbench/"
    assert {share + "package.json", share + "install.json", share + "static/style.js"} <= names
    assert any(n.startswith(share + "static/remoteEntry.") for n in names)
    assert {
        "mlo/examples/pipeline.yaml",
        "mlo/examples/00-quickstart.ipynb",
        "mlo/examples/02-train.ipynb",
    } <= names
    assert "mlo_workbench-0.1.0.data/data/etc/jupyter/jupyter_server_config.d/mlo.json" in names


def test_a_plain_install_pulls_no_lab_serve_or_dask_stack(venv):
    proc = _run([venv / "bin/python", "-m", "pip", "list", "--format", "json"])
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(proc.stdout)}
    assert "mlo-workbench" in installed
    assert not installed & {"jupyterlab", "jupyter-server", "starlette", "uvicorn", "dask", "distributed"}


def test_the_quickstart_notebook_runs_in_a_fresh_install(venv, tmp_path):
    notebook = tmp_path / "00-quickstart.ipynb"
    shutil.copy(ROOT / "notebooks/00-quickstart.ipynb", notebook)
    code = (
        "import nbformat, nbclient\n"
        f"nb = nbformat.read({str(notebook)!r}, as_version=4)\n"
        f"nbclient.NotebookClient(nb, timeout=300, resources={{'metadata': {{'path': {str(tmp_path)!r}}}}}).execute()\n"
        f"nbformat.write(nb, {str(notebook)!r})\n"
    )
    proc = _run([venv / "bin/python", "-c", code], cwd=tmp_path, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / ".mlo" / "mlo.db").is_file()


def test_mlo_demo_runs_from_anywhere_after_pip_install(venv, tmp_path):
    proc = _run([venv / "bin/mlo", "demo", "--format", "json"], cwd=tmp_path, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["exit_code"] == 0 and Path(result["directory"]) == tmp_path / "mlo-demo"
    proc = _run([venv / "bin/mlo", "models", "churn", "--format", "json"], cwd=tmp_path / "mlo-demo")
    assert proc.returncode == 0 and any("production" in (v["aliases"] or "") for v in json.loads(proc.stdout))


def test_with_the_lab_extra_jupyterlab_finds_the_panel_enabled(venv):
    proc = _run(
        [venv / "bin/python", "-m", "pip", "install", "-q", "jupyterlab>=4.2", "jupyter_server>=2.10"],
        env=_clean_env(),
    )
    need(proc.returncode == 0, f"could not install the lab extra: {proc.stderr[-1000:]}")
    proc = _run([venv / "bin/jupyter", "labextension", "list"], env=_clean_env())
    listing = proc.stdout + proc.stderr
    assert "mlo-workbench" in listing and "enabled" in listing and "OK" in listing, listing
    proc = _run([venv / "bin/jupyter", "server", "extension", "list"], env=_clean_env())
    listing = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert re.search(r"^\s*mlo enabled$", listing, re.M) and re.search(
        r"^\s*mlo [\d.]+ OK$", listing, re.M
    ), listing


def test_a_wheel_without_the_lab_extension_fails_to_build(tmp_path):
    """No built panel and no npm: the build stops and says so, rather than shipping a wheel without it."""
    src = tmp_path / "src-copy"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv*", "node_modules", "build", ".git", "labextension", "*.egg-info"
        ),
    )
    shutil.copytree(
        ROOT / "labextension", src / "labextension", ignore=shutil.ignore_patterns("node_modules", "lib")
    )
    assert not (src / "src/mlo/labextension").exists()
    bare = tmp_path / "bin"
    bare.mkdir()  # a PATH without node or npm
    env = _clean_env(PATH=f"{bare}{os.pathsep}{Path(sys.executable).parent}")
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp_path / "out", src], env=env)
    assert proc.returncode != 0
    assert not list((tmp_path / "out").glob("*.whl"))
    assert "npm" in proc.stdout + proc.stderr or "labextension" in proc.stdout + proc.stderr
