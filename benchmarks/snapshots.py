"""Data snapshot speed and memory of mlo, side by side with MD5 and MLflow's dataset digest.

Two frames, each in its own fresh Python process and its own temporary workspace (``MLO_HOME``):

- ``numeric``: 16 float64 columns × 7,812,500 rows = 125M values, 1.0 GB.
- ``mixed``: 10M rows of float64 (one with 1% NaN), int64, a categorical, and two string columns (pandas'
  default ``str`` dtype: unique ids and 1,000 city names), about 0.7 GB.

For each frame it measures:

1. The first ``mlo.snapshot(df, name)``: wall time, split into its steps (encode, BLAKE3 digest, Parquet
   encoding, blob hashing/writing/fsync, profile, metadata row), and the peak resident memory above the
   baseline of the process holding the frame.
2. The repeat snapshot of the unchanged frame (the full call again: it re-hashes and finds the version).
3. The digest alone, ``digest(encode_frame(df))``, as throughput over the frame's size; ``hashlib.md5`` and
   single-threaded BLAKE3 over the same Arrow buffers in the same process.
4. A change in the last row: mlo's digest must change.

MLflow's ``mlflow.data.from_pandas(df).digest`` is measured on the same data (written to a temporary Parquet
file and read back) in the ``.venv-anchors`` interpreter, and on the mixed frame again after the same last-row
change (its digest reads only the first 10,000 rows, so it stays the same). MLflow is never imported by mlo.

Run from the repository root:

    .venv/bin/python benchmarks/snapshots.py            # full sizes, about 3 minutes on 2 cores (5 when busy)
    .venv/bin/python benchmarks/snapshots.py --quick    # ~20x smaller, well under a minute
    .venv/bin/python benchmarks/snapshots.py --json out.json --no-mlflow

Only the standard library is imported at module level, so the same file runs in the MLflow environment.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from text_table import print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_PYTHON = ROOT / ".venv-anchors" / "bin" / "python"
SCENARIO_TIMEOUT = 600  # seconds, per process
MLFLOW_TIMEOUT = 600

SIZES = {
    "full": {"numeric_rows": 7_812_500, "numeric_cols": 16, "mixed_rows": 10_000_000, "repeats": 3},
    "quick": {"numeric_rows": 390_625, "numeric_cols": 16, "mixed_rows": 500_000, "repeats": 3},
}
SCENARIOS = ("numeric", "mixed")
DEMO_SCENARIO = "mixed"  # where MLflow's digest is computed again after the last-row change
TARGET_GB_PER_S = 1.0  # digest throughput
TARGET_REPEAT_SHARE = 0.25  # repeat snapshot time / first snapshot time
TARGET_PEAK_SHARE = 1.5  # peak extra memory of the first snapshot / frame size
SAMPLE_EVERY = 0.002  # seconds between RSS samples

now = time.perf_counter


# -- data (both interpreters) --------------------------------------------------------------------------------------
def build_frame(scenario: str, sizes: dict, rows: int | None = None, seed: int = 0):
    """The benchmark frame; ``rows`` overrides the size (the warm-up uses a tiny frame of the same dtypes)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    if scenario == "numeric":
        n, k = rows or sizes["numeric_rows"], sizes["numeric_cols"]
        # one (columns, rows) block: every column is contiguous, and nothing is copied into the frame
        block = rng.random((k, n))
        return pd.DataFrame(block.T, columns=[f"x{i:02d}" for i in range(k)], copy=False)

    import pyarrow as pa
    import pyarrow.compute as pc

    n = rows or sizes["mixed_rows"]
    ids = pc.binary_join_element_wise("user-", pa.array(rng.integers(0, 10**9, n)).cast(pa.string()), "")
    cities = pa.array([f"city-{i:04d}" for i in range(1000)]).take(pa.array(rng.integers(0, 1000, n)))
    score = rng.standard_normal(n)
    score[rng.random(n) < 0.01] = np.nan
    return pd.DataFrame(
        {
            "amount": np.round(rng.random(n) * 1000, 2),
            "score": score,
            "count": rng.integers(0, 1000, n),
            "account": rng.integers(-(10**12), 10**12, n),
            "segment": pd.Categorical.from_codes(
                rng.integers(0, 20, n), categories=[f"seg{i}" for i in range(20)]
            ),
            "user": pd.Series(ids, dtype="str"),
            "city": pd.Series(cities, dtype="str"),
        }
    )


def change_last_row(df) -> None:
    """The same small change on both sides: +1 on the first column of the last row."""
    df.iloc[-1, 0] = df.iloc[-1, 0] + 1


def frame_bytes(df) -> int:
    return int(df.memory_usage(index=True, deep=True).sum())


# -- measuring helpers ---------------------------------------------------------------------------------------------
def _proc_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _rss() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


class PeakMemory:
    """Peak resident memory above the level at entry, while a block runs.

    Two readings, the larger wins: the kernel's high-water mark (``VmHWM``, reset to the current RSS at entry by
    writing 5 to ``/proc/self/clear_refs``; exact, but not resettable everywhere) and a thread sampling the RSS
    every ``SAMPLE_EVERY`` seconds (misses spikes shorter than that, or while a C call holds the GIL).
    """

    def __init__(self):
        self.baseline = self.hwm = self.sampled = None
        self.hwm_reset = False
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self.baseline = _rss()
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.sampled = self.baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _rss()
            if rss is not None and (self.sampled is None or rss > self.sampled):
                self.sampled = rss
            time.sleep(SAMPLE_EVERY)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.hwm = _proc_kb("VmHWM") if self.hwm_reset else None

    @property
    def peak_extra(self) -> int | None:
        peaks = [p for p in (self.hwm, self.sampled) if p is not None]
        if self.baseline is None or not peaks:
            return None
        return max(peaks) - self.baseline


class StepTimer:
    """Time spent inside named functions while a block runs, by wrapping them (restored on exit).

    Wrapping keeps the real ``mlo.snapshot`` path; a step whose function no longer exists is simply absent.
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._patches: list[tuple[object, str, object]] = []

    def wrap(self, owner, attr: str, label: str) -> None:
        original = getattr(owner, attr, None)
        if original is None:
            return
        seconds = self.seconds
        seconds.setdefault(label, 0.0)

        def timed(*args, **kwargs):
            t0 = now()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += now() - t0

        self._patches.append((owner, attr, original))
        setattr(owner, attr, timed)

    def wrap_attribute(self, cls, attr: str, method: str, label: str) -> None:
        """Time ``obj.<attr>.<method>`` for every ``cls`` object created while the block runs."""
        init = cls.__init__
        timer = self

        def patched_init(obj, *args, **kwargs):
            init(obj, *args, **kwargs)
            inner = getattr(obj, attr, None)
            if inner is not None and hasattr(inner, method):
                setattr(obj, attr, _TimedProxy(inner, method, timer.seconds, label))

        self.seconds.setdefault(label, 0.0)
        self._patches.append((cls, "__init__", init))
        cls.__init__ = patched_init

    def __enter__(self) -> StepTimer:
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, original in reversed(self._patches):
            setattr(owner, attr, original)
        self._patches.clear()


class _TimedProxy:
    def __init__(self, inner, method: str, seconds: dict, label: str):
        self._inner, self._method, self._seconds, self._label = inner, method, seconds, label

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def timed(*args, **kwargs):
            t0 = now()
            try:
                return attr(*args, **kwargs)
            finally:
                self._seconds[self._label] += now() - t0

        return timed


def arrow_buffers(arrays) -> list:
    """Every data buffer of the Arrow arrays (a dictionary array's indices and dictionary), as memoryviews."""
    import pyarrow as pa

    out = []
    for arr in arrays:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        parts = [arr.indices, arr.dictionary] if isinstance(arr, pa.DictionaryArray) else [arr]
        for part in parts:
            out += [memoryview(b) for b in part.buffers() if b is not None]
    return out


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = now()
        result = fn()
        times.append(now() - t0)
    return statistics.median(times), result


def log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


# -- mlo side (one scenario per fresh process) ---------------------------------------------------------------------
def instrument(timer: StepTimer) -> None:
    from mlo.data import snapshots as snap_mod
    from mlo.store import blobs
    from mlo.store import snapshots as store_mod

    for attr, label in [
        ("_encode", "encode"),
        ("digest_of", "digest"),
        ("_write_blob", "write_blob"),
        ("_schema", "schema"),
        ("profile_frame", "profile"),
    ]:
        timer.wrap(snap_mod, attr, label)
    timer.wrap(store_mod.SnapshotStore, "by_digest", "lookup")
    timer.wrap(store_mod.SnapshotStore, "add", "metadata")
    if hasattr(blobs, "BlobWriter"):
        timer.wrap(blobs.BlobWriter, "write", "blob_write")
        timer.wrap_attribute(blobs.BlobWriter, "_hash", "update", "blob_sha256")
    timer.wrap(blobs.LocalBlobStore, "_commit", "commit")
    timer.wrap(os, "fsync", "fsync")


def split_of(steps: dict, total: float) -> dict:
    """The first snapshot's time by step (seconds). ``parquet`` is the blob write minus the blob store's own
    work (SHA-256, file writes, fsync, rename), which are listed apart; ``other`` is what no step covers. The
    profile runs on a second thread while the Parquet file is written, so only the part of it that outlasts the
    write adds to the wall time: ``other`` counts the two steps once, as the longer of them."""
    s = dict(steps)
    top = ("encode", "digest", "lookup", "write_blob", "schema", "profile", "metadata")
    split = {k: s.get(k) for k in ("encode", "digest", "lookup")}
    if "write_blob" in s:
        store = s.get("blob_write", 0.0) + s.get("fsync", 0.0) + s.get("commit", 0.0)
        sha = s.get("blob_sha256", 0.0)
        split["parquet"] = s["write_blob"] - store
        split["blob_sha256"] = sha
        split["blob_file_write"] = s.get("blob_write", 0.0) - sha
        split["fsync_rename"] = s.get("fsync", 0.0) + s.get("commit", 0.0)
    split["schema_profile"] = s.get("schema", 0.0) + s.get("profile", 0.0)
    split["metadata"] = s.get("metadata")
    overlapped = max(s.get("write_blob", 0.0), s.get("profile", 0.0))
    serial = sum(s.get(k, 0.0) for k in top if k not in ("write_blob", "profile"))
    split["other"] = total - serial - overlapped
    return split


def hash_figures(df, expected: str, repeats: int) -> dict:
    """The digest alone (encode, BLAKE3, both), and MD5 and one-thread BLAKE3 over the same Arrow buffers."""
    import hashlib

    import blake3

    from mlo.data.codec import encode_frame
    from mlo.data.digest import digest

    enc_s, enc = median_time(lambda: encode_frame(df), repeats)
    dig_s, d = median_time(lambda: digest(enc), repeats)
    both_s, _ = median_time(lambda: digest(encode_frame(df)), repeats)
    if d != expected:
        raise RuntimeError("digest(encode_frame(df)) differs from the snapshot's digest")
    buffers = arrow_buffers(enc.arrays)
    hashed = sum(b.nbytes for b in buffers)

    def md5_all():
        h = hashlib.md5()
        for b in buffers:
            h.update(b)
        return h.hexdigest()

    def blake3_one_thread():
        h = blake3.blake3()
        for b in buffers:
            h.update(b)
        return h.hexdigest()

    md5_s, _ = median_time(md5_all, repeats)
    b3_s, _ = median_time(blake3_one_thread, repeats)
    return {
        "encode_s": enc_s,
        "digest_s": dig_s,
        "encode_digest_s": both_s,
        "gb_per_s": frame_bytes(df) / both_s / 1e9,
        "buffer_bytes": hashed,
        "md5_s": md5_s,
        "md5_gb_per_s": hashed / md5_s / 1e9,
        "blake3_one_thread_s": b3_s,
        "blake3_one_thread_gb_per_s": hashed / b3_s / 1e9,
        "digest": d,
    }


def run_scenario(scenario: str, mode: str, tmp: Path, parquet: str | None) -> dict:
    sizes = SIZES[mode]
    repeats = sizes["repeats"]
    os.environ["MLO_HOME"] = str(tmp / ".mlo")
    import mlo
    from mlo import workspace
    from mlo.data.codec import encode_frame
    from mlo.data.digest import digest

    mlo.init(tmp)
    t0 = now()
    df = build_frame(scenario, sizes)
    out: dict = {
        "scenario": scenario,
        "rows": len(df),
        "columns": df.shape[1],
        "frame_bytes": frame_bytes(df),
    }
    out["dtypes"] = {str(c): str(t) for c, t in df.dtypes.items()}
    log(f"{scenario}: frame of {out['frame_bytes'] / 1e9:.2f} GB built in {now() - t0:.1f} s")

    # warm-up: imports, the SQLite engine, BLAKE3's thread pool — a tiny frame of the same dtypes
    mlo.snapshot(build_frame(scenario, sizes, rows=1000, seed=1), "warm-up")
    gc.collect()

    timer = StepTimer()
    instrument(timer)
    with PeakMemory() as mem, timer:
        t0, c0 = now(), time.process_time()
        first = mlo.snapshot(df, "bench")
        first_s, first_cpu = now() - t0, time.process_time() - c0
    out["first"] = {
        "s": first_s,
        "cpu_s": first_cpu,  # all threads; well below the wall time on a mostly one-threaded path = a busy machine
        "version": first.version,
        "stored_bytes": first.size,
        "split": split_of(timer.seconds, first_s),
        "steps_raw": dict(timer.seconds),
    }
    out["memory"] = {
        "baseline_rss": mem.baseline,
        "peak_extra": mem.peak_extra,
        "hwm": mem.hwm,
        "sampled_peak": mem.sampled,
        "hwm_reset": mem.hwm_reset,
        "peak_share": mem.peak_extra / out["frame_bytes"] if mem.peak_extra is not None else None,
    }
    log(f"{scenario}: first snapshot {first_s:.2f} s")

    times = []
    for _ in range(repeats):
        t0 = now()
        again = mlo.snapshot(df, "bench")
        times.append(now() - t0)
        if again.version != first.version or again.digest != first.digest:
            raise RuntimeError(f"repeat snapshot made version {again.version}, expected {first.version}")
    out["repeat"] = {
        "median_s": statistics.median(times),
        "times_s": times,
        "share": statistics.median(times) / first_s,
        "version": again.version,
    }
    log(f"{scenario}: repeat snapshot {statistics.median(times):.2f} s (median of {repeats})")

    out["digest"] = hash_figures(df, first.digest, repeats)
    log(
        f"{scenario}: digest alone {fmt_s(out['digest']['encode_digest_s'])}, md5 {fmt_s(out['digest']['md5_s'])}"
    )

    if parquet:
        df.to_parquet(parquet)
    change_last_row(df)
    changed = digest(encode_frame(df))
    d = out["digest"]["digest"]
    out["last_row"] = {"digest_before": d, "digest_after": changed, "changed": changed != d}
    workspace.reset_cache()
    return out


def scenario_child(scenario: str, mode: str, out_file: str, parquet: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix=f"mlo-bench-snap-{scenario}-") as tmp:
        figures = run_scenario(scenario, mode, Path(tmp), parquet)
        os.chdir(ROOT)
    Path(out_file).write_text(json.dumps(figures))
    return 0


# -- MLflow side (the .venv-anchors interpreter) -----------------------------------------------------------------
def mlflow_child(out_file: str, parquet: str, demo: bool) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
        import mlflow.data
    except ImportError:
        return 3
    import pandas as pd

    df = pd.read_parquet(parquet)
    warnings.simplefilter("ignore")
    t0 = now()
    before = mlflow.data.from_pandas(df).digest
    figures = {
        "version": mlflow.__version__,
        "rows": len(df),
        "digest_s": now() - t0,
        "digest_before": before,
    }
    if demo:  # a second full call (tens of seconds at full size), so only on the frame that shows the change
        change_last_row(df)
        t0 = now()
        after = mlflow.data.from_pandas(df).digest
        figures.update(digest_changed_s=now() - t0, digest_after=after, changed=before != after)
    Path(out_file).write_text(json.dumps(figures))
    return 0


# -- orchestration -------------------------------------------------------------------------------------------------
def run_child(
    cmd: list[str], out_file: Path, timeout: int, env: dict | None = None
) -> tuple[dict | None, str]:
    try:  # the child's progress lines and errors go straight to our stderr
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"took longer than {timeout} s"
    if proc.returncode == 3:
        return None, "mlflow is not importable in .venv-anchors"
    if proc.returncode != 0 or not out_file.exists():
        return None, f"failed (exit {proc.returncode}; its error is above)"
    return json.loads(out_file.read_text()), ""


def run_all(mode: str, with_mlflow: bool) -> tuple[dict, dict, str]:
    script = str(Path(__file__).resolve())
    mlo_figures, mlflow_figures, why = {}, {}, ""
    if with_mlflow and not ANCHOR_PYTHON.exists():
        with_mlflow, why = False, f"{ANCHOR_PYTHON.relative_to(ROOT)} not found"
    for scenario in SCENARIOS:
        with tempfile.TemporaryDirectory(prefix=f"mlo-bench-snap-{scenario}-") as tmp:
            out_file, parquet = Path(tmp) / "mlo.json", Path(tmp) / "data.parquet"
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
            if with_mlflow:
                cmd += ["--parquet", str(parquet)]
            figures, err = run_child(cmd, out_file, SCENARIO_TIMEOUT)
            if figures is None:
                raise SystemExit(f"mlo {scenario} scenario {err}")
            mlo_figures[scenario] = figures
            if with_mlflow:
                log(f"{scenario}: MLflow side running…")
                env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
                env.pop("MLO_HOME", None)
                out_mlflow = Path(tmp) / "mlflow.json"
                cmd = [
                    str(ANCHOR_PYTHON),
                    script,
                    "--mlflow-child",
                    str(out_mlflow),
                    "--parquet",
                    str(parquet),
                ]
                if scenario == DEMO_SCENARIO:
                    cmd.append("--demo")
                figures, err = run_child(cmd, out_mlflow, MLFLOW_TIMEOUT, env)
                if figures is None:
                    with_mlflow, why = False, f"MLflow side {err}"
                    mlflow_figures = {}
                else:
                    mlflow_figures[scenario] = figures
    if not with_mlflow and not why:
        why = "--no-mlflow"
    return mlo_figures, mlflow_figures, why


# -- report ------------------------------------------------------------------------------------------------------
def fmt_s(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 1e3:.0f} ms" if v < 1 else f"{v:.2f} s"


def fmt_gb(v: float | None) -> str:
    return "—" if v is None else f"{v / 1e9:.2f} GB"


def scenario_label(f: dict) -> str:
    if f["scenario"] == "numeric":
        return f"numeric {f['rows'] * f['columns'] / 1e6:.0f}M float64"
    return f"mixed {f['rows'] / 1e6:g}M rows"


def main_rows(m: dict) -> list[list[str]]:
    cols = [m[s] for s in SCENARIOS]

    def each(fn) -> list[str]:
        return [fn(f) for f in cols]

    def target(fn) -> str:
        return ", ".join(verdict(fn(f)) for f in cols)

    def peak(f):
        p = f["memory"]["peak_extra"]
        return "—" if p is None else f"{fmt_gb(p)} ({f['memory']['peak_share']:.2f}x)"

    def peak_ok(f):
        share = f["memory"]["peak_share"]
        return share is not None and share <= TARGET_PEAK_SHARE

    return [
        ["frame size (memory_usage deep)", *each(lambda f: fmt_gb(f["frame_bytes"])), ""],
        [
            "digest alone: encode + BLAKE3",
            *each(lambda f: f"{f['digest']['gb_per_s']:.2f} GB/s ({fmt_s(f['digest']['encode_digest_s'])})"),
            f"≥ {TARGET_GB_PER_S:g} GB/s " + target(lambda f: f["digest"]["gb_per_s"] >= TARGET_GB_PER_S),
        ],
        ["first snapshot", *each(lambda f: fmt_s(f["first"]["s"])), ""],
        [
            "repeat snapshot, unchanged (share of first)",
            *each(lambda f: f"{fmt_s(f['repeat']['median_s'])} ({f['repeat']['share']:.0%})"),
            f"≤ {TARGET_REPEAT_SHARE:.0%} " + target(lambda f: f["repeat"]["share"] <= TARGET_REPEAT_SHARE),
        ],
        [
            "peak extra memory, first snapshot (x frame)",
            *each(peak),
            f"≤ {TARGET_PEAK_SHARE:g}x " + target(peak_ok),
        ],
        ["stored Parquet size", *each(lambda f: fmt_gb(f["first"]["stored_bytes"])), ""],
    ]


SPLIT_LABELS = [
    ("encode", "encode (Arrow views)"),
    ("digest", "digest (BLAKE3)"),
    ("lookup", "lookup by digest (SQL)"),
    ("parquet", "Parquet write (encode + compress)"),
    ("blob_sha256", "store write: SHA-256 of the blob"),
    ("blob_file_write", "store write: file writes"),
    ("fsync_rename", "store write: fsync + rename"),
    ("schema_profile", "schema + profile (beside the write)"),
    ("metadata", "metadata row (SQL)"),
    ("other", "other"),
]


def split_rows(m: dict) -> list[list[str]]:
    rows = []
    for key, label in SPLIT_LABELS:
        cells = []
        for s in SCENARIOS:
            v, total = m[s]["first"]["split"].get(key), m[s]["first"]["s"]
            cells.append("—" if v is None else f"{fmt_s(v)} ({v / total:.0%})")
        rows.append([label, *cells])
    return rows


def anchor_rows(m: dict, f: dict) -> list[list[str]]:
    def md5(s):
        d = m[s]["digest"]
        return f"{fmt_s(d['md5_s'])} ({d['md5_gb_per_s']:.2f} GB/s): mlo {d['md5_s'] / d['encode_digest_s']:.1f}x"

    def b3(s):
        d = m[s]["digest"]
        return (
            f"{fmt_s(d['blake3_one_thread_s'])} ({d['blake3_one_thread_gb_per_s']:.2f} GB/s): "
            f"mlo {d['blake3_one_thread_s'] / d['encode_digest_s']:.1f}x"
        )

    def mlflow(s):
        if s not in f:
            return "—"
        return f"{fmt_s(f[s]['digest_s'])}: mlo {f[s]['digest_s'] / m[s]['digest']['encode_digest_s']:.1f}x"

    def mlflow_first(s):
        if s not in f:
            return "—"
        return f"{fmt_s(f[s]['digest_s'])}: mlo {f[s]['digest_s'] / m[s]['first']['s']:.2f}x"

    return [
        ["hashlib.md5, same buffers (what DVC does)", md5(SCENARIOS[0]), md5(SCENARIOS[1])],
        ["BLAKE3 one thread, same buffers", b3(SCENARIOS[0]), b3(SCENARIOS[1])],
        ["MLflow from_pandas(df).digest", mlflow(SCENARIOS[0]), mlflow(SCENARIOS[1])],
        [
            "MLflow digest vs mlo's whole first snapshot",
            mlflow_first(SCENARIOS[0]),
            mlflow_first(SCENARIOS[1]),
        ],
    ]


def print_report(m: dict, f: dict, why: str, mode: str, sizes: dict, load: tuple) -> None:
    header = ["", *[scenario_label(m[s]) for s in SCENARIOS]]
    print(
        f"\nmlo data snapshot benchmark ({mode} sizes; {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"each frame in a fresh process and workspace)\n"
    )
    print_table([*header, "target"], main_rows(m))
    if mode == "quick":
        print("(quick sizes: verdicts are indicative only; fixed costs weigh more on small frames)")
    print("\nfirst snapshot, where the time goes")
    print_table(header, split_rows(m))
    print("\nother hashes of the same data (ratio: how many times faster mlo's digest alone is)")
    print_table(header, anchor_rows(m, f))
    print()
    for s in SCENARIOS:
        lr = m[s]["last_row"]
        line = (
            f"{s}: +1 in the last row's first column → mlo digest {lr['digest_before'][:12]} → "
            f"{lr['digest_after'][:12]} ({'changed' if lr['changed'] else 'UNCHANGED'})"
        )
        if "digest_after" in f.get(s, {}):
            a = f[s]
            line += (
                f"; MLflow {a['digest_before']} → {a['digest_after']} "
                f"({'changed' if a['changed'] else 'unchanged: it hashes only the first 10,000 rows'})"
            )
        print(line)
    print()
    for s in SCENARIOS:
        r, mem = m[s]["repeat"], m[s]["memory"]
        how = "kernel high-water mark and 2 ms sampling" if mem["hwm_reset"] else "2 ms sampling only"
        print(
            f"{s}: first snapshot used {fmt_s(m[s]['first']['cpu_s'])} of CPU in {fmt_s(m[s]['first']['s'])}; "
            f"repeat times {', '.join(fmt_s(t) for t in r['times_s'])} (version stays {r['version']}); "
            f"digest {fmt_s(m[s]['digest']['digest_s'])} + encode {fmt_s(m[s]['digest']['encode_s'])} "
            f"(medians of {sizes['repeats']}); memory baseline {fmt_gb(mem['baseline_rss'])} RSS, peak by {how}."
        )
    if f:
        a = next(iter(f.values()))
        again = f.get(DEMO_SCENARIO, {}).get("digest_changed_s")
        print(
            f"MLflow {a['version']}: one timed call per frame, on the frame read back from Parquet"
            + (f" (and one after the change on {DEMO_SCENARIO}: {fmt_s(again)})" if again else "")
            + "; it hashes the first 10,000 rows (with the row count and column names) but checks the "
            "type of every cell."
        )
    else:
        print(f"MLflow: not measured ({why}).")
    print(f"load average before {load[0]:.2f}, after {load[1]:.2f} ({os.cpu_count()} CPUs)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Data snapshot speed and memory of mlo (MD5 and MLflow alongside)."
    )
    ap.add_argument("--quick", action="store_true", help="~20x smaller frames (well under a minute)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow comparison")
    ap.add_argument("--scenario-child", choices=SCENARIOS, help=argparse.SUPPRESS)
    ap.add_argument("--mlflow-child", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", choices=list(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--parquet", help=argparse.SUPPRESS)
    ap.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mlflow_child:
        return mlflow_child(args.mlflow_child, args.parquet, args.demo)
    if args.scenario_child:
        return scenario_child(args.scenario_child, args.mode, args.out, args.parquet)

    mode = "quick" if args.quick else "full"
    started = now()
    load_before = os.getloadavg()[0]
    mlo_figures, mlflow_figures, why = run_all(mode, not args.no_mlflow)
    load = (load_before, os.getloadavg()[0])
    if why and why != "--no-mlflow":
        print(f"MLflow side skipped: {why}", file=sys.stderr)
    print_report(mlo_figures, mlflow_figures, why, mode, SIZES[mode], load)
    print(f"\ntotal time {now() - started:.0f} s")
    if args.json:
        report = {
            "mode": mode,
            "sizes": SIZES[mode],
            "targets": {
                "digest_gb_per_s": TARGET_GB_PER_S,
                "repeat_share": TARGET_REPEAT_SHARE,
                "peak_share": TARGET_PEAK_SHARE,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_before": load[0],
                "load_after": load[1],
            },
            "mlo": mlo_figures,
            "mlflow": mlflow_figures or None,
            "mlflow_skipped": why or None,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
