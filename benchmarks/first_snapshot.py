"""The first ``mlo.snapshot(df, name)`` before and after the speed-ups, side by side, with identical results.

"Before" is the code of the ``main`` branch (``git archive main src`` unpacked into a temporary folder and put
first on ``PYTHONPATH``), "after" is this checkout's ``src``. Each measurement is a fresh Python process with its
own temporary workspace, holding the frames of ``snapshots.py`` (``numeric``: 16 float64 columns, 1.0 GB;
``mixed``: floats, ints, a categorical and two string columns, 0.72 GB). The two versions alternate, so load
on the shared machine hits both alike; the load average is printed before and after.

Per run: wall time of one first snapshot (after a warm-up snapshot of 1,000 rows), its CPU time, throughput over
the frame's in-memory size, peak extra resident memory as a multiple of the frame, and the data digest, blob
digest (SHA-256 of the stored Parquet bytes) and a SHA-256 of the stored profile, which must be the same on both
sides.

    .venv/bin/python benchmarks/first_snapshot.py               # full sizes, 2 runs each, 5-10 minutes
    .venv/bin/python benchmarks/first_snapshot.py --quick       # ~20x smaller
    .venv/bin/python benchmarks/first_snapshot.py --repeats 3 --base main
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from snapshots import SIZES, PeakMemory, build_frame, frame_bytes
from text_table import print_table

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 900  # seconds, per process


def child(scenario: str, mode: str, out: str) -> None:
    import gc

    os.environ["MLO_HOME"] = tempfile.mkdtemp(prefix="mlo-first-snapshot-")
    import mlo

    sizes = SIZES[mode]
    mlo.snapshot(build_frame(scenario, sizes, rows=1000), "warm")
    df = build_frame(scenario, sizes)
    size = frame_bytes(df)
    gc.collect()
    with PeakMemory() as peak:
        cpu, wall = time.process_time(), time.perf_counter()
        snap = mlo.snapshot(df, "bench")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    profile = hashlib.sha256(json.dumps(snap.profile, sort_keys=True).encode()).hexdigest()
    result = {
        "seconds": wall,
        "cpu": cpu,
        "bytes": size,
        "peak": peak.peak_extra,
        "digest": snap.digest,
        "blob": snap.blob,
        "profile": profile,
        "mlo": mlo.__file__,
    }
    Path(out).write_text(json.dumps(result))


def run(src: Path, scenario: str, mode: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(Path(__file__).parent)])}
        env.pop("MLO_HOME", None)
        subprocess.run(
            [sys.executable, __file__, "--child", scenario, mode, out.name],
            env=env,
            check=True,
            timeout=TIMEOUT,
        )
        result = json.loads(Path(out.name).read_text())
    if not result["mlo"].startswith(str(src)):
        raise SystemExit(f"the child imported mlo from {result['mlo']}, not {src}")
    return result


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cell(runs: list[dict]) -> str:
    s = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    return f"{s:.2f} s, {runs[0]['bytes'] / 1e9 / s:.2f} GB/s (cpu {cpu:.1f} s)"


def peak(runs: list[dict]) -> str:
    peaks = [r["peak"] / r["bytes"] for r in runs if r["peak"] is not None]
    return f"{max(peaks):.2f}x" if peaks else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--base", default="main", help="git revision measured as 'before'")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    mode = "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="mlo-base-") as base:
        archive = Path(base) / "src.tar"
        with archive.open("wb") as fh:
            subprocess.run(["git", "archive", args.base, "src"], cwd=ROOT, stdout=fh, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(base, filter="data")
        versions = {"before": Path(base) / "src", "after": ROOT / "src"}
        print(
            f"load average before: {load()}  ({os.cpu_count()} cores; before = {args.base}, after = this checkout)"
        )
        rows = []
        for scenario in ("numeric", "mixed"):
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeats):
                for name, src in versions.items():
                    runs[name].append(run(src, scenario, mode))
            keys = {(r["digest"], r["blob"], r["profile"]) for rs in runs.values() for r in rs}
            gb = runs["after"][0]["bytes"] / 1e9
            speedup = statistics.median(r["seconds"] for r in runs["before"]) / statistics.median(
                r["seconds"] for r in runs["after"]
            )
            rows.append(
                [
                    f"{scenario} ({gb:.2f} GB)",
                    cell(runs["before"]),
                    cell(runs["after"]),
                    f"{speedup:.2f}x",
                    f"{peak(runs['before'])} / {peak(runs['after'])}",
                    "yes" if len(keys) == 1 else "NO",
                ]
            )
        print_table(
            [
                "frame",
                "before: first snapshot",
                "after: first snapshot",
                "speed-up",
                "peak extra before / after",
                "same digest, blob, profile",
            ],
            rows,
        )
        print(f"load average after: {load()}  (medians of {args.repeats} runs each)")


if __name__ == "__main__":
    main()
