"""``mlo gc`` removes what training frames leave behind: DuckDB spill folders of killed processes and feature
cache files of an older format, never a folder a live process holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
from click.testing import CliRunner
from feature_data import transactions

import mlo
from mlo.cli import main
from mlo.store.gc import collect

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mlo.features.spill import spill_folder

    with spill_folder(Path(sys.argv[1])) as folder:
        (folder / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 4096)
        print(folder, flush=True)
        time.sleep(120)
    """
)


def _holder(home) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read()
    return proc, line


def _age(path, seconds: float = 7200) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_gc_removes_spill_folders_of_killed_processes_and_old_cache_files(sqlite_ws):
    home = sqlite_ws.home
    mlo.snapshot(transactions(), "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts",
                    transform=lambda df: df[["amount"]])  # fmt: skip
    ents = pd.DataFrame({"customer_id": [1], "ts": pd.to_datetime(["2024-03-01"])})
    first = mlo.features.training_frame(ents, ["spend"], snapshot=None)
    current = list((home / "features").glob("*.s1.parquet"))
    assert len(current) == 1
    old = home / "features" / current[0].name.replace(".s1.parquet", ".parquet")
    old.write_bytes(b"PAR1 an older cache format")
    half = home / "features" / ".tmp-killed.parquet"
    half.write_bytes(b"half")
    _age(half)
    fresh = home / "features" / ".tmp-writing.parquet"  # maybe a view being computed right now
    fresh.write_bytes(b"now")

    dead, dead_folder = _holder(home)
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    live, live_folder = _holder(home)
    try:
        for folder in (dead_folder, live_folder):
            _age(folder)
        young = home / "tmp" / "duckdb-just-made"  # made a moment ago, its owner not yet locked in
        young.mkdir()

        out = CliRunner().invoke(main, ["gc", "--dry-run"], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        assert "feature leftovers" in out.output and "found 6, would remove 3" in out.output
        assert os.path.isdir(dead_folder) and old.exists() and half.exists()

        step = collect(sqlite_ws).step("feature leftovers")
        assert (step.found, step.removed, step.kept) == (6, 3, 3)
        assert not os.path.exists(dead_folder) and not old.exists() and not half.exists()
        assert os.path.isdir(live_folder) and young.is_dir() and fresh.exists() and current[0].exists()
    finally:
        live.kill()
        live.wait()
    # the cache that is left still serves, and a new training frame leaves no folder of its own
    pd.testing.assert_frame_equal(mlo.features.training_frame(ents, ["spend"], snapshot=None), first)
    left = sorted(p.name for p in (home / "tmp").glob("duckdb-*"))
    assert left == sorted(["duckdb-just-made", os.path.basename(live_folder)])


KILLED = textwrap.dedent(
    """
    import sys
    import mlo

    mlo.features.training_frame(sys.argv[1], ["spend"], to=sys.argv[2], snapshot=None, memory_limit="64MB")
    """
)


def test_a_training_frame_killed_mid_join_leaves_a_folder_gc_removes(sqlite_ws, tmp_path):
    import numpy as np

    mlo.snapshot(transactions(n_customers=2000, per=200), "transactions")
    mlo.FeatureView("spend", source="transactions", entity="customer_id", timestamp="ts",
                    transform=lambda df: df[["amount", "rate"]])  # fmt: skip
    rng = np.random.default_rng(0)
    n = 2_000_000
    pd.DataFrame(
        {
            "customer_id": rng.integers(1, 2001, n),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        }
    ).to_parquet(tmp_path / "ents.parquet", index=False)
    env = {**os.environ, "MLO_FEATURE_VIEW_MB": "0"}  # the view over the budget: DuckDB joins it
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path / "ents.parquet"), str(tmp_path / "out.parquet")],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    tmp = sqlite_ws.home / "tmp"
    deadline = time.monotonic() + 120
    try:
        while not list(tmp.glob("duckdb-*/asof-entities.parquet")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    (left,) = tmp.glob("duckdb-*")
    assert (left / "owner").exists() and not (tmp_path / "out.parquet").exists()
    assert collect(sqlite_ws, dry_run=True).step("feature leftovers").kept == 1  # a minute's grace
    _age(left)
    step = collect(sqlite_ws).step("feature leftovers")
    assert (step.removed, step.kept) == (1, 0) and not left.exists()
