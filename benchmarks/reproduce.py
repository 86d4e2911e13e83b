"""How right and how fast ``mlo reproduce`` is on notebook histories people make.

What it measures:

1. Verdicts: every history of ``tests/pipeline/histories.py`` (out-of-order, edited and failed cells, data changed
   or deleted, snapshots taken before or inside the run, local modules, reloads, papermill parameters, sweeps,
   unnamed and interactive runs, randomness with and without seeds, …) is driven cell by cell through a real
   kernel in a fresh project and workspace, then reproduced. A verdict is right when its status is the expected
   one and it names the expected causes. Targets: ≥ 95% right, and no false "reproduced".
2. Overhead: for each history that reproduced, the replayed notebook (kept with ``workdir=``) is executed again
   by plain ``papermill.execute_notebook`` in the same folder, the baseline: kernel start plus the cells' own
   time. mlo's overhead is the reproduction's total minus that baseline (median over the histories, and the
   worst). Target: ≤ 1 s.
3. Sliced replay: the history with a slow cell the run does not depend on (3 s of sleep) is replayed whole by
   papermill (every cell it ran, in order) and by ``mlo reproduce`` (the slice). Reported as the two times and
   their ratio.

No anchor tool re-executes a run to verify it (MLflow, W&B and DVC record; none replays), so the baseline is
papermill running the same cells. Run from the repository root (about 4 minutes on 2 cores):

    .venv/bin/python benchmarks/reproduce.py
    .venv/bin/python benchmarks/reproduce.py --only clean,slow-unrelated-cell
    .venv/bin/python benchmarks/reproduce.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pipeline"))

os.environ.setdefault("PYTHONWARNINGS", "ignore")


def _fresh_project() -> tuple[Path, Path]:
    from mlo import workspace

    root = Path(tempfile.mkdtemp(prefix="mlo-bench-reproduce-"))
    proj = root / "proj"
    proj.mkdir()
    os.environ["MLO_HOME"] = str(proj / ".mlo")
    os.chdir(proj)
    workspace.reset_cache()
    return root, proj


def _papermill(nb: Path, cwd: Path) -> float:
    import papermill

    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(nb),
            str(nb.with_suffix(".base.ipynb")),
            cwd=str(cwd),
            progress_bar=False,
            kernel_name="python3",
        )
    except papermill.PapermillExecutionError:
        pass  # a history whose run failed on purpose: its replay fails the same way
    return time.perf_counter() - t0


def verdicts(names: set[str] | None) -> list[dict]:
    from histories import SCENARIOS, find_run, play

    import mlo
    from mlo.pipeline.reproduce import reproduce

    out = []
    for sc in SCENARIOS:
        if names and sc.name not in names:
            continue
        root, proj = _fresh_project()
        row = {"name": sc.name, "hazard": sc.hazard, "expected": sc.status}
        try:
            o = play(sc, proj)
            row.update(
                status=o.status,
                causes=sorted(o.causes),
                right=o.right,
                seconds=o.seconds,
                replayed=o.replayed,
                history=o.history,
                summary=o.summary,
            )
            if o.status == "reproduced" and not sc.kwargs:
                keep = root / "replay"
                t0 = time.perf_counter()
                rep = reproduce(find_run(sc.run), workdir=keep)
                total = time.perf_counter() - t0
                nb = next(keep.rglob("reproduce-*.ipynb"))
                base = _papermill(nb, nb.parent)
                row.update(total=total, baseline=base, overhead=total - base, reproduced_again=rep.reproduced)
        except Exception as exc:  # a crash is a wrong verdict, and is shown
            row.update(status=f"crash: {type(exc).__name__}: {exc}", right=False, causes=[])
        finally:
            os.chdir(ROOT)
            shutil.rmtree(root, ignore_errors=True)
            mlo.workspace.reset_cache()
        out.append(row)
        mark = "ok " if row["right"] else "BAD"
        print(f"  {mark} {sc.name:<38} {row['status']:<11} (expected {sc.status})", flush=True)
    return out


def sliced_vs_full() -> dict:
    """The slow-cell history replayed whole by papermill, and as mlo's slice."""
    from histories import SCENARIOS, find_run, play
    from notebooks_on_disk import write_notebook

    import mlo
    from mlo.pipeline.reproduce import reproduce
    from mlo.tracking.history import History

    sc = next(s for s in SCENARIOS if s.name == "slow-unrelated-cell")
    root, proj = _fresh_project()
    try:
        play(sc, proj)
        run_id = find_run(sc.run)
        history = History.of_run(mlo.get_run(run_id))
        full = write_notebook(proj / "full.ipynb", *[c.source for c in history.cells])
        full_s = _papermill(full, proj)
        t0 = time.perf_counter()
        rep = reproduce(run_id)
        sliced_s = time.perf_counter() - t0
        return {
            "full_seconds": full_s,
            "sliced_seconds": sliced_s,
            "cells_full": len(history.cells),
            "cells_sliced": rep.cells["replayed"],
            "reproduced": rep.reproduced,
        }
    finally:
        os.chdir(ROOT)
        shutil.rmtree(root, ignore_errors=True)
        mlo.workspace.reset_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated history names")
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args()
    names = set(args.only.split(",")) if args.only else None
    print(f"mlo reproduce — {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    print("verdicts:")
    rows = verdicts(names)
    right = sum(r["right"] for r in rows)
    false_ok = sum(r["status"] == "reproduced" and r["expected"] != "reproduced" for r in rows)
    overheads = [r["overhead"] for r in rows if "overhead" in r]
    sliced = sliced_vs_full() if not names or "slow-unrelated-cell" in names else None

    print()
    table = [
        [
            "verdicts right",
            f"{right} of {len(rows)} ({100 * right / max(len(rows), 1):.0f}%)",
            "≥ 95%",
            verdict(right >= 0.95 * len(rows)),
        ],
        ["false 'reproduced'", str(false_ok), "0", verdict(false_ok == 0)],
    ]
    if overheads:
        med, worst = statistics.median(overheads), max(overheads)
        table.append(
            [
                "mlo overhead per reproduction",
                f"median {med:.2f} s, worst {worst:.2f} s (over {len(overheads)} histories)",
                "≤ 1 s",
                verdict(med <= 1.0),
            ]
        )
    if sliced:
        ratio = sliced["full_seconds"] / sliced["sliced_seconds"]
        table.append(
            [
                "slow-cell history: full replay vs slice",
                f"{sliced['full_seconds']:.1f} s ({sliced['cells_full']} cells) vs "
                f"{sliced['sliced_seconds']:.1f} s ({sliced['cells_sliced']} cells): {ratio:.1f}x faster",
                "shorter",
                verdict(ratio > 1 and sliced["reproduced"]),
            ]
        )
    print_table(["figure", "measured", "target", ""], table)
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    for r in rows:
        if not r["right"]:
            print(f"\n{r['name']}: {r.get('summary', r['status'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"verdicts": rows, "sliced": sliced}, indent=2, default=str))


if __name__ == "__main__":
    main()
