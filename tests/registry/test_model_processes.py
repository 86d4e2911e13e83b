"""Several processes registering versions of one model and moving one alias at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import mlo

PROCESSES = 4
EACH = 4


def test_concurrent_registrations_get_distinct_versions_and_a_consistent_audit_log(ws, tmp_path):
    go = tmp_path / "go"
    body = textwrap.dedent(
        f"""
        import os, sys, time
        import mlo
        worker = int(sys.argv[1])
        open(os.path.join({str(tmp_path)!r}, f"ready-{{worker}}"), "w").close()
        while not os.path.exists({str(go)!r}):  # start together
            time.sleep(0.005)
        versions = []
        for i in range(EACH):
            mv = mlo.register_model({{"worker": worker, "i": i}}, "shared", tags={{"worker": worker}})
            mlo.set_alias("shared", "staging", mv.version)
            versions.append(mv.version)
        print(" ".join(map(str, versions)))
        """
    ).replace("EACH", str(EACH))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", body, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for i in range(PROCESSES)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < PROCESSES and time.monotonic() < deadline:
        time.sleep(0.02)  # every process has imported mlo: now they race
    go.touch()
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, [e for _, e in outs]

    got = [int(v) for out, _ in outs for v in out.split()]
    n = PROCESSES * EACH
    assert sorted(got) == list(range(1, n + 1))  # distinct, no gaps
    for out, _ in outs:  # each process saw its own versions grow
        mine = [int(v) for v in out.split()]
        assert mine == sorted(mine)

    df = mlo.models("shared")
    assert sorted(df.version) == list(range(1, n + 1))
    for version in (1, n):  # each version holds what its process stored
        mv = mlo.get_model_version("shared", version)
        assert mlo.load_model(mv.ref, trust=True).raw["worker"] == int(mv.tags["worker"])

    log = mlo.audit("shared")
    assert (log.action == "register").sum() == n
    moves = log[log.action == "set_alias"]
    # the alias moved under the model's lock: every change starts where the previous one ended
    assert moves.from_version.iloc[0] is None or moves.from_version.isna().iloc[0]
    assert moves.from_version.iloc[1:].tolist() == moves.to_version.iloc[:-1].tolist()
    assert mlo.get_model_version("shared@staging").version == moves.to_version.iloc[-1]
    ws_events = ws.models.events("shared")
    assert [e.seq for e in ws_events] == list(range(1, len(ws_events) + 1))


def test_concurrent_policy_changes_all_land_in_order(ws):
    """Workspace-wide events have no row to lock: on PostgreSQL two writers can pick the same sequence number,
    and the registry retries the loser instead of failing."""
    import threading

    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(8):
                mlo.set_policy(f"stage-{worker}", validation={"max_age_days": worker * 10 + i + 1})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    events = ws.models.events("*")
    assert [e.seq for e in events] == list(range(1, 33))
    assert {e.details["rules"]["validation"]["max_age_days"] for e in events} == {
        float(w * 10 + i + 1) for w in range(4) for i in range(8)
    }
