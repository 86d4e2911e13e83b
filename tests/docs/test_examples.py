"""Every code block of README.md and docs/*.md runs as written (see docs_blocks.py for the markers): python in a
real IPython shell with ``%load_ext`` available, bash in the page's folder with this environment's ``mlo`` on the
PATH. A block that does not continue another starts from nothing: a fresh namespace in a fresh empty folder, no
workspace, as a reader pasting it into a new notebook would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from docs_blocks import blocks, groups, pages  # noqa: E402

PAGES = pages()


def _fresh_shell():
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ip = start_ipython() or get_ipython()
    ip.run_cell("%unload_ext mlo", store_history=False)
    ip.reset(new_session=False)
    return ip


def _run_python(ip, block) -> None:
    result = ip.run_cell(block.code, store_history=True)
    if not result.success:
        err = result.error_in_exec or result.error_before_exec
        pytest.fail(f"{block} failed: {type(err).__name__}: {err}\n{block.code}", pytrace=False)


def _run_bash(block, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{block} exited {proc.returncode}:\n{block.code}\nstdout: {proc.stdout[-2000:]}\n"
            f"stderr: {proc.stderr[-2000:]}",
            pytrace=False,
        )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_block_of_the_page_runs(page, tmp_path, monkeypatch):
    from mlo_state import reset as _reset_mlo

    for var in ("MLO_HOME", "MLO_STORE", "MLO_ARTIFACTS", "MLO_EXPERIMENT"):
        monkeypatch.delenv(var, raising=False)
    for n, group in enumerate(groups(page)):
        folder = tmp_path / f"g{n}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        _reset_mlo()
        ip = _fresh_shell()
        try:
            for block in group:
                if block.file is not None:
                    target = folder / block.file
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(block.code, encoding="utf-8")
                elif block.lang == "python":
                    _run_python(ip, block)
                else:
                    _run_bash(block, folder)
        finally:
            ip.run_cell("import mlo\nwhile mlo.active_run() is not None: mlo.end_run()", store_history=False)
            ip.run_cell("%unload_ext mlo", store_history=False)
            _reset_mlo()


def test_blocks_are_code_samples_or_outputs_and_skips_say_why():
    """Every fence names its language: code (python, bash, a file) or output (text); a skip says why."""
    for page in PAGES:
        for b in blocks(page):
            assert b.lang in ("python", "bash", "text") or b.file or b.skip, (
                f"{b}: ```{b.lang} (python, bash, text)"
            )
            if b.skip:
                assert len(b.skip) > 30, f"{b}: say why it is skipped and what runs it instead"


def test_the_readme_opens_with_make_demo_and_make_test_then_the_install_line():
    first = [b.code for b in blocks(PAGES[0])[:2]]
    assert first[0].startswith("make demo") and "\nmake test" in first[0]
    assert first[1].startswith("pip install mlo-workbench")
    head = PAGES[0].read_text(encoding="utf-8").splitlines()[:15]
    assert any("pip install mlo-workbench" in line for line in head)


def test_the_quickstart_notebook_is_the_quickstart_page():
    import nbformat

    sys.path.insert(0, str(PAGES[0].parent / "docs"))
    from notebook_from_page import notebook

    made = notebook(PAGES[0].parent / "docs" / "quickstart.md")
    kept = nbformat.read(PAGES[0].parent / "notebooks" / "00-quickstart.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in kept.cells] == [(c.cell_type, c.source) for c in made.cells], (
        "notebooks/00-quickstart.ipynb is out of date: make docs"
    )
