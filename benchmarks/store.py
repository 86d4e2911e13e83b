"""Store upkeep and the price of the fault checks: ``mlo doctor`` and ``mlo gc`` on a workspace of 10,000 blobs, and
what opening a workspace costs with the checks (``mlo runs`` on an empty workspace, this code against a baseline).

What it measures:

1. **Opening a workspace.** ``mlo runs`` on an empty workspace as a user runs it (a fresh process, median of
   ``--repeats``), this code against the source tree of ``--base`` (a git ref, default: where this branch left
   ``main``) run with the same interpreter side by side; and in one process, the median time of opening the
   workspace (settings read and checked, database opened, temp files swept) and of each check alone.
2. **doctor and gc.** A workspace whose blob store holds ``--blobs`` blobs (10,000): half are artifacts of a run,
   half are orphans written two days ago. Then ``mlo doctor`` (integrity check, references, listing),
   ``mlo doctor --verify`` (every blob re-hashed), ``mlo gc --dry-run``, ``mlo gc`` (removes the orphans) and a
   second ``mlo gc`` (nothing left to remove), each against an anchor that does the least the same job needs:
   listing the blob folder with ``os.scandir``, SQLite's ``PRAGMA integrity_check`` alone, ``sha256sum`` over every
   blob file, and unlinking as many files.

    .venv/bin/python benchmarks/store.py                 # 10,000 blobs, about a minute on 2 cores
    .venv/bin/python benchmarks/store.py --quick         # 2,000 blobs
    .venv/bin/python benchmarks/store.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
now = time.perf_counter


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = now()
        fn()
        times.append((now() - t) * 1000)
    return statistics.median(times)


# -- 1. opening a workspace ---------------------------------------------------------------------------------------
def _base_tree(ref: str, into: Path) -> Path | None:
    """The ``src`` folder of git ref ``ref``, extracted into ``into``; None when git cannot give it."""
    try:
        if ref == "auto":
            ref = subprocess.run(
                ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        archive = subprocess.run(
            ["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    tar = into / "base.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    return into / "src"


def _cli_runs(home: Path, src: Path | None):
    """A function that runs ``mlo runs`` in a fresh process (with ``src`` ahead of the editable install)."""
    env = {**os.environ, "MLO_HOME": str(home)}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, "-m", "mlo", "runs"]
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # warm the file cache
    return lambda: subprocess.run(cmd, env=env, capture_output=True, check=True)


def bench_open(tmp: Path, base_ref: str, repeats: int) -> dict:
    import mlo
    from mlo import workspace
    from mlo.store.blobs import open_blob_store

    home = tmp / "empty" / ".mlo"
    os.environ["MLO_HOME"] = str(home)
    mlo.init(home.parent)
    (home / "blobs" / "tmp").mkdir(parents=True)  # as after any write: the sweep lists a folder
    (home.parent / "mlo.toml").write_text(  # settings as a project keeps them, to be read and checked
        '[registry]\ntrusted_types = ["mypkg.Scaler"]\n[policy.production]\nvalidation = { max_age_days = 30 }\n'
        '[monitor]\nwindow = "1h"\n'
    )
    workspace.reset_cache()

    def open_and_list():
        workspace.reset_cache()
        mlo.runs()

    def open_only():
        workspace.reset_cache()
        workspace.current().db  # noqa: B018

    ws = workspace.current()
    db_path = home / "mlo.db"
    blobs = open_blob_store(ws.artifacts_url)
    out = {
        "in_process_open_and_runs_ms": _median_ms(open_and_list, repeats * 5),
        "in_process_open_ms": _median_ms(open_only, repeats * 5),
        "check_settings_ms": _median_ms(lambda: workspace._config.load(home), repeats * 20),
        "check_read_only_ms": _median_ms(
            lambda: (os.access(db_path.parent, os.W_OK), os.access(db_path, os.W_OK)), repeats * 20
        ),
        "check_temp_sweep_ms": _median_ms(blobs.sweep_temp, repeats * 20),
    }
    workspace.reset_cache()
    this = _cli_runs(home, None)
    src = _base_tree(base_ref, tmp)
    if src is None:
        out["cli_runs_ms"] = _median_ms(this, repeats)
        return out
    base_home = tmp / "empty-base" / ".mlo"
    env = {**os.environ, "MLO_HOME": str(base_home), "PYTHONPATH": str(src)}
    subprocess.run(
        [sys.executable, "-m", "mlo", "init", str(base_home.parent)], env=env, check=True, capture_output=True
    )
    base = _cli_runs(base_home, src)
    wall = {"this": [], "base": []}
    cpu = {"this": [], "base": []}
    for _ in range(repeats):  # interleaved, so that the load of a shared box weighs on both alike
        for fn, side in ((this, "this"), (base, "base")):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = now()
            fn()
            wall[side].append((now() - t) * 1000)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[side].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
    out["cli_runs_ms"], out["cli_runs_base_ms"] = (
        statistics.median(wall["this"]),
        statistics.median(wall["base"]),
    )
    out["cli_runs_cpu_ms"] = statistics.median(cpu["this"])
    out["cli_runs_base_cpu_ms"] = statistics.median(cpu["base"])
    return out


# -- 2. doctor and gc ----------------------------------------------------------------------------------------------
def build(tmp: Path, n_blobs: int) -> Path:
    """A workspace with n_blobs/2 artifacts of one run and n_blobs/2 orphans written two days ago."""
    import mlo
    from mlo import workspace
    from mlo.tracking.session import log_bytes, wait_for_capture

    home = tmp / "big" / ".mlo"
    os.environ["MLO_HOME"] = str(home)
    workspace.reset_cache()
    mlo.init(home.parent)
    rng = __import__("random").Random(0)
    half = n_blobs // 2
    with mlo.start_run("many artifacts", experiment="bench"):
        for i in range(half):
            log_bytes(rng.randbytes(rng.randint(1000, 4000)), f"a/{i}.bin")
    wait_for_capture()
    ws = workspace.current()
    old = time.time() - 2 * 86400
    for _ in range(half):
        d = ws.blobs.put_bytes(rng.randbytes(rng.randint(1000, 4000)))
        os.utime(ws.blobs.path(d), (old, old))
    workspace.reset_cache()
    return home


def bench_upkeep(tmp: Path, n_blobs: int) -> dict:
    from mlo import workspace
    from mlo.store.doctor import examine
    from mlo.store.gc import collect

    t = now()
    home = build(tmp, n_blobs)
    build_s = now() - t
    blobs_root = home / "blobs"
    files = [p for p in blobs_root.glob("??/*")]

    def walk():
        return sum(1 for top in os.scandir(blobs_root) if len(top.name) == 2 for _ in os.scandir(top.path))

    def integrity():
        con = sqlite3.connect(home / "mlo.db")
        con.execute("PRAGMA integrity_check").fetchall()
        con.close()

    def sha256sum():
        for i in range(0, len(files), 2000):
            subprocess.run(["sha256sum", *map(str, files[i : i + 2000])], capture_output=True, check=True)

    out: dict = {"blobs": len(files), "build_s": build_s}
    # the floor of removing as many files as gc will: copies of as many blobs, in a two-level tree like the store's
    scratch = tmp / "unlink"
    copies = []
    for i, f in enumerate(files[: n_blobs // 2]):
        c = scratch / f.parent.name / str(i)
        c.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, c)
        copies.append(c)

    def timed(fn):
        t = now()
        r = fn()
        return (now() - t) * 1000, r

    out["anchor_walk_ms"], n = timed(walk)
    assert n == len(files)
    out["anchor_integrity_check_ms"], _ = timed(integrity)
    out["anchor_sha256sum_ms"], _ = timed(sha256sum) if shutil.which("sha256sum") else (float("nan"), None)
    workspace.reset_cache()
    out["doctor_ms"], report = timed(lambda: examine(home))
    assert report.stats["orphaned"] == n_blobs // 2 and report.stats["missing"] == 0
    out["doctor_verify_ms"], report = timed(lambda: examine(home, verify=True))
    assert report.stats["corrupt"] == 0
    ws = workspace.current()
    out["gc_dry_run_ms"], r = timed(lambda: collect(ws, dry_run=True))
    assert r.step("unreferenced blobs").removed == n_blobs // 2
    out["gc_ms"], r = timed(lambda: collect(ws))
    out["gc_removed"] = r.step("unreferenced blobs").removed
    assert out["gc_removed"] == n_blobs // 2
    out["gc_again_ms"], r = timed(lambda: collect(ws))
    assert r.step("unreferenced blobs").removed == 0
    out["anchor_unlink_ms"], _ = timed(lambda: [c.unlink() for c in copies])
    workspace.reset_cache()
    return out


def _row(label: str, value: float, anchor: float | None = None, anchor_label: str = "") -> str:
    ratio = f"{value / anchor:6.1f}x {anchor_label}" if anchor else ""
    return f"  {label:<52} {value:9.1f} ms   {ratio}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 blobs instead of 10,000")
    ap.add_argument("--blobs", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument(
        "--base", default="auto", help="git ref of the baseline for the open cost (auto: merge-base)"
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    n = args.blobs or (2_000 if args.quick else 10_000)
    load = os.getloadavg()[0]
    print(
        f"mlo store benchmark · Python {platform.python_version()} · {os.cpu_count()} cores · load {load:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="mlo-bench-store-") as d:
        tmp = Path(d)
        opened = bench_open(tmp, args.base, args.repeats)
        upkeep = bench_upkeep(tmp, n)
    print("\nOpening a workspace (empty; medians)")
    base = opened.get("cli_runs_base_ms")
    print(_row("mlo runs, a fresh process (this code)", opened["cli_runs_ms"], base, "of the baseline"))
    if base is not None:
        print(_row("mlo runs, a fresh process (baseline, interleaved)", base))
        print(
            _row(
                "  CPU time of the process (this code)",
                opened["cli_runs_cpu_ms"],
                opened["cli_runs_base_cpu_ms"],
                "of the baseline",
            )
        )
        print(_row("  CPU time of the process (baseline)", opened["cli_runs_base_cpu_ms"]))
    print(_row("in one process: open + mlo.runs()", opened["in_process_open_and_runs_ms"]))
    print(_row("in one process: open the workspace", opened["in_process_open_ms"]))
    for key, label in (
        ("check_settings_ms", "read and check mlo.toml"),
        ("check_read_only_ms", "is the database writable (2 access calls)"),
        ("check_temp_sweep_ms", "sweep temp files of killed writes"),
    ):
        share = opened[key] / opened["in_process_open_ms"]
        print(f"    of which: {label:<40} {opened[key] * 1000:9.1f} µs   {share:6.1%} of the open")
    print(
        f"\nUpkeep of a workspace of {upkeep['blobs']:,} blobs (half orphans; built in {upkeep['build_s']:.0f} s)"
    )
    print(
        _row(
            "mlo doctor",
            upkeep["doctor_ms"],
            upkeep["anchor_walk_ms"] + upkeep["anchor_integrity_check_ms"],
            "of scandir + integrity_check",
        )
    )
    print(
        _row("mlo doctor --verify", upkeep["doctor_verify_ms"], upkeep["anchor_sha256sum_ms"], "of sha256sum")
    )
    print(_row("mlo gc --dry-run", upkeep["gc_dry_run_ms"], upkeep["anchor_walk_ms"], "of scandir"))
    print(
        _row(
            f"mlo gc (removes {upkeep['gc_removed']:,})",
            upkeep["gc_ms"],
            upkeep["anchor_walk_ms"] + upkeep["anchor_unlink_ms"],
            "of scandir + unlink",
        )
    )
    print(
        _row(
            "mlo gc again (nothing to remove)", upkeep["gc_again_ms"], upkeep["anchor_walk_ms"], "of scandir"
        )
    )
    print(
        "  anchors: "
        + ", ".join(
            f"{k[len('anchor_') : -3]} {v:.1f} ms" for k, v in upkeep.items() if k.startswith("anchor_")
        )
    )
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"open": opened, "upkeep": upkeep}, indent=2))


if __name__ == "__main__":
    main()
