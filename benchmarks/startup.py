"""Start-up costs and vectorised logging: this checkout side by side with a baseline revision of mlo.

What it measures, each probe in a fresh interpreter (this venv's python), the median over the repeats, with the
baseline's ``src/`` put first on ``PYTHONPATH`` (``git archive`` of ``--baseline``, default ``main``):

1. ``%load_ext mlo`` over IPython's own start: an ``InteractiveShell`` is made, then the extension loaded and one
   cell run; the load + cell time is the figure (target ≤ 0.3 s).
2. ``mlo runs`` on a new, empty workspace: wall time of ``python -m mlo runs`` (target ≤ 0.3 s).
3. A pipeline stage over plain papermill (target ≤ 0.1 s): the 5 notebooks of the chain of
   ``benchmarks/pipeline.py`` through ``papermill.execute_notebook`` and through ``mlo.pipeline.run(force=True)``,
   taking turns in one process (real kernels, system metrics on as by default); the figure is the median of the
   differences of the back-to-back pairs, over 5. Beside it, the kernel hook alone: ``import mlo.jupyter.stage`` in a shell attached
   to a run (``MLO_RUN_ID``, with the journal a pipeline names), the time before the kernel can answer its
   client; and the hook plus a first cell kept in the history, straight after it with no client in between.
4. A fully cached re-run of a 5-stage pipeline (the same chain): wall time of ``python -m mlo pipeline run -q``
   after a first run (target ≤ 0.3 s).
5. Logging: 1,000,000 points through per-call ``log_metric`` then ``flush`` (what the baseline can do), and
   5,000,000 points as ten arrays through ``log_metric(key, values)`` then ``flush`` (this checkout), in points
   per second end to end.

Beside them: ``python -c pass`` and the import time of SQLAlchemy alone (the floor of any command that opens
the store), and the load average before and after.

    .venv/bin/python benchmarks/startup.py                   # about 2 minutes
    .venv/bin/python benchmarks/startup.py --repeats 3       # quicker
    .venv/bin/python benchmarks/startup.py --baseline HEAD~5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

LOAD_EXT = """
import time
t0 = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t1 = time.perf_counter()
shell.run_line_magic("load_ext", "mlo")
shell.run_cell("x = 1")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

STAGE_HOOK = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t = time.perf_counter()
import mlo.jupyter.stage
hook = time.perf_counter() - t
assert shell.run_cell("x = 1", store_history=True).success
from mlo.tracking import session
assert session.attached_run_id()
print(hook, time.perf_counter() - t)
"""

STAGES = """
import statistics, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import pipeline as chain  # benchmarks/pipeline.py: the 5 notebooks and plain papermill over them
import papermill  # noqa: F401 (imported before either side is timed)
import mlo.pipeline
folder, repeats = Path(sys.argv[1]), int(sys.argv[2])
out = folder / "papermill-out"
out.mkdir(exist_ok=True)
assert mlo.pipeline.run(folder / "pipeline.yaml", force=True, log=None).exit_code == 0  # warm both sides up
chain.papermill_baseline(folder, out)
plain, tracked = [], []
for i in range(repeats):
    for side in ("plain", "mlo") if i % 2 == 0 else ("mlo", "plain"):
        if side == "plain":
            plain.append(chain.papermill_baseline(folder, out)[0])
        else:
            t = time.perf_counter()
            assert mlo.pipeline.run(folder / "pipeline.yaml", force=True, log=None).exit_code == 0
            tracked.append(time.perf_counter() - t)
n = len(chain.STAGES)
# each repeat runs both sides back to back: the median of those pairs' differences, so one slow run of either
# side (a busy moment of the machine) does not move the figure as a difference of two medians would
print(statistics.median(plain) / n, statistics.median(m - p for m, p in zip(tracked, plain)) / n)
"""

LOGGING = """
import sys, time
import numpy as np
import mlo
mlo.init(".")
n = int(sys.argv[1])
values = np.random.default_rng(0).random(n)
with mlo.start_run("per-call"):
    listed = values.tolist()
    t = time.perf_counter()
    for v in listed:
        mlo.log_metric("loss", v)
    mlo.flush()
    per_call = n / (time.perf_counter() - t)
arrays = None
try:
    from mlo.tracking.metrics import is_series  # noqa: F401 (arrays are accepted from this revision on)
except ImportError:
    pass
else:
    m = 5 * n
    values = np.random.default_rng(1).random(m)
    with mlo.start_run("arrays"):
        t = time.perf_counter()
        for part in np.array_split(values, 10):
            mlo.log_metric("loss", part)
        mlo.flush()
        arrays = m / (time.perf_counter() - t)
print(per_call, arrays)
"""


def env_for(src: Path | None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLO_")}
    env["MLO_SYSTEM_METRICS"] = "0"
    if src is not None:
        env["PYTHONPATH"] = str(src)
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr}")
    return wall, out.stdout


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def side(name: str, src: Path | None, tmp: Path, repeats: int, points: int) -> dict:
    """Every figure for one side (``src`` None: this checkout as installed)."""
    print(f"  {name} …", flush=True)
    folder = tmp / name
    folder.mkdir()
    env = env_for(src)
    ws = folder / "empty"
    ws.mkdir()
    run([PY, "-m", "mlo", "init", "."], ws, env)
    out: dict = {}

    loads = [run([PY, "-c", LOAD_EXT], ws, env)[1].split() for _ in range(repeats)]
    out["ipython"] = median([float(a) for a, _ in loads])
    out["load_ext"] = median([float(b) for _, b in loads])
    out["mlo_runs"] = median([run([PY, "-m", "mlo", "runs"], ws, env)[0] for _ in range(repeats)])

    stage = folder / "stage"
    stage.mkdir()
    run([PY, "-m", "mlo", "init", "."], stage, env)
    _, rid = run([PY, "-c", "import mlo; print(mlo.start_run('s').id)"], stage, env)
    senv = env_for(src, MLO_RUN_ID=rid.strip(), MLO_STAGE_JOURNAL=str(stage / "stage.journal"))
    hooks = [run([PY, "-c", STAGE_HOOK], stage, senv)[1].split() for _ in range(repeats)]
    out["stage_hook"] = median([float(h) for h, _ in hooks])  # what delays the kernel's answer to its client
    out["stage_first_cell"] = median([float(c) for _, c in hooks])  # the hook and the first cell, in series

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import pipeline as pipeline_bench  # the 5-stage chain

    stages = folder / "stages"
    stages.mkdir()
    pipeline_bench.build_chain(stages)
    penv = env_for(src, MLO_HOME=str(stages / ".mlo"))
    penv.pop("MLO_SYSTEM_METRICS")  # stages as users run them: the kernel samples its run
    run([PY, "-m", "mlo", "init", "."], stages, penv)
    plain, over = run([PY, "-c", STAGES, str(stages), str(repeats), str(ROOT / "benchmarks")], stages, penv)[
        1
    ].split()
    out["papermill_stage"], out["stage_over_papermill"] = float(plain), float(over)

    chain = folder / "chain"
    chain.mkdir()
    pipeline_bench.build_chain(chain)
    cenv = env_for(src, MLO_HOME=str(chain / ".mlo"))
    run([PY, "-m", "mlo", "init", "."], chain, cenv)
    run([PY, "-m", "mlo", "pipeline", "run", "-q"], chain, cenv)  # the first run executes every stage
    out["cached_rerun"] = median(
        [run([PY, "-m", "mlo", "pipeline", "run", "-q"], chain, cenv)[0] for _ in range(repeats)]
    )

    logdir = folder / "logging"
    logdir.mkdir()
    per_call, arrays = run([PY, "-c", LOGGING, str(points)], logdir, env)[1].split()
    out["log_per_call"] = float(per_call)
    out["log_arrays"] = None if arrays == "None" else float(arrays)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="main", help="git revision to compare with (default: main)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--points", type=int, default=1_000_000, help="points logged per call (arrays: 5x)")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mlo-startup-") as tmpdir:
        tmp = Path(tmpdir)
        base_tree = tmp / "baseline-tree"  # the baseline's src/, unpacked from git (no worktree to clean up)
        base_tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", a.baseline, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base_tree)], input=archive, check=True)
        floor_pass = median([run([PY, "-c", "pass"], tmp, env_for(None))[0] for _ in range(a.repeats)])
        floor_sqla = median(
            [run([PY, "-c", "import sqlalchemy"], tmp, env_for(None))[0] for _ in range(a.repeats)]
        )
        print(f"sides: baseline {a.baseline} and this checkout, {a.repeats} repeats each")
        before = side("baseline", base_tree / "src", tmp, a.repeats, a.points)
        after = side("this", None, tmp, a.repeats, a.points)
    load_after = os.getloadavg()

    def s(v: float | None) -> str:
        return "—" if v is None else f"{v * 1000:,.0f} ms"

    def rate(v: float | None) -> str:
        return "—" if v is None else f"{v / 1e6:,.2f} M points/s"

    def x(b: float | None, t: float | None, higher: bool = False) -> str:
        if not b or not t:
            return "—"
        return f"{(t / b if higher else b / t):,.1f}x"

    rows = [
        ["IPython's own start (reference)", s(before["ipython"]), s(after["ipython"]), "", ""],
        ["%load_ext mlo + first cell, over IPython", s(before["load_ext"]), s(after["load_ext"]),
         x(before["load_ext"], after["load_ext"]), verdict(after["load_ext"] <= 0.3)],
        ["mlo runs, empty workspace", s(before["mlo_runs"]), s(after["mlo_runs"]),
         x(before["mlo_runs"], after["mlo_runs"]), verdict(after["mlo_runs"] <= 0.3)],
        ["plain papermill, per stage (the machine's limit)", s(before["papermill_stage"]),
         s(after["papermill_stage"]), "", ""],
        ["a pipeline stage over plain papermill", s(before["stage_over_papermill"]),
         s(after["stage_over_papermill"]), x(before["stage_over_papermill"], after["stage_over_papermill"]),
         verdict(after["stage_over_papermill"] <= 0.1)],
        ["stage kernel hook, before the kernel answers", s(before["stage_hook"]), s(after["stage_hook"]),
         x(before["stage_hook"], after["stage_hook"]), ""],
        ["stage hook + first cell, in series", s(before["stage_first_cell"]), s(after["stage_first_cell"]),
         x(before["stage_first_cell"], after["stage_first_cell"]), ""],
        ["cached 5-stage re-run, CLI", s(before["cached_rerun"]), s(after["cached_rerun"]),
         x(before["cached_rerun"], after["cached_rerun"]), verdict(after["cached_rerun"] <= 0.3)],
        ["log_metric per call + flush", rate(before["log_per_call"]), rate(after["log_per_call"]), "", ""],
        ["log_metric(key, array) + flush", "— (per call: " + rate(before["log_per_call"]) + ")",
         rate(after["log_arrays"]), x(before["log_per_call"], after["log_arrays"], higher=True),
         verdict((after["log_arrays"] or 0) >= 1e6)],
    ]  # fmt: skip
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); 2 shared cores")
    print(f"floors: python -c pass {s(floor_pass)}, python -c 'import sqlalchemy' {s(floor_sqla)}\n")
    print_table(["figure", f"baseline ({a.baseline})", "this checkout", "gain", "target"], rows)
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "baseline": a.baseline,
                    "before": before,
                    "after": after,
                    "floors": {"python": floor_pass, "sqlalchemy": floor_sqla},
                    "load": [load_before, load_after],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
