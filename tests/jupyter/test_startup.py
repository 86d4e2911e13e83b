"""What loading mlo costs: ``%load_ext mlo``, a pipeline stage's kernel hook and ``mlo runs`` on a new workspace
import none of the heavy libraries (pandas, pyarrow, SQLAlchemy, numpy) they do not need; each is loaded when a
command first uses it. Checked in fresh processes, since this test session has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlo

HEAVY = ("pandas", "pyarrow", "sqlalchemy", "numpy", "scipy", "sklearn", "papermill", "duckdb")


def _loaded(code: str, cwd: Path, env: dict | None = None) -> set[str]:
    """The heavy modules a fresh interpreter holds after running ``code`` (which prints nothing)."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        env={**base, "MLO_SYSTEM_METRICS": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


SHELL = (
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "shell = InteractiveShell.instance()\n"
    "shell.run_line_magic('load_ext', 'mlo')\n"
)


def test_loading_the_extension_and_running_cells_imports_nothing_heavy(tmp_path):
    mlo.init(tmp_path)
    code = SHELL + "assert shell.run_cell('x = 1').success\nassert shell.run_cell('%mlo help').success"
    assert _loaded(code, tmp_path) == set()


def test_magics_load_what_they_use_when_used(tmp_path):
    mlo.init(tmp_path)
    code = SHELL + (
        "assert shell.run_cell('%mlo start r').success\n"
        "assert shell.run_cell('%mlo metric acc=0.9').success\n"
        "assert shell.run_cell('%mlo end').success\n"
    )
    assert "sqlalchemy" in _loaded(code, tmp_path)  # the store, once a run is written


def test_import_mlo_and_the_cli_import_nothing_heavy(tmp_path):
    assert _loaded("import mlo, mlo.cli", tmp_path) == set()
    mlo.init(tmp_path)
    runs = "import sys\nfrom mlo.cli import main\ntry:\n    main(['runs'])\nexcept SystemExit:\n    pass"
    assert _loaded(runs, tmp_path) == {"sqlalchemy"}  # `mlo runs` on a new workspace: the store, no pandas


@pytest.mark.parametrize("journal", [False, True], ids=["alone", "in-a-pipeline"])
def test_a_stage_hook_opens_the_store_only_outside_a_pipeline(tmp_path, journal):
    """Started for a run alone, the hook attaches through the store (SQLAlchemy); in a pipeline, which names a
    journal, the hook and a first cell import nothing heavy and the cell waits in the journal."""
    mlo.init(tmp_path)
    code = "import mlo\nr = mlo.start_run('stage')\nprint(r.id)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    run_id = out.stdout.strip()
    hook = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "import mlo.jupyter.stage\n"
        "assert shell.run_cell('x = 1', store_history=True).success\n"
        "from mlo.tracking import session\n"
        f"assert session.attached_run_id() == {run_id!r}\n"
    )
    path = tmp_path / "stage.journal"
    env = {"MLO_RUN_ID": run_id, "MLO_SYSTEM_METRICS": "1"} | (
        {"MLO_STAGE_JOURNAL": str(path)} if journal else {}
    )
    assert _loaded(hook, tmp_path, env) == (set() if journal else {"sqlalchemy"})
    if journal:
        kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
        assert kinds[:2] == ["cell", "artifacts"]
    else:
        assert not path.exists() and [c.source for c in mlo.get_run(run_id).cells] == ["x = 1"]
