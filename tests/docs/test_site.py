"""The documentation site builds in strict mode: every page, every link between pages, every anchor, and an API
reference generated from the docstrings whose every `::: module` resolves (``make docs`` runs the same build)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strict import need

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_the_site_and_its_api_reference_build_without_a_warning(tmp_path):
    try:
        import material  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        need(False, "mkdocs-material and mkdocstrings are not installed (pip install 'mlo-workbench[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "site" / "reference" / "tracking" / "index.html").read_text(encoding="utf-8")
    for name in ("start_run", "runs", "delete_run", "purge"):
        assert 'id="mlo.tracking.' in page and name in page
    assert "Parameters" in page  # numpy docstrings rendered as tables
    for guide in ("quickstart", "tracking", "registry", "drift"):
        assert (tmp_path / "site" / guide / "index.html").is_file()
