"""`mlo gc` removes abandoned evaluation checkpoints: killed evaluations idle for 7 days, or unreadable files,
and keeps the one still resumable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import mlo

DAY = 86400


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlo", *args], capture_output=True, text=True, timeout=120)


STOP: dict = {"at": None}
CALLS: list = []


def echo(q):
    CALLS.append(q)
    if q == STOP["at"]:
        raise mlo.InvalidInput("stopped here")
    return q


def _killed_eval(data: list[dict], stop_at: str) -> None:
    """An evaluation that ends on row ``stop_at``, leaving its checkpoint behind."""
    STOP["at"] = stop_at
    with pytest.raises(mlo.InvalidInput, match="stopped here"):
        mlo.llm.evaluate(echo, data, ["exact"])


def _age(path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_gc_removes_abandoned_checkpoints_and_keeps_a_resumable_one(sqlite_ws):
    folder = sqlite_ws.home / "evals"
    old_data = [{"q": w, "expected": w} for w in ("a", "b", "c")]
    _killed_eval(old_data, "c")
    (old,) = folder.glob("*.jsonl")
    _age(old, 8 * DAY)
    new_data = [{"q": w, "expected": w} for w in ("x", "y", "z")]
    _killed_eval(new_data, "z")
    (fresh,) = [p for p in folder.glob("*.jsonl") if p != old]
    torn = folder / "0123456789abcdef01234567.jsonl"
    torn.write_text('{"index": 0, "rep')  # killed in its first line: nothing to resume
    _age(torn, 2 * 3600)

    dry = cli("gc", "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    step = next(s for s in json.loads(dry.stdout)["steps"] if s["name"] == "abandoned eval checkpoints")
    assert (step["found"], step["removed"]) == (2, 2) and "2 rows of killed evaluations" in step["note"]
    assert old.exists() and torn.exists()  # a dry run removes nothing

    listed = mlo.llm.gc_checkpoints(dry_run=True)
    assert sorted(c["why"] for c in listed["checkpoints"]) == ["idle", "unreadable"]
    assert mlo.llm.gc_checkpoints("30d", dry_run=True)["found"] == 1  # only the unreadable one

    done = cli("gc")
    assert done.returncode == 0, done.stderr
    assert "abandoned eval checkpoints" in done.stdout and "removed 2" in done.stdout
    assert not old.exists() and not torn.exists() and fresh.exists()

    # the kept checkpoint still resumes: only the row that failed is called again
    STOP["at"] = None
    CALLS.clear()
    rep = mlo.llm.evaluate(echo, new_data, ["exact"])
    assert CALLS == ["z"] and rep.timing["resumed_rows"] == 2 and not fresh.exists()
    assert cli("gc", "--dry-run", "--format", "json").returncode == 0
    with pytest.raises(mlo.InvalidInput, match="older_than"):
        mlo.llm.gc_checkpoints("soon")
