"""System metrics: sampled from a real busy child process (a pipeline stage's kernel: tests/pipeline), on by default and off
with the variable or mlo.toml, cgroup limits read from real cgroup files, GPUs skipped cleanly without one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import time

import pytest

import mlo
from mlo.tracking import system_readings
from strict import need

BUSY = textwrap.dedent("""
    import os, sys, time
    block = bytearray(150 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1                                   # resident, not just reserved
    start = time.process_time()
    while time.process_time() - start < 1.0:           # one second of CPU, however busy the machine is
        pass
    with open(sys.argv[1], "wb") as fh:                # 8 MB to the disk
        fh.write(os.urandom(8 * 1024 * 1024))
        fh.flush()
        os.fsync(fh.fileno())
    time.sleep(0.4)
""")


def cpu_seconds(run, cpu) -> float:
    """The CPU time the samples account for: each sample's percentage over the time since the one before."""
    times = [run.start_time.timestamp(), *(t.timestamp() for t in cpu.timestamp)]
    return sum(v / 100 * (b - a) for v, a, b in zip(cpu.value, times, times[1:], strict=False))


@pytest.fixture
def sampling(sqlite_ws, monkeypatch):
    monkeypatch.delenv("MLO_SYSTEM_METRICS", raising=False)
    mlo.log_system_metrics(interval=0.1)
    return sqlite_ws


def test_a_busy_child_process_is_sampled(sampling, tmp_path):
    with mlo.start_run("busy") as run:
        baseline = system_readings.ProcessTree().read().rss / system_readings.MB
        subprocess.run([sys.executable, "-c", BUSY, str(tmp_path / "out.bin")], check=True, timeout=60)
    cpu = run.history("system.cpu_percent")
    assert len(cpu) >= 5 and cpu_seconds(run, cpu) > 0.9  # the child's second of CPU, and a little more
    rss = run.history("system.rss_mb")
    assert rss.value.max() > baseline + 100  # the child's 150 MB counted with the process
    assert run.metrics["system.peak_rss_mb"] >= rss.value.max() - 1
    assert run.metrics["system.disk_write_mb"] >= 7.5  # written by a child that has exited since
    assert 0 < run.metrics["system.memory_percent"] < 100
    assert run.metrics["system.memory_available_mb"] > 0
    assert {"system.network_recv_mb", "system.network_sent_mb"} <= set(run.metrics)
    assert not [k for k in run.metrics if k.startswith("system.gpu")]  # no GPU on this machine
    assert float(run.tags["system.cpu_limit"]) >= 1 and float(run.tags["system.memory_limit_mb"]) > 100
    frame = run.system_metrics()
    assert len(frame) == len(cpu) and "cpu_percent" in frame.columns
    html = run._repr_html_()
    assert "System" in html and "<svg" in html and "cpu_percent" in html


def test_sampling_is_on_by_default_off_by_variable_or_mlo_toml(sqlite_ws, monkeypatch):
    def one_second_run(name):
        with mlo.start_run(name) as run:
            time.sleep(1.05)
        return run

    monkeypatch.delenv("MLO_SYSTEM_METRICS", raising=False)
    assert "system.cpu_percent" in one_second_run("default").metrics  # one sample as it ends
    with mlo.start_run("short") as short:
        pass
    assert short.metrics == {}  # a run under a second costs nothing and gets none
    monkeypatch.setenv("MLO_SYSTEM_METRICS", "0")
    assert one_second_run("off").metrics == {}
    monkeypatch.setenv("MLO_SYSTEM_METRICS", "1")
    (sqlite_ws.home / "mlo.toml").write_text("[system_metrics]\nenabled = false\n")
    sqlite_ws.reread_config()
    assert "system.rss_mb" in one_second_run("the variable wins").metrics
    monkeypatch.delenv("MLO_SYSTEM_METRICS")
    assert one_second_run("mlo.toml off").metrics == {}
    (sqlite_ws.home / "mlo.toml").write_text("[system_metrics]\ninterval = 0.0\n")
    with pytest.raises(mlo.InvalidInput, match="interval"):
        sqlite_ws.reread_config()
    with pytest.raises(mlo.InvalidInput, match="interval"):
        mlo.log_system_metrics(interval=-1)
    with pytest.raises(mlo.InvalidInput, match="True or False"):
        mlo.log_system_metrics("yes")


def test_cgroup_v2_limits_are_read_from_the_processs_cgroup(tmp_path):
    root = tmp_path / "cgroup"
    leaf = root / "user.slice" / "job"
    leaf.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory\n")
    (root / "user.slice" / "memory.max").write_text("2147483648\n")  # 2 GiB on the parent
    (leaf / "memory.max").write_text("max\n")
    (leaf / "cpu.max").write_text("150000 100000\n")  # 1.5 cores
    (leaf / "memory.current").write_text("536870912\n")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("0::/user.slice/job\n")
    cpus, memory, version = system_readings.cgroup_limits(root, proc)
    assert (cpus, memory, version) == (1.5, 2 * 1024**3, "v2")
    limits = system_readings.limits(root, proc)
    assert limits.cpus == min(1.5, limits.cpus) and limits.memory <= 2 * 1024**3


def test_cgroup_v1_limits_and_a_container_that_sees_its_cgroup_as_the_root(tmp_path):
    root = tmp_path / "cgroup"
    (root / "memory").mkdir(parents=True)
    (root / "cpu,cpuacct").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text("1073741824\n")
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("50000\n")
    (root / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")  # paths not under the mount
    assert system_readings.cgroup_limits(root, proc) == (0.5, 1024**3, "v1")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")
    assert system_readings.cgroup_limits(root, proc) == (None, None, None)
    assert system_readings.cgroup_limits(tmp_path / "nowhere", tmp_path / "missing") == (None, None, None)


def test_without_a_gpu_nvml_is_skipped_cleanly():
    need(
        importlib.util.find_spec("pynvml") is not None,
        "nvidia-ml-py is not installed (pip install -e '.[dev]')",
    )
    gpus = system_readings.Gpus()
    if gpus.handles:  # a machine with a GPU: it is read
        assert any(k.endswith("utilization_percent") for k in gpus.read())
    else:
        assert gpus.read() == {} and "NVML" in gpus.problem


def test_a_reproduction_compares_results_not_the_machines_system_metrics(sqlite_ws):
    from mlo.pipeline.verdict import compare_runs

    runs = []
    for cpu in (80.0, 95.0):
        with mlo.start_run("trained") as run:
            mlo.log_metrics({"accuracy": 0.9, "system.cpu_percent": cpu, "system.rss_mb": cpu * 3})
        runs.append(run)
    verdict = compare_runs(*runs, rtol=1e-9, atol=0.0)
    assert verdict.match and [c.key for c in verdict.checks if c.kind == "metric"] == ["accuracy"]
