"""Several processes writing to one store, and processes that die with a run open."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import mlo


def _script(home: str, body: str) -> list[str]:
    code = f"import os; os.environ['MLO_HOME'] = {home!r}\nimport mlo\n" + textwrap.dedent(body)
    return [sys.executable, "-c", code]


def test_eight_processes_logging_into_one_sqlite_store(sqlite_ws):
    home = str(sqlite_ws.home)
    body = """
        import sys
        with mlo.start_run(f"worker-{sys.argv[1]}", experiment="load") as run:
            for i in range(5000):
                mlo.log_metric("x", float(i), step=i)
                if i % 500 == 499:
                    mlo.flush()  # many small concurrent transactions
            mlo.log_params({"worker": int(sys.argv[1])})
    """
    env = {**os.environ}
    procs = [
        subprocess.Popen(_script(home, body) + [str(i)], stderr=subprocess.PIPE, env=env) for i in range(8)
    ]
    errs = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errs
    assert not any("Traceback" in e or "locked" in e for e in errs), errs
    df = mlo.runs(experiment="load")
    assert len(df) == 8 and set(df.status) == {"finished"}
    assert sorted(df["params.worker"]) == list(range(8))
    for run_id in df.run_id:
        h = mlo.get_run(run_id).history("x")
        assert len(h) == 5000 and h.step.tolist() == list(range(5000))
        assert mlo.get_run(run_id).metrics["x"] == 4999.0


def test_sigkilled_process_leaves_a_killed_run_and_its_flushed_data(ws):
    body = """
        import time
        run = mlo.start_run("doomed")
        for i in range(100):
            mlo.log_metric("loss", 1.0 / (i + 1))
        mlo.flush()
        print(run.id, flush=True)
        time.sleep(120)
    """
    env = {**os.environ}
    victim = subprocess.Popen(_script(str(ws.home), body), stdout=subprocess.PIPE, env=env, text=True)
    survivor = subprocess.Popen(
        _script(str(ws.home), body.replace("doomed", "alive")), stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        run_id = victim.stdout.readline().strip()
        alive_id = survivor.stdout.readline().strip()
        assert mlo.get_run(run_id).status == "running"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        run = mlo.get_run(run_id)
        assert run.status == "killed"
        assert run.end_time is not None
        assert len(run.history("loss")) == 100
        assert mlo.get_run(alive_id).status == "running"  # a live owner is left alone
        assert set(mlo.runs(where="status = 'killed'").run_id) == {run_id}
    finally:
        for p in (victim, survivor):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_run_left_open_at_normal_exit_is_finished_and_crash_is_failed(ws):
    ok = subprocess.run(
        _script(str(ws.home), "r = mlo.start_run('open'); mlo.log_metric('m', 1.0); print(r.id)"),
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    crash = subprocess.run(
        _script(str(ws.home), "r = mlo.start_run('crash'); print(r.id, flush=True); 1/0"),
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    assert ok.returncode == 0 and crash.returncode == 1
    assert mlo.get_run(ok.stdout.strip()).status == "finished"
    assert mlo.get_run(ok.stdout.strip()).metrics == {"m": 1.0}
    assert mlo.get_run(crash.stdout.strip()).status == "failed"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_forked_child_logs_into_the_parents_run_without_ending_it(ws):
    with mlo.start_run("parent") as run:
        pid = os.fork()
        if pid == 0:  # child
            try:
                mlo.log_metric("from_child", 1.0)
                mlo.flush()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert run.status == "running"
    assert run.metrics["from_child"] == 1.0
