"""Notebook pipeline speed of mlo, side by side with plain papermill and the bare interpreter.

What it measures (each scenario in a fresh process, temporary folder and workspace, ``MLO_HOME``):

1. Cached re-run: a 5-stage pipeline of small notebooks that read and write files (prepare → features, split →
   train → report, with deps and outs) is executed once, then re-run with nothing changed: every stage is
   restored from the run cache and no kernel starts. Timed as ``mlo pipeline run -q`` in a subprocess (wall clock
   and CPU time, interpreter start included) and as the in-process ``mlo.pipeline.run(...)`` call, in rounds with
   ``python -c pass``, ``python -c "import mlo.cli"``, ``python -c "import mlo.cli, mlo.pipeline.run"`` and a probe
   that runs the CLI's code with time stamps between its phases. Target: ≤ 0.3 s end to end (issue 23).
2. Per-stage overhead: the same 5 notebooks through plain ``papermill.execute_notebook`` in one process (the
   baseline) and through ``mlo.pipeline.run(force=True, jobs=1)``, taking turns; the overhead is
   (mlo − papermill) / 5 from the median totals, from each stage's median time on each side (so that a kernel
   that stalls for seconds, which happens on either side under load, does not decide the figure) and in CPU time;
   split into mlo's bookkeeping (outside papermill) and the kernel's start, ready and shutdown phases on each side.
   Target: ≤ 0.1 s per stage (issue 23).
3. Parallel stages: 8 independent notebooks that each sleep 2 s, with ``jobs=1`` and ``jobs=4`` (what
   ``mlo pipeline run --jobs 4`` calls), taking turns. Target: ≥ 2.5x faster with 4 jobs on 2 cores.

When ``dvc`` is on the PATH (or in the venv), the same 5 stages also go into a ``dvc.yaml`` (each stage runs
papermill's CLI) and fully cached ``dvc repro -q`` and ``mlo pipeline run -q`` take turns in one folder; DVC is
never installed or required by this script.

Run from the repository root:

    .venv/bin/python benchmarks/pipeline.py            # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/pipeline.py --quick    # fewer repeats, about 2 minutes
    .venv/bin/python benchmarks/pipeline.py --json out.json

Only the standard library is imported at module level; the scenarios import mlo in their own processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SCENARIOS = ["cached", "overhead", "jobs"]
SCENARIO_TIMEOUT = 900  # seconds

SIZES = {
    "full": {"cached_repeats": 7, "overhead_repeats": 5, "jobs_repeats": 3},
    "quick": {"cached_repeats": 3, "overhead_repeats": 2, "jobs_repeats": 1},
}
SLEEP_NOTEBOOKS, SLEEP_SECONDS, JOBS = 8, 2, 4

TARGET_CACHED_S = 0.3
TARGET_OVERHEAD_S = 0.1
TARGET_SPEEDUP = 2.5

now = time.perf_counter


# -- the pipelines -------------------------------------------------------------------------------------------------
# name: (parameters cell, code, deps, outs, params in pipeline.yaml). Standard library only, so the kernels do
# the same small amount of work under papermill alone and under mlo.
STAGES = {
    "prepare": (
        "rows = 400",
        """
        import csv, os
        os.makedirs("data", exist_ok=True)
        with open("raw.csv", newline="") as fh:
            raw = list(csv.DictReader(fh))
        clean = [r for r in raw[:rows] if r["y"] != ""]
        with open("data/clean.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["x", "y"])
            writer.writeheader()
            writer.writerows(clean)
        len(clean)
        """,
        ["raw.csv"],
        ["data/clean.csv"],
        {},
    ),
    "features": (
        "scale = 10.0",
        """
        import csv, json
        with open("data/clean.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        feats = [{"x": float(r["x"]) / scale, "y": float(r["y"])} for r in rows]
        with open("data/features.json", "w") as fh:
            json.dump(feats, fh)
        """,
        ["data/clean.csv"],
        ["data/features.json"],
        {},
    ),
    "split": (
        "test_every = 4",
        """
        import csv, json
        with open("data/clean.csv", newline="") as fh:
            n = sum(1 for _ in csv.DictReader(fh))
        test = [i for i in range(n) if i % test_every == 0]
        with open("data/split.json", "w") as fh:
            json.dump({"train": [i for i in range(n) if i % test_every], "test": test}, fh)
        """,
        ["data/clean.csv"],
        ["data/split.json"],
        {},
    ),
    "train": (
        "alpha = 1.0",
        """
        import json, os
        feats = json.load(open("data/features.json"))
        split = json.load(open("data/split.json"))
        xs = [feats[i]["x"] for i in split["train"]]
        ys = [feats[i]["y"] for i in split["train"]]
        w = sum(x * y for x, y in zip(xs, ys)) / (sum(x * x for x in xs) + alpha)  # ridge, one feature
        os.makedirs("models", exist_ok=True)
        with open("models/model.json", "w") as fh:
            json.dump({"w": w, "alpha": alpha}, fh)
        w
        """,
        ["data/features.json", "data/split.json"],
        ["models/model.json"],
        {"alpha": 0.5},
    ),
    "report": (
        None,
        """
        import json, os
        feats = json.load(open("data/features.json"))
        test = json.load(open("data/split.json"))["test"]
        w = json.load(open("models/model.json"))["w"]
        mse = sum((feats[i]["y"] - w * feats[i]["x"]) ** 2 for i in test) / len(test)
        os.makedirs("reports", exist_ok=True)
        with open("reports/metrics.json", "w") as fh:
            json.dump({"mse": mse, "n_test": len(test)}, fh)
        print(f"mse {mse:.3f}")
        """,
        ["data/features.json", "data/split.json", "models/model.json"],
        ["reports/metrics.json"],
        {},
    ),
}

SLEEP_CODE = """
import time
time.sleep(seconds)
seconds
"""


def write_notebook(path: Path, code: str, params: str | None) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(code).strip()))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def build_chain(folder: Path) -> Path:
    """The 5-stage pipeline and its input file; returns the pipeline file."""
    (folder / "raw.csv").write_text("x,y\n" + "".join(f"{i},{(3 * i) % 17 + i / 10}\n" for i in range(500)))
    lines = ["experiment: bench-pipeline", "stages:"]
    for name, (params_cell, code, deps, outs, params) in STAGES.items():
        write_notebook(folder / "nb" / f"{name}.ipynb", code, params_cell)
        lines += [f"  {name}:", f"    notebook: nb/{name}.ipynb"]
        lines += [f"    deps: {json.dumps(deps)}", f"    outs: {json.dumps(outs)}"]
        if params:
            lines.append(f"    params: {json.dumps(params)}")
    (folder / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return folder / "pipeline.yaml"


def build_sleepers(folder: Path) -> Path:
    """8 independent notebooks that sleep 2 s each."""
    lines = ["experiment: bench-jobs", "stages:"]
    for i in range(SLEEP_NOTEBOOKS):
        write_notebook(folder / "nb" / f"sleep{i}.ipynb", SLEEP_CODE, f"seconds = {SLEEP_SECONDS}")
        lines += [f"  sleep{i}:", f"    notebook: nb/sleep{i}.ipynb"]
    (folder / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return folder / "pipeline.yaml"


# -- helpers -------------------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def mlo_command() -> list[str]:
    exe = VENV_BIN / "mlo"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mlo"]


def run_timed(
    cmd: list[str], cwd: Path | None = None, env: dict | None = None
) -> tuple[float, float, str, str]:
    """Wall-clock and CPU seconds (user + system) of one subprocess, with its stdout and stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = now()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = now() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout, proc.stderr


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, all its threads, and its children that have been waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def summarize(walls: list[float], cpus: list[float]) -> dict:
    return {
        "median_s": statistics.median(walls),
        "times_s": walls,
        "cpu_median_s": statistics.median(cpus),
        "cpu_s": cpus,
    }


class StepTimer:
    """Time calls of named functions while the block runs, from any thread (wrapping keeps the real code path; a
    function that has been renamed is simply absent from the split)."""

    def __init__(self):
        self.durations: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._patches: list[tuple[object, str, object]] = []

    @property
    def seconds(self) -> dict[str, float]:
        return {k: sum(v) for k, v in self.durations.items()}

    def calls(self, label: str) -> int:
        return len(self.durations.get(label, []))

    def _record(self, label: str, seconds: float) -> None:
        with self._lock:
            self.durations[label].append(seconds)

    def wrap(self, owner, attr: str, label: str) -> None:
        original = getattr(owner, attr, None)
        if original is None:
            return
        self.durations.setdefault(label, [])
        record = self._record

        def timed(*args, **kwargs):
            t0 = now()
            try:
                return original(*args, **kwargs)
            finally:
                record(label, now() - t0)

        self._patches.append((owner, attr, original))
        setattr(owner, attr, timed)

    def reset(self) -> None:
        with self._lock:
            for label in self.durations:
                self.durations[label] = []

    def __enter__(self) -> StepTimer:
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, original in reversed(self._patches):
            setattr(owner, attr, original)
        self._patches.clear()


KERNEL_PHASES = ["kernel start", "kernel ready", "kernel shutdown"]


def instrument_kernels(timer: StepTimer) -> None:
    """Inside papermill: launching the kernel process, waiting until it answers, shutting it down."""
    from nbclient import NotebookClient

    # papermill's client runs nbclient's synchronous entry points (each wraps its async twin)
    timer.wrap(NotebookClient, "start_new_kernel", "kernel start")
    timer.wrap(NotebookClient, "start_new_kernel_client", "kernel ready")
    timer.wrap(NotebookClient, "_cleanup_kernel", "kernel shutdown")


def instrument(timer: StepTimer) -> None:
    """The steps of a pipeline run, as ``mlo.pipeline.run`` calls them (none of them nests inside another)."""
    import papermill

    from mlo import workspace
    from mlo.data import snapshots
    from mlo.pipeline import execute, plan, spec
    from mlo.pipeline import run as run_mod
    from mlo.tracking import session

    timer.wrap(papermill, "execute_notebook", "papermill")
    timer.wrap(spec, "load", "read pipeline.yaml")
    timer.wrap(plan, "expand", "plan (read notebooks)")
    timer.wrap(plan, "cache_key", "cache keys")
    timer.wrap(run_mod, "_dep_digests", "dep digests")
    timer.wrap(execute, "cached", "cache lookup + restore")
    timer.wrap(workspace, "current", "open workspace")
    timer.wrap(snapshots, "snapshot", "snapshots of deps and outs")
    timer.wrap(session, "start_run", "start runs")
    timer.wrap(session, "end_run", "end runs")
    timer.wrap(session, "log_bytes", "store executed notebook")
    timer.wrap(session, "log_metrics", "pipeline metrics")
    timer.wrap(session, "set_tags", "failure tags")
    timer.wrap(execute, "_kernel_manager", "kernel manager class")
    ws = workspace.current()
    timer.wrap(type(ws.stage_cache), "put", "cache entry")
    timer.wrap(type(ws.blobs), "put_file", "cache entry")


def split_of(steps: dict, total: float) -> dict:
    out = {k: v for k, v in steps.items() if v > 0}
    out["other"] = total - sum(out.values())
    return out


def median_split(splits: list[dict]) -> dict:
    labels = {k for s in splits for k in s}
    return {k: statistics.median(s.get(k, 0.0) for s in splits) for k in labels}


def close_mlo() -> None:
    """Let background captures finish and close the store before the temporary folder goes away."""
    from mlo import workspace
    from mlo.tracking import session

    session.flush()
    for job in list(getattr(getattr(session, "_state", None), "captures", {}).values()):
        try:
            job.result(timeout=30)
        except Exception:
            pass
    workspace.reset_cache()


# -- scenario 1: the fully cached re-run ---------------------------------------------------------------------------
# The CLI's code path (``mlo`` is ``mlo.cli:main``), with time stamps between its phases; the last atexit handler
# registered first runs last, so its stamp comes after mlo's own exit work (the git/environment capture it waits
# for, the final flush) and before the interpreter tears itself down.
CLI_PROBE = """
import atexit, sys, time
stamps = [time.time()]
atexit.register(lambda: print("STAMPS", *stamps, time.time(), file=sys.stderr, flush=True))
import mlo.cli
stamps.append(time.time())
import mlo.pipeline.run
stamps.append(time.time())
try:
    mlo.cli.main(["pipeline", "run", "-q", sys.argv[1]])
except SystemExit as exc:
    stamps.append(time.time())
    if exc.code:
        raise
"""
CLI_PHASES = [
    "interpreter start",
    "import mlo.cli (click)",
    "import the pipeline engine (SQLAlchemy, NumPy, YAML, …)",
    "the command: plan, cache checks, the pipeline run's rows",
    "exit: atexit handlers (waiting for the environment capture, flush)",
    "exit: interpreter teardown (module and object finalization)",
]

ENV_PROBE = (
    "import time; from mlo.tracking import capture; t0 = time.perf_counter(); capture.environment(); "
    "print(time.perf_counter() - t0)"
)


def scenario_cached(sizes: dict, tmp: Path) -> dict:
    env = {**os.environ, "MLO_HOME": str(tmp / ".mlo")}
    os.environ["MLO_HOME"] = env["MLO_HOME"]
    file = build_chain(tmp)
    os.chdir(tmp)
    out: dict = {"stages": len(STAGES)}

    t0 = now()
    import mlo.pipeline

    out["import_s"] = now() - t0
    t0 = now()
    first = mlo.pipeline.run(file, log=None)
    out["first_run_s"] = now() - t0
    if [t.status for t in first.tasks] != ["ok"] * len(STAGES):
        raise RuntimeError(f"first run did not pass: {[(t.name, t.status, t.message) for t in first.tasks]}")
    log(f"cached: first run (executes {len(STAGES)} notebooks) {out['first_run_s']:.1f} s")

    times, splits = [], []
    with StepTimer() as timer:
        instrument(timer)
        for _ in range(sizes["cached_repeats"]):
            timer.reset()
            t0 = now()
            r = mlo.pipeline.run(file, log=None)
            elapsed = now() - t0
            times.append(elapsed)
            if [t.status for t in r.tasks] != ["cached"] * len(STAGES):
                raise RuntimeError(f"re-run was not fully cached: {[(t.name, t.status) for t in r.tasks]}")
            if timer.calls("papermill"):
                raise RuntimeError("a cached re-run started a kernel")
            splits.append(split_of(timer.seconds, elapsed))
    out["in_process"] = {"median_s": statistics.median(times), "times_s": times}
    out["in_process_split"] = median_split(splits)
    close_mlo()

    # the command line, and what it is made of; one of each per round, so that load from other work hits all alike
    py = sys.executable
    commands = {
        "cli": [*mlo_command(), "pipeline", "run", "-q", str(file)],
        "python_pass": [py, "-c", "pass"],
        "import_cli": [py, "-c", "import mlo.cli"],
        "import_pipeline": [py, "-c", "import mlo.cli, mlo.pipeline.run"],
        "environment_capture": [py, "-c", ENV_PROBE],
    }
    walls: dict[str, list[float]] = {k: [] for k in [*commands, "probe"]}
    cpus: dict[str, list[float]] = {k: [] for k in walls}
    phases = []
    for i in range(sizes["cached_repeats"] + 1):  # round 0 warms the file cache and is not counted
        for name, cmd in commands.items():
            wall, cpu, stdout, _ = run_timed(cmd, cwd=tmp, env=env)
            if name == "cli" and f"{len(STAGES)} cached" not in stdout:
                raise RuntimeError(f"CLI re-run was not fully cached: {stdout}")
            if name == "environment_capture":
                wall = float(stdout)  # the call alone, measured inside
            if i:
                walls[name].append(wall)
                cpus[name].append(cpu)
        launch = time.time()
        wall, cpu, stdout, stderr = run_timed([py, "-c", CLI_PROBE, str(file)], cwd=tmp, env=env)
        end = time.time()
        line = next((x for x in stderr.splitlines() if x.startswith("STAMPS ")), None)
        if line is None or f"{len(STAGES)} cached" not in stdout:
            raise RuntimeError(f"CLI probe failed: {stdout} {stderr[-2000:]}")
        stamps = [launch, *map(float, line.split()[1:]), end]
        if i:
            walls["probe"].append(wall)
            cpus["probe"].append(cpu)
            phases.append(
                dict(zip(CLI_PHASES, [b - a for a, b in zip(stamps, stamps[1:], strict=False)], strict=True))
            )
    for name in walls:
        out[name] = summarize(walls[name], cpus[name])
    out["cli_phases"] = median_split(phases)
    log(f"cached: CLI {out['cli']['median_s']:.2f} s, in process {out['in_process']['median_s']:.3f} s")
    return out


# -- scenario 2: per-stage overhead over papermill -----------------------------------------------------------------
def papermill_baseline(folder: Path, outputs: Path) -> tuple[float, list[float]]:
    """The 5 notebooks in pipeline order through plain papermill, in this process, with mlo's parameters."""
    import papermill

    per = []
    t0 = now()
    for name, (_, _, _, _, params) in STAGES.items():
        t1 = now()
        papermill.execute_notebook(
            str(folder / "nb" / f"{name}.ipynb"),
            str(outputs / f"{name}.ipynb"),
            parameters=params,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(folder),
        )
        per.append(now() - t1)
    return now() - t0, per


def kernel_medians(kt: StepTimer) -> dict:
    return {k: statistics.median(kt.durations[k]) for k in KERNEL_PHASES if kt.durations.get(k)}


def scenario_overhead(sizes: dict, tmp: Path) -> dict:
    os.environ["MLO_HOME"] = str(tmp / ".mlo")
    file = build_chain(tmp)
    outputs = tmp / "papermill-out"
    outputs.mkdir()
    os.chdir(tmp)
    import papermill  # noqa: F401  (imported before either side is timed)

    import mlo.pipeline

    # warm-up: the workspace, the store, the kernel spec lookups, the first kernel of each side
    first = mlo.pipeline.run(file, log=None)
    if not first.passed:
        raise RuntimeError(f"warm-up run failed: {[(t.name, t.status, t.message) for t in first.tasks]}")
    papermill_baseline(tmp, outputs)

    n = len(STAGES)
    base, mlo_t, base_per, mlo_per, inside, splits = [], [], [], [], [], []
    base_cpu: list[float] = []
    mlo_cpu: list[float] = []
    kernels: dict[str, list[dict]] = {"papermill": [], "mlo": []}
    slowest: dict[str, dict[str, float]] = {"papermill": {}, "mlo": {}}
    outside: list[float] = []

    def note_kernels(side: str) -> None:
        kernels[side].append(kernel_medians(kt))
        for k in KERNEL_PHASES:
            if kt.durations.get(k):
                slowest[side][k] = max(slowest[side].get(k, 0.0), *kt.durations[k])

    with StepTimer() as timer, StepTimer() as kt:
        instrument(timer)
        instrument_kernels(kt)

        def mlo_side():
            timer.reset()
            kt.reset()
            c0, t0 = cpu_seconds(), now()
            r = mlo.pipeline.run(file, force=True, jobs=1, log=None)
            elapsed = now() - t0
            mlo_cpu.append(cpu_seconds() - c0)
            if [t.status for t in r.tasks] != ["ok"] * n:
                raise RuntimeError(f"forced run failed: {[(t.name, t.status, t.message) for t in r.tasks]}")
            mlo_t.append(elapsed)
            mlo_per.append([t.seconds for t in r.tasks])
            outside.append(elapsed - sum(t.seconds for t in r.tasks))
            inside.append(timer.seconds["papermill"])
            splits.append(split_of(timer.seconds, elapsed))
            note_kernels("mlo")

        def papermill_side():
            kt.reset()
            c0 = cpu_seconds()
            total, per = papermill_baseline(tmp, outputs)
            base_cpu.append(cpu_seconds() - c0)
            base.append(total)
            base_per.append(per)
            note_kernels("papermill")

        for rep in range(sizes["overhead_repeats"]):
            order = [papermill_side, mlo_side] if rep % 2 == 0 else [mlo_side, papermill_side]
            for side in order:
                side()
            log(f"overhead: repeat {rep + 1}: papermill {base[-1]:.2f} s, mlo {mlo_t[-1]:.2f} s")
    close_mlo()
    b, m, pin = statistics.median(base), statistics.median(mlo_t), statistics.median(inside)
    per_repeat = [(mt - bt) / n for mt, bt in zip(mlo_t, base, strict=True)]
    pm_nb = [statistics.median(c) for c in zip(*base_per, strict=True)]
    mlo_task = [statistics.median(c) for c in zip(*mlo_per, strict=True)]
    return {
        "stages": n,
        "papermill_s": b,
        "papermill_times_s": base,
        "mlo_s": m,
        "mlo_times_s": mlo_t,
        "overhead_per_stage_s": (m - b) / n,
        "overhead_per_stage_each_s": per_repeat,
        "papermill_cpu_s": statistics.median(base_cpu),
        "mlo_cpu_s": statistics.median(mlo_cpu),
        "cpu_overhead_per_stage_s": (statistics.median(mlo_cpu) - statistics.median(base_cpu)) / n,
        "papermill_inside_mlo_s": pin,
        "bookkeeping_per_stage_s": statistics.median(mt - p for mt, p in zip(mlo_t, inside, strict=True)) / n,
        "papermill_call_extra_per_stage_s": (pin - b) / n,
        "papermill_per_notebook_s": pm_nb,
        "papermill_per_notebook_each_s": base_per,
        "mlo_per_task_s": mlo_task,
        "mlo_per_task_each_s": mlo_per,
        "mlo_outside_tasks_s": statistics.median(outside),
        # each stage's median on each side, and the run's own work outside its tasks: a stall of one kernel
        # (seconds, in jupyter_client, on either side) moves a total but not these
        "overhead_per_stage_by_stage_s": (sum(mlo_task) + statistics.median(outside) - sum(pm_nb)) / n,
        "split": median_split(splits),
        "kernel_phases": {side: median_split(v) for side, v in kernels.items()},
        "kernel_phases_slowest": slowest,
    }


# -- scenario 3: parallel stages -----------------------------------------------------------------------------------
def scenario_jobs(sizes: dict, tmp: Path) -> dict:
    os.environ["MLO_HOME"] = str(tmp / ".mlo")
    file = build_sleepers(tmp)
    os.chdir(tmp)
    import papermill  # noqa: F401

    import mlo.pipeline
    from mlo.pipeline import execute

    warm = mlo.pipeline.run(file, stages=["sleep0"], log=None)  # imports, the store, one kernel
    if not warm.passed:
        raise RuntimeError(f"warm-up failed: {[(t.name, t.status, t.message) for t in warm.tasks]}")
    times: dict[int, list[float]] = {1: [], JOBS: []}
    tasks: dict[int, list[float]] = {1: [], JOBS: []}
    longest: dict[int, list[float]] = {1: [], JOBS: []}
    busy: dict[int, list[float]] = {1: [], JOBS: []}
    phases: dict[int, list[dict]] = {1: [], JOBS: []}
    with StepTimer() as timer, StepTimer() as kt:
        timer.wrap(execute, "execute", "task")
        timer.wrap(papermill, "execute_notebook", "papermill")
        instrument_kernels(kt)
        for rep in range(sizes["jobs_repeats"]):
            for jobs in [1, JOBS] if rep % 2 == 0 else [JOBS, 1]:
                timer.reset()
                kt.reset()
                t0 = now()
                r = mlo.pipeline.run(file, force=True, jobs=jobs, log=None)
                elapsed = now() - t0
                if [t.status for t in r.tasks] != ["ok"] * SLEEP_NOTEBOOKS:
                    raise RuntimeError(
                        f"jobs={jobs} failed: {[(t.name, t.status, t.message) for t in r.tasks]}"
                    )
                times[jobs].append(elapsed)
                task_s = timer.durations["task"]
                tasks[jobs] += task_s
                longest[jobs].append(max(task_s))
                busy[jobs].append(sum(task_s) / (min(jobs, SLEEP_NOTEBOOKS) * elapsed))
                ph = kernel_medians(kt)
                ph["papermill"] = statistics.median(timer.durations["papermill"])
                ph["outside papermill"] = (sum(task_s) - sum(timer.durations["papermill"])) / len(task_s)
                phases[jobs].append(ph)
                log(f"jobs: repeat {rep + 1}: jobs={jobs} {elapsed:.1f} s")
    close_mlo()
    one, many = statistics.median(times[1]), statistics.median(times[JOBS])
    return {
        "notebooks": SLEEP_NOTEBOOKS,
        "sleep_s": SLEEP_SECONDS,
        "jobs": JOBS,
        "jobs1_s": one,
        "jobs1_times_s": times[1],
        "jobsN_s": many,
        "jobsN_times_s": times[JOBS],
        "speedup": one / many,
        "speedup_each": [a / b for a, b in zip(times[1], times[JOBS], strict=True)],
        "task_jobs1_s": statistics.median(tasks[1]),
        "task_jobsN_s": statistics.median(tasks[JOBS]),
        "longest_task_jobsN_s": statistics.median(longest[JOBS]),
        "slots_busy_jobsN": statistics.median(busy[JOBS]),
        "phases_jobs1": median_split(phases[1]),
        "phases_jobsN": median_split(phases[JOBS]),
    }


# -- DVC (only when it is already installed) -----------------------------------------------------------------------
def find_dvc() -> str | None:
    exe = VENV_BIN / "dvc"
    return str(exe) if exe.exists() else shutil.which("dvc")


def run_dvc(dvc: str, sizes: dict, tmp: Path) -> dict:
    """The same 5 stages in one folder as ``pipeline.yaml`` and as ``dvc.yaml`` (stages that run papermill's CLI);
    after a first run of each, fully cached re-runs of ``mlo pipeline run -q`` and ``dvc repro -q`` take turns."""
    build_chain(tmp)
    papermill_cli = VENV_BIN / "papermill"
    lines = ["stages:"]
    for name, (_, _, deps, outs, params) in STAGES.items():
        args = "".join(f" -p {k} {v}" for k, v in params.items())
        cmd = f"{papermill_cli} --cwd . nb/{name}.ipynb out/{name}.ipynb{args} --no-progress-bar"
        lines += [f"  {name}:", f"    cmd: mkdir -p out && {cmd}"]
        lines += [f"    deps: {json.dumps([f'nb/{name}.ipynb', *deps])}", f"    outs: {json.dumps(outs)}"]
    (tmp / "dvc.yaml").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "MLO_HOME": str(tmp / ".mlo")}
    mlo_cmd = [*mlo_command(), "pipeline", "run", "-q", "pipeline.yaml"]
    run_timed([dvc, "init", "--no-scm", "-q"], cwd=tmp, env=env)
    first_dvc = run_timed([dvc, "repro", "-q"], cwd=tmp, env=env)[0]
    first_mlo = run_timed(mlo_cmd, cwd=tmp, env=env)[0]
    version = run_timed([dvc, "--version"], env=env)[2].strip()
    walls: dict[str, list[float]] = {"dvc": [], "mlo": []}
    cpus: dict[str, list[float]] = {"dvc": [], "mlo": []}
    for _ in range(sizes["cached_repeats"]):
        for side, cmd in (("mlo", mlo_cmd), ("dvc", [dvc, "repro", "-q"])):
            wall, cpu, stdout, _ = run_timed(cmd, cwd=tmp, env=env)
            if side == "mlo" and f"{len(STAGES)} cached" not in stdout:
                raise RuntimeError(f"mlo re-run next to DVC was not fully cached: {stdout}")
            walls[side].append(wall)
            cpus[side].append(cpu)
    return {
        "version": version,
        "first_run_s": first_dvc,
        "mlo_first_run_s": first_mlo,
        "cached": summarize(walls["dvc"], cpus["dvc"]),
        "mlo_cached": summarize(walls["mlo"], cpus["mlo"]),
    }


# -- orchestration -------------------------------------------------------------------------------------------------
def scenario_child(scenario: str, mode: str, out_file: str) -> int:
    fn = {"cached": scenario_cached, "overhead": scenario_overhead, "jobs": scenario_jobs}[scenario]
    with tempfile.TemporaryDirectory(prefix=f"mlo-bench-pipeline-{scenario}-") as tmp:
        figures = fn(SIZES[mode], Path(tmp))
        os.chdir(ROOT)
    Path(out_file).write_text(json.dumps(figures))
    return 0


# the baseline's kernels write to our stderr (mlo sends its kernels' own output to a log file): a warning about
# TCP (papermill's default transport) at start, sometimes a note about the interrupt that stops them
NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt caught in kernel")


def run_child(cmd: list[str], env: dict) -> int:
    """Run a scenario process; its progress lines and errors go to our stderr, less the kernels' noise."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = now() + SCENARIO_TIMEOUT
    assert proc.stderr is not None
    for line in proc.stderr:
        if not any(n in line for n in NOISE):
            sys.stderr.write(line)
        if now() > deadline:
            proc.kill()
            raise SystemExit(f"{cmd[3]} scenario took longer than {SCENARIO_TIMEOUT} s")
    return proc.wait()


def run_all(mode: str) -> dict:
    script = str(Path(__file__).resolve())
    figures: dict = {}
    env = {k: v for k, v in os.environ.items() if k not in ("MLO_HOME", "MLO_STORE", "MLO_ARTIFACTS")}
    for scenario in SCENARIOS:
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="mlo-bench-pipeline-") as tmp:
            out_file = Path(tmp) / "figures.json"
            cmd = [
                sys.executable,
                script,
                "--scenario-child",
                scenario,
                "--mode",
                mode,
                "--out",
                str(out_file),
            ]
            code = run_child(cmd, env)
            if code != 0 or not out_file.exists():
                raise SystemExit(f"{scenario} scenario failed (exit {code}; its error is above)")
            figures[scenario] = json.loads(out_file.read_text())
        figures[scenario]["load"] = [load_before, os.getloadavg()[0]]
    dvc = find_dvc()
    if dvc is None:
        figures["dvc"], figures["dvc_skipped"] = None, "dvc is not installed"
    else:
        log("DVC side running…")
        with tempfile.TemporaryDirectory(prefix="mlo-bench-pipeline-dvc-") as tmp:
            try:
                figures["dvc"], figures["dvc_skipped"] = run_dvc(dvc, SIZES[mode], Path(tmp)), None
            except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
                figures["dvc"], figures["dvc_skipped"] = None, f"dvc failed: {exc}"
    return figures


# -- report --------------------------------------------------------------------------------------------------------
def fmt_s(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 1e3:.0f} ms" if abs(v) < 1 else f"{v:.2f} s"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "—"


def print_report(f: dict, mode: str) -> None:
    c, o, j, dvc = f["cached"], f["overhead"], f["jobs"], f["dvc"]
    n = c["stages"]
    print(
        f"\nmlo pipeline benchmark ({mode}; {os.cpu_count()} CPUs, Python {platform.python_version()}; each "
        "scenario in a fresh process, temporary folder and workspace)\n"
    )
    floor = c["import_cli"]["median_s"]
    rows = [
        [
            f"cached re-run, {n} stages: `mlo pipeline run -q` (wall clock)",
            fmt_s(c["cli"]["median_s"]),
            f"python -c 'import mlo.cli' {fmt_s(floor)}",
            ratio(c["cli"]["median_s"], floor),
            f"≤ {fmt_s(TARGET_CACHED_S)} {verdict(c['cli']['median_s'] <= TARGET_CACHED_S)}",
        ],
        [
            "  the same in CPU time (less sensitive to load)",
            fmt_s(c["cli"]["cpu_median_s"]),
            f"CPU {fmt_s(c['import_cli']['cpu_median_s'])}",
            ratio(c["cli"]["cpu_median_s"], c["import_cli"]["cpu_median_s"]),
            "—",
        ],
        [
            "cached re-run: mlo.pipeline.run() in process",
            fmt_s(c["in_process"]["median_s"]),
            "",
            "",
            f"≤ {fmt_s(TARGET_CACHED_S)} {verdict(c['in_process']['median_s'] <= TARGET_CACHED_S)}",
        ],
    ]
    if dvc:
        rows.append(
            [
                "cached re-run next to DVC, same folder: `dvc repro -q`",
                fmt_s(dvc["mlo_cached"]["median_s"]),
                f"dvc {fmt_s(dvc['cached']['median_s'])}",
                ratio(dvc["cached"]["median_s"], dvc["mlo_cached"]["median_s"]) + " faster",
                "—",
            ]
        )
    rows += [
        [
            f"{n} notebooks, forced, jobs=1 (papermill: execute_notebook ×{n})",
            fmt_s(o["mlo_s"]),
            f"papermill {fmt_s(o['papermill_s'])}",
            ratio(o["mlo_s"], o["papermill_s"]),
            "—",
        ],
        [
            f"overhead per stage: (mlo − papermill) / {n}",
            fmt_s(o["overhead_per_stage_s"]),
            "",
            "",
            f"≤ {fmt_s(TARGET_OVERHEAD_S)} {verdict(o['overhead_per_stage_s'] <= TARGET_OVERHEAD_S)}",
        ],
        [
            "  from each stage's median (a stalled kernel on either side left out)",
            fmt_s(o["overhead_per_stage_by_stage_s"]),
            f"Σ medians: mlo {fmt_s(sum(o['mlo_per_task_s']) + o['mlo_outside_tasks_s'])}, "
            f"papermill {fmt_s(sum(o['papermill_per_notebook_s']))}",
            ratio(sum(o["mlo_per_task_s"]) + o["mlo_outside_tasks_s"], sum(o["papermill_per_notebook_s"])),
            f"≤ {fmt_s(TARGET_OVERHEAD_S)} {verdict(o['overhead_per_stage_by_stage_s'] <= TARGET_OVERHEAD_S)}",
        ],
        [
            "  the same in CPU time (this process + kernels; less sensitive to load)",
            fmt_s(o["cpu_overhead_per_stage_s"]),
            f"CPU: mlo {fmt_s(o['mlo_cpu_s'])}, papermill {fmt_s(o['papermill_cpu_s'])}",
            ratio(o["mlo_cpu_s"], o["papermill_cpu_s"]),
            "—",
        ],
        [
            f"{j['notebooks']} independent {j['sleep_s']} s notebooks, jobs={j['jobs']} vs jobs=1",
            fmt_s(j["jobsN_s"]),
            f"jobs=1 {fmt_s(j['jobs1_s'])}",
            f"{j['speedup']:.2f}x",
            f"≥ {TARGET_SPEEDUP}x {verdict(j['speedup'] >= TARGET_SPEEDUP)}",
        ],
    ]
    print_table(["figure", "mlo", "baseline", "ratio", "target"], rows)

    print(
        "\ncached re-run from the command line, phase by phase (a probe running the CLI's code; medians; "
        "CPU is user + system time of the process)"
    )
    ph = c["cli_phases"]

    def cmd_row(label: str, key: str) -> list[str]:
        return [label, fmt_s(c[key]["median_s"]), fmt_s(c[key]["cpu_median_s"])]

    print_table(
        ["phase", "wall", "CPU"],
        [[k, fmt_s(ph.get(k)), ""] for k in CLI_PHASES]
        + [
            cmd_row("total (the probe)", "probe"),
            cmd_row("`mlo pipeline run -q` (the same rounds)", "cli"),
            cmd_row("python -c pass", "python_pass"),
            cmd_row("python -c 'import mlo.cli'", "import_cli"),
            cmd_row("python -c 'import mlo.cli, mlo.pipeline.run'", "import_pipeline"),
            [
                "capture.environment() alone (a background thread at start_run; exit waits for it)",
                fmt_s(c["environment_capture"]["median_s"]),
                "",
            ],
            [f"first run of the pipeline, in process (executes {n} notebooks)", fmt_s(c["first_run_s"]), ""],
        ],
    )
    print("\nwhere the in-process cached re-run spends its time (median per re-run)")
    split_rows = sorted(c["in_process_split"].items(), key=lambda kv: -kv[1])
    print_table(["step", "time"], [[k, fmt_s(v)] for k, v in split_rows if v >= 0.0005 or k == "other"])

    print(
        f"\nwhere a forced run of the {n} notebooks spends its time (median per run; papermill is the call inside)"
    )
    split_rows = sorted(o["split"].items(), key=lambda kv: -kv[1])
    print_table(
        ["step", "per run", "per stage"],
        [[k, fmt_s(v), fmt_s(v / n)] for k, v in split_rows if v >= 0.0005 or k == "other"],
    )
    print(
        f"per stage: mlo's bookkeeping {fmt_s(o['bookkeeping_per_stage_s'])} (the run's time outside papermill); "
        f"mlo's papermill calls against the baseline's {fmt_s(o['papermill_call_extra_per_stage_s'])} (its kernel "
        "manager with IPC sockets and the run's environment, and whichever side a stalled kernel hit)"
    )
    kp = o["kernel_phases"]
    print("\ninside papermill, per notebook (medians)")
    ks = o["kernel_phases_slowest"]
    print_table(
        ["phase", "papermill alone (TCP)", "inside mlo (IPC)", "slowest: papermill", "slowest: mlo"],
        [
            [
                k,
                fmt_s(kp["papermill"].get(k)),
                fmt_s(kp["mlo"].get(k)),
                fmt_s(ks["papermill"].get(k)),
                fmt_s(ks["mlo"].get(k)),
            ]
            for k in KERNEL_PHASES
        ],
    )
    names = list(STAGES)
    print(
        "per notebook, papermill alone: "
        + ", ".join(f"{k} {fmt_s(v)}" for k, v in zip(names, o["papermill_per_notebook_s"], strict=True))
    )
    print(
        "per task, inside mlo (TaskResult.seconds): "
        + ", ".join(f"{k} {fmt_s(v)}" for k, v in zip(names, o["mlo_per_task_s"], strict=True))
    )
    print(
        "overhead per stage in each repeat: "
        + ", ".join(fmt_s(v) for v in o["overhead_per_stage_each_s"])
        + f"; papermill {', '.join(fmt_s(v) for v in o['papermill_times_s'])}; mlo "
        + ", ".join(fmt_s(v) for v in o["mlo_times_s"])
    )

    jn = f"jobs={j['jobs']}"
    print(f"\n{j['notebooks']} notebooks that sleep {j['sleep_s']} s: one task, phase by phase (medians)")
    p1, pn = j["phases_jobs1"], j["phases_jobsN"]
    print_table(
        ["phase", "jobs=1", jn],
        [
            ["task (TaskResult.seconds)", fmt_s(j["task_jobs1_s"]), fmt_s(j["task_jobsN_s"])],
            ["  papermill call", fmt_s(p1.get("papermill")), fmt_s(pn.get("papermill"))],
            *[[f"    {k}", fmt_s(p1.get(k)), fmt_s(pn.get(k))] for k in KERNEL_PHASES],
            [
                "  outside papermill (mean)",
                fmt_s(p1.get("outside papermill")),
                fmt_s(pn.get("outside papermill")),
            ],
        ],
    )
    print(
        f"jobs=1 {', '.join(fmt_s(v) for v in j['jobs1_times_s'])}; {jn} "
        f"{', '.join(fmt_s(v) for v in j['jobsN_times_s'])}; speedup per repeat "
        f"{', '.join(f'{v:.2f}x' for v in j['speedup_each'])}. With {jn}: longest task "
        f"{fmt_s(j['longest_task_jobsN_s'])}, the {j['jobs']} slots busy {j['slots_busy_jobsN']:.0%} of the run. "
        f"Ideal: {j['notebooks'] / j['jobs']:.0f} rounds of one task instead of {j['notebooks']}."
    )
    print(
        f"\ncached: CLI times {', '.join(fmt_s(v) for v in c['cli']['times_s'])} (CPU "
        f"{', '.join(fmt_s(v) for v in c['cli']['cpu_s'])}); in process "
        f"{', '.join(fmt_s(v) for v in c['in_process']['times_s'])}."
    )
    if dvc:
        print(
            f"DVC {dvc['version']}: first `dvc repro` {fmt_s(dvc['first_run_s'])} (papermill's CLI per stage), "
            f"cached {', '.join(fmt_s(v) for v in dvc['cached']['times_s'])} (CPU median "
            f"{fmt_s(dvc['cached']['cpu_median_s'])}); mlo in the same rounds "
            f"{', '.join(fmt_s(v) for v in dvc['mlo_cached']['times_s'])}."
        )
    else:
        print(f"DVC: not measured ({f['dvc_skipped']}; it is not required).")
    loads = ", ".join(f"{s} {f[s]['load'][0]:.2f} → {f[s]['load'][1]:.2f}" for s in SCENARIOS)
    print(f"load average (1 min) before → after each scenario: {loads} ({os.cpu_count()} CPUs)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Notebook pipeline speed of mlo, with papermill alongside.")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (about 2 minutes)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--scenario-child", choices=SCENARIOS, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", choices=list(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scenario_child:
        return scenario_child(args.scenario_child, args.mode, args.out)

    mode = "quick" if args.quick else "full"
    started = now()
    figures = run_all(mode)
    print_report(figures, mode)
    print(f"\ntotal time {now() - started:.0f} s")
    if args.json:
        report = {
            "mode": mode,
            "sizes": SIZES[mode],
            "targets": {
                "cached_s": TARGET_CACHED_S,
                "overhead_per_stage_s": TARGET_OVERHEAD_S,
                "speedup": TARGET_SPEEDUP,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            **figures,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
