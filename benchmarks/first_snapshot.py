"""The first ``mlo.snapshot(df, name)`` before and after the speed-ups, side by side, with identical results.

"Before" is the code of the ``main`` branch (``git archive main src`` unpacked into a temporary folder and put
first on ``PYTHONPATH``), "after" is this checkout's ``src``. Each measurement is a fresh Python process with its
own temporary workspace, holding the frames of ``snapshots.py`` (``numeric``: 16 float64 columns, 1.0 GB;
``mixed``: floats, ints, a categorical and two string columns, 0.72 GB). The two versions alternate, so load
on the shared machine hits both alike; the load average is printed before and after.

Per run: wall time of one first snapshot (after a warm-up snapshot of 1,000 rows), its CPU time, throughput over
the frame's in-memory size, peak extra resident memory as a multiple of the frame, and the data digest (which must
be the same on both sides: it is the data's identity), the blob's name (the hash of the stored Parquet bytes:
SHA-256 before blobs were named by BLAKE3, ``blake3:…`` after) and a SHA-256 of the stored profile. The blob and the profile may differ between the sides when the way data is stored
or profiled changed; each side must give the same ones on every run.

Beside them, the machine's limits on the same frame, measured in one more process: BLAKE3 (one thread and all
cores), SHA-256 and MD5 (DVC's ``add`` hashes every file with MD5, so MD5's rate bounds it), a memory copy, the
Parquet encoding alone (to a sink that discards the bytes) with each codec and with the layout mlo chooses per
column, and writing 1 GB to disk with fsync.
With ``DVC_PYTHON`` set to the Python of a virtual environment that has DVC, ``dvc add`` of the same Parquet
bytes is timed too (writing the file for it is not counted). Targets: ≥ 1 GB/s numeric, ≥ 0.5 GB/s mixed, peak extra memory ≤ 0.5x the frame.

    .venv/bin/python benchmarks/first_snapshot.py               # full sizes, 2 runs each, 5-10 minutes
    .venv/bin/python benchmarks/first_snapshot.py --quick       # ~20x smaller
    .venv/bin/python benchmarks/first_snapshot.py --repeats 3 --base main
    .venv/bin/python benchmarks/first_snapshot.py --phases --base main   # where the CPU time goes, per thread
    DVC_PYTHON=/tmp/dvc/bin/python .venv/bin/python benchmarks/first_snapshot.py   # with DVC's add beside it
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
from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 900  # seconds, per process


def child(scenario: str, mode: str, out: str) -> None:
    import gc
    import resource

    os.environ["MLO_HOME"] = tempfile.mkdtemp(prefix="mlo-first-snapshot-")
    import mlo

    sizes = SIZES[mode]
    mlo.snapshot(build_frame(scenario, sizes, rows=1000), "warm")
    df = build_frame(scenario, sizes)
    size = frame_bytes(df)
    gc.collect()
    with PeakMemory() as peak:
        before = resource.getrusage(resource.RUSAGE_SELF)
        cpu, wall = time.process_time(), time.perf_counter()
        snap = mlo.snapshot(df, "bench")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
    profile = hashlib.sha256(json.dumps(snap.profile, sort_keys=True).encode()).hexdigest()
    result = {
        "seconds": wall,
        "cpu": cpu,
        "user": after.ru_utime - before.ru_utime,
        "sys": after.ru_stime - before.ru_stime,
        "stored": snap.size,
        "bytes": size,
        "peak": peak.peak_extra,
        "digest": snap.digest,
        "blob": snap.blob,
        "profile": profile,
        "mlo": mlo.__file__,
    }
    Path(out).write_text(json.dumps(result))
    # a workspace left behind is a GB on disk and in the page cache, which the next run's writes must reclaim
    import shutil

    shutil.rmtree(os.environ["MLO_HOME"], ignore_errors=True)


# Where a first snapshot's CPU time goes, per thread: each function below is timed with the CPU clock of the thread
# that runs it (user + system time), the digest with the process's (BLAKE3 hashes on threads of its own while it
# runs, and nothing else runs then). Names missing from a version are left out.
PHASES = [
    ("digest (all its threads)", "mlo.data.snapshots", None, "digest_of", "process"),
    ("  layout probe (main)", "mlo.data.snapshots", None, "_parquet_options", "thread"),
    ("  Parquet encode + writes (main)", "mlo.data.snapshots", None, "_write_blob", "thread"),
    ("    of which write calls (main)", "mlo.store.blobs", "BlobWriter", "write", "thread"),
    (
        "  file writes: the page cache (4th thread)",
        "mlo.store.blobs",
        "BlobWriter",
        "_write_behind",
        "thread",
    ),
    ("  blob BLAKE3 (2nd thread)", "mlo.store.blobs", "BlobWriter", "_drain", "thread"),
    ("  profile (3rd thread)", "mlo.data.snapshots", None, "profile_frame", "thread"),
    ("    moments (+ sample gather)", "mlo.data.profile", None, "_all_finite_moments", "thread"),
    ("    sample gather (apart)", "mlo.data.profile", "_Floats", "take", "thread"),
    ("    sample stats (+ moments with NaN)", "mlo.data.profile", None, "_numeric", "thread"),
]


def phases(scenario: str, mode: str, out: str) -> None:
    import collections
    import gc
    import importlib
    import resource
    import threading

    os.environ["MLO_HOME"] = tempfile.mkdtemp(prefix="mlo-first-snapshot-")
    import mlo

    spent: dict[str, float] = collections.defaultdict(float)
    lock = threading.Lock()

    def process_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def timed(label, fn, clock):
        def wrapper(*args, **kwargs):
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    spent[label] += clock() - start

        return wrapper

    for label, module, owner, name, how in PHASES:
        target = importlib.import_module(module)
        target = getattr(target, owner, None) if owner else target
        if target is not None and hasattr(target, name):
            clock = process_cpu if how == "process" else time.thread_time
            setattr(target, name, timed(label, getattr(target, name), clock))
    sizes = SIZES[mode]
    mlo.snapshot(build_frame(scenario, sizes, rows=1000), "warm")
    df = build_frame(scenario, sizes)
    gc.collect()
    spent.clear()
    cpu, wall = process_cpu(), time.perf_counter()
    mlo.snapshot(df, "bench")
    spent["whole snapshot (wall)"] = time.perf_counter() - wall
    spent["whole snapshot (CPU, every thread)"] = process_cpu() - cpu
    Path(out).write_text(json.dumps(spent))
    import shutil

    shutil.rmtree(os.environ["MLO_HOME"], ignore_errors=True)


def print_phases(versions: dict[str, Path], mode: str, repeats: int) -> None:
    """Each step's least CPU time over ``repeats`` runs a side (the sides alternate): on two cores shared with
    other work, a thread's CPU time grows with what runs beside it on the same core, so the least is the cost."""
    labels = ["whole snapshot (wall)", "whole snapshot (CPU, every thread)"] + [p[0] for p in PHASES]
    for scenario in ("numeric", "mixed"):
        got: dict[str, dict[str, float]] = {name: {} for name in versions}
        loads = [load()]
        for _ in range(repeats):
            for name, src in versions.items():
                for label, value in in_child(src, "--phases-child", scenario, mode).items():
                    got[name][label] = min(value, got[name].get(label, value))
        loads.append(load())
        print(
            f"\n{scenario}: CPU seconds (user + system) per step, least of {repeats} runs a side, "
            f"load {loads[0]} -> {loads[1]}"
        )
        print_table(
            ["step", *versions],
            [
                [label, *(f"{got[v][label]:.3f}" if label in got[v] else "—" for v in versions)]
                for label in labels
            ],
        )


def limits(scenario: str, mode: str, out: str) -> None:
    """The machine's limits on the benchmark frame (GB/s over the frame's size, or over 1 GB for the disk)."""
    import hashlib
    import io

    import blake3
    import numpy as np
    import pyarrow.parquet as pq

    from mlo.data import codec
    from mlo.data import snapshots as mlo_snapshots
    from mlo.data.snapshots import _parquet_options

    df = build_frame(scenario, SIZES[mode])
    size = frame_bytes(df)
    table = codec.encode_frame(df).table()
    written = getattr(mlo_snapshots, "_required", lambda t: t)(
        table
    )  # columns without nulls as mlo writes them
    buffers = [b for col in table.columns for chunk in col.chunks for b in chunk.buffers() if b is not None]

    def rate(fn, nbytes: int = size) -> float:
        best = None
        for _ in range(2):
            t = time.perf_counter()
            fn()
            s = time.perf_counter() - t
            best = s if best is None else min(best, s)
        return nbytes / 1e9 / best

    def hashed(make):
        def go():
            h = make()
            for b in buffers:
                h.update(b)

        return go

    source = np.ones(size // 8, dtype=np.float64)
    target = np.empty_like(
        source
    )  # touched by the first copy; the best of two is a copy between mapped pages

    class Sink(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            return len(memoryview(b))

    def parquet(codec_name: str, level=None):
        return lambda: pq.write_table(
            table, Sink(), compression=codec_name, compression_level=level, row_group_size=256 * 1024
        )

    result = {
        "blake3_1": rate(hashed(lambda: blake3.blake3(max_threads=1))),
        "blake3_all": rate(hashed(lambda: blake3.blake3(max_threads=blake3.blake3.AUTO))),
        "sha256": rate(hashed(hashlib.sha256)),
        "md5": rate(hashed(hashlib.md5)),
        "memcpy": rate(lambda: np.copyto(target, source), source.nbytes),
        "parquet_none": rate(parquet("none")),
        "parquet_lz4": rate(parquet("lz4")),
        "parquet_zstd1": rate(parquet("zstd", 1)),
        "parquet_snappy": rate(parquet("snappy")),
        "parquet_mlo": rate(
            lambda: pq.write_table(written, Sink(), row_group_size=256 * 1024, **_parquet_options(written))
        ),
    }
    block = np.random.default_rng(0).integers(0, 255, 64 << 20, dtype=np.uint8).tobytes()

    def disk():
        with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/tmp")) as fh:
            for _ in range(16):
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())

    result["disk"] = rate(disk, 16 * len(block))

    def page_cache():  # a new file, not flushed: what writing a blob costs the kernel with memory as it is now
        with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/tmp")) as fh:
            for _ in range(16):
                fh.write(block)
            fh.flush()

    result["page_cache"] = rate(page_cache, 16 * len(block))
    Path(out).write_text(json.dumps(result))


def dvc_add(scenario: str, mode: str) -> dict | None:
    """``dvc add`` of the Parquet file mlo stores for the frame (the same bytes; writing the file is not counted),
    with the DVC of the Python named by ``DVC_PYTHON`` (DVC is no dependency of mlo: give it a venv of its own)."""
    python = os.environ.get("DVC_PYTHON")
    if not python:
        return None
    import pyarrow.parquet as pq

    from mlo.data import codec
    from mlo.data.snapshots import ROW_GROUP_ROWS, _parquet_options

    df = build_frame(scenario, SIZES[mode])
    size = frame_bytes(df)
    table = codec.encode_frame(df).table()
    with tempfile.TemporaryDirectory(prefix="mlo-dvc-") as tmp:
        path = Path(tmp) / "data.parquet"
        pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, **_parquet_options(table))
        del df, table
        subprocess.run([python, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp, check=True, timeout=TIMEOUT)
        t = time.perf_counter()
        subprocess.run([python, "-m", "dvc", "add", "-q", path.name], cwd=tmp, check=True, timeout=TIMEOUT)
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "bytes": size}


def measure_limits(scenario: str, mode: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(Path(__file__).parent)])}
        subprocess.run(
            [sys.executable, __file__, "--limits", scenario, mode, out.name],
            env=env,
            check=True,
            timeout=TIMEOUT,
        )
        return json.loads(Path(out.name).read_text())


def in_child(src: Path, flag: str, scenario: str, mode: str) -> dict:
    """What a fresh process with the mlo of ``src`` first on its path reports (as JSON) for ``flag``."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(Path(__file__).parent)])}
        env.pop("MLO_HOME", None)
        subprocess.run(
            [sys.executable, __file__, flag, scenario, mode, out.name], env=env, check=True, timeout=TIMEOUT
        )
        return json.loads(Path(out.name).read_text())


def run(src: Path, scenario: str, mode: str) -> dict:
    result = in_child(src, "--child", scenario, mode)
    if not result["mlo"].startswith(str(src)):
        raise SystemExit(f"the child imported mlo from {result['mlo']}, not {src}")
    return result


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cell(runs: list[dict]) -> str:
    s = statistics.median(r["seconds"] for r in runs)
    user = statistics.median(r["user"] for r in runs)
    system = statistics.median(r["sys"] for r in runs)
    stored = runs[0]["stored"] / runs[0]["bytes"]
    return (
        f"{s:.2f} s, {runs[0]['bytes'] / 1e9 / s:.2f} GB/s (cpu user {user:.2f} + sys {system:.2f} s; "
        f"stored {stored:.2f}x)"
    )


def peak(runs: list[dict]) -> str:
    peaks = [r["peak"] / r["bytes"] for r in runs if r["peak"] is not None]
    return f"{max(peaks):.2f}x" if peaks else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--base", default="main", help="git revision measured as 'before'")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--limits", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--phases", action="store_true", help="only where the CPU time goes, per thread")
    parser.add_argument("--phases-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases_child:
        phases(*args.phases_child)
        return
    if args.child:
        child(*args.child)
        return
    if args.limits:
        limits(*args.limits)
        return
    mode = "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="mlo-base-") as base:
        archive = Path(base) / "src.tar"
        with archive.open("wb") as fh:
            subprocess.run(["git", "archive", args.base, "src"], cwd=ROOT, stdout=fh, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(base, filter="data")
        versions = {"before": Path(base) / "src", "after": ROOT / "src"}
        if args.phases:
            print(f"before = {args.base}, after = this checkout ({os.cpu_count()} cores)")
            print_phases(versions, mode, args.repeats)
            return
        print(
            f"load average before: {load()}  ({os.cpu_count()} cores; before = {args.base}, after = this checkout)"
        )
        rows, machine = [], []
        targets = {"numeric": 1.0, "mixed": 0.5}
        for scenario in ("numeric", "mixed"):
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeats):
                for name, src in versions.items():
                    runs[name].append(run(src, scenario, mode))
            gb = runs["after"][0]["bytes"] / 1e9
            seconds = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
            after_peak = max((r["peak"] or 0) / r["bytes"] for r in runs["after"])
            stable = all(
                len({(r["blob"], r["profile"]) for r in v}) == 1 for v in runs.values()
            )  # each side stores the same bytes and profile every time
            rows.append(
                [
                    f"{scenario} ({gb:.2f} GB)",
                    cell(runs["before"]),
                    cell(runs["after"]),
                    f"{seconds['before'] / seconds['after']:.2f}x",
                    f"{peak(runs['before'])} / {peak(runs['after'])}",
                    "yes" if len({r["digest"] for rs in runs.values() for r in rs}) == 1 else "NO",
                    "yes" if runs["before"][0]["blob"] == runs["after"][0]["blob"] else "no",
                    "yes" if stable else "NO",
                    verdict(gb / seconds["after"] >= targets[scenario] and after_peak <= 0.5),
                ]
            )
            lim = measure_limits(scenario, mode)
            dvc = dvc_add(scenario, mode)
            if dvc is not None:
                print(
                    f"{scenario}: dvc add of the same Parquet bytes {dvc['seconds']:.2f} s, "
                    f"{dvc['bytes'] / 1e9 / dvc['seconds']:.2f} GB/s over the frame (writing the file not counted)"
                )
            machine.append(
                [
                    scenario,
                    f"{lim['blake3_1']:.2f} / {lim['blake3_all']:.2f}",
                    f"{lim['sha256']:.2f}",
                    f"{lim['md5']:.2f}",
                    f"{lim['memcpy']:.2f}",
                    " / ".join(
                        f"{lim[k]:.2f}"
                        for k in (
                            "parquet_none",
                            "parquet_lz4",
                            "parquet_zstd1",
                            "parquet_snappy",
                            "parquet_mlo",
                        )
                    ),
                    f"{lim['disk']:.2f}",
                    f"{lim['page_cache']:.2f}",
                ]
            )
        print_table(
            [
                "frame",
                "before: first snapshot",
                "after: first snapshot",
                "speed-up",
                "peak extra before / after",
                "same digest",
                "same blob",
                "same blob, profile each run",
                "target",
            ],
            rows,
        )
        print("\nmachine limits on the same frames, GB/s (DVC's add is bounded by MD5):")
        print_table(
            [
                "frame",
                "BLAKE3 1 thread / all",
                "SHA-256",
                "MD5",
                "memcpy",
                "Parquet none / lz4 / zstd-1 / snappy / as mlo writes it",
                "disk write+fsync",
                "write, no fsync",
            ],
            machine,
        )
        print(f"load average after: {load()}  (medians of {args.repeats} runs each)")


if __name__ == "__main__":
    main()
