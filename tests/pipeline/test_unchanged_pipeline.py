"""A fully cached pipeline is answered with the standard library (no SQLAlchemy, no pipeline run recorded), and
only when nothing changed: an edited dep, parameter or notebook, an out gone from disk or from the blob store, a
damaged cache row or database, another schema or PostgreSQL all take the full path, which decides as before."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from notebooks_on_disk import write_notebook

import mlo
from mlo import workspace
from mlo.cli import main
from mlo.pipeline import plan, run, spec, unchanged
from mlo.store import schema


@pytest.fixture
def chain(sqlite_ws, tmp_path):
    """Two stdlib stages: make reads raw.txt and writes mid.txt, use reads mid.txt and writes end.txt."""
    (tmp_path / "raw.txt").write_text("3")
    write_notebook(tmp_path / "make.ipynb", "open('mid.txt', 'w').write(str(int(open('raw.txt').read()) * k))",
                   params="k = 2")  # fmt: skip
    write_notebook(tmp_path / "use.ipynb", "open('end.txt', 'w').write(open('mid.txt').read() + '!')")
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent("""
        stages:
          make: {notebook: make.ipynb, deps: [raw.txt], outs: [mid.txt], params: {k: 2}}
          use: {notebook: use.ipynb, deps: [mid.txt], outs: [end.txt]}
        """)
    )
    first = run(tmp_path / "pipeline.yaml", log=None)
    assert first.exit_code == 0, first.tasks
    return tmp_path


def fast(folder):
    pipeline = spec.load(folder / "pipeline.yaml")
    return unchanged.all_cached(
        workspace.current(), pipeline.root, plan.expand(pipeline, pipeline.order(), {})
    )


def statuses(result):
    return {t.name: t.status for t in result.tasks}


def test_an_unchanged_pipeline_is_answered_without_a_pipeline_run(chain, monkeypatch):
    pipelines = len(mlo.runs(where="name like 'pipeline:%'"))
    lines = []
    again = run(chain / "pipeline.yaml", log=lines.append)
    assert statuses(again) == {"make": "cached", "use": "cached"} and again.run_id is None
    assert lines[0] == "pipeline pipeline.yaml: 2 tasks, all cached"
    assert all(t.message.startswith("cached (run ") for t in again.tasks)
    # the tasks name the runs that made their outs, with the same short ids as the full path
    assert len(mlo.runs(where="name like 'pipeline:%'")) == pipelines
    monkeypatch.setenv("MLO_FAST_CACHE", "0")
    full = run(chain / "pipeline.yaml", log=None)
    assert full.run_id is not None and statuses(full) == statuses(again)
    assert [(t.run_id, t.key) for t in full.tasks] == [(t.run_id, t.key) for t in again.tasks]
    # the same short ids, unless the full path's new pipeline run made one longer (ids are time-ordered)
    for fast_t, full_t in zip(again.tasks, full.tasks, strict=True):
        short = fast_t.message.removeprefix("cached (run ").removesuffix(")")
        assert fast_t.run_id.startswith(short) and full_t.message.startswith(f"cached (run {short}")


def test_an_edited_dep_param_or_notebook_runs_again(chain):
    (chain / "raw.txt").write_text("5")
    assert fast(chain) is None
    r = run(chain / "pipeline.yaml", log=None)
    assert statuses(r) == {"make": "ok", "use": "ok"} and (chain / "end.txt").read_text() == "10!"
    assert fast(chain) is not None

    r = run(chain / "pipeline.yaml", log=None, params=["make.k=3"])
    assert statuses(r) == {"make": "ok", "use": "ok"} and (chain / "end.txt").read_text() == "15!"

    write_notebook(chain / "use.ipynb", "open('end.txt', 'w').write(open('mid.txt').read() + '?')")
    assert fast(chain) is None
    r = run(chain / "pipeline.yaml", log=None)
    assert statuses(r) == {"make": "cached", "use": "ok"} and (chain / "end.txt").read_text() == "10?"


def test_an_out_gone_from_disk_or_edited_takes_the_full_path_which_restores_it(chain):
    (chain / "end.txt").unlink()
    assert fast(chain) is None
    r = run(chain / "pipeline.yaml", log=None)
    assert statuses(r) == {"make": "cached", "use": "cached"} and r.run_id is not None
    assert (chain / "end.txt").read_text() == "6!"
    (chain / "mid.txt").write_text("7")  # same size, other bytes
    assert fast(chain) is None
    assert statuses(run(chain / "pipeline.yaml", log=None)) == {"make": "cached", "use": "cached"}
    assert (chain / "mid.txt").read_text() == "6"


def test_a_blob_gone_from_the_store_is_no_hit(chain):
    with sqlite3.connect(workspace.current().home / "mlo.db") as conn:
        outs = json.loads(conn.execute("SELECT outs FROM stage_cache WHERE stage = 'use'").fetchone()[0])
    workspace.current().blobs.path(outs[0]["blob"]).unlink()
    assert fast(chain) is None
    r = run(chain / "pipeline.yaml", log=None)
    assert statuses(r) == {"make": "cached", "use": "ok"}


def test_a_damaged_cache_row_or_database_is_never_a_hit(chain):
    db = workspace.current().home / "mlo.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stage_cache SET outs = 'not json' WHERE stage = 'use'")
    assert fast(chain) is None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stage_cache SET outs = '[{\"path\": 1}]' WHERE stage = 'use'")
    assert fast(chain) is None
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE mlo_meta SET value = '999' WHERE key = 'schema_version'")
    assert fast(chain) is None  # a schema this mlo does not know: the full path says so (exit 3)
    workspace.reset_cache()  # as a new process would open it
    r = CliRunner().invoke(main, ["pipeline", "run", str(chain / "pipeline.yaml"), "-q"])
    assert r.exit_code == 3 and "schema version 999" in r.stderr, r.output


def test_the_full_path_takes_a_damaged_cache_row_for_a_miss(chain):
    with sqlite3.connect(workspace.current().home / "mlo.db") as conn:
        conn.execute("UPDATE stage_cache SET outs = 'not json' WHERE stage = 'make'")
        conn.execute("UPDATE stage_cache SET outs = '[{\"path\": 1}]' WHERE stage = 'use'")
    r = run(chain / "pipeline.yaml", log=None)
    assert statuses(r) == {"make": "ok", "use": "ok"} and (chain / "end.txt").read_text() == "6!"
    assert fast(chain) is not None  # executing them wrote the rows again


def test_a_garbage_database_file_is_no_hit(chain):
    workspace.reset_cache()
    db = workspace.current().home / "mlo.db"
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    assert fast(chain) is None


def test_the_fast_path_knows_the_schema_and_leaves_postgresql_to_the_full_path(chain):
    assert (
        unchanged.KNOWN_SCHEMA == schema.SCHEMA_VERSION
    )  # bump both, after checking the queries in unchanged.py
    ws = workspace.current()
    pg = workspace.Workspace(ws.home, "postgresql+psycopg://u@127.0.0.1:1/none", ws.artifacts_url, ws.config)
    pipeline = spec.load(chain / "pipeline.yaml")
    assert unchanged.all_cached(pg, pipeline.root, plan.expand(pipeline, pipeline.order(), {})) is None


def test_the_cli_says_the_same_and_exits_0(chain, monkeypatch):
    cli = CliRunner()
    r = cli.invoke(main, ["pipeline", "run", str(chain / "pipeline.yaml"), "-q"])
    assert r.exit_code == 0 and r.stdout.startswith("pipeline passed: 2 cached in "), r.output
    r = cli.invoke(main, ["pipeline", "run", str(chain / "pipeline.yaml"), "--format", "json"])
    doc = json.loads(r.stdout)
    assert (
        r.exit_code == 0 and doc["exit_code"] == 0 and [t["status"] for t in doc["tasks"]] == ["cached"] * 2
    )
    monkeypatch.setenv("MLO_FAST_CACHE", "0")  # off: the full path, which records a pipeline run
    r = cli.invoke(main, ["pipeline", "run", str(chain / "pipeline.yaml"), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["run_id"] is not None


def test_the_hit_path_imports_nothing_heavy(chain):
    code = (
        "import sys\nfrom mlo.cli import main\n"
        "try:\n    main(['pipeline', 'run', '-q'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = ('sqlalchemy', 'pandas', 'numpy', 'pyarrow', 'papermill', 'nbformat', 'psutil')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=chain, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
