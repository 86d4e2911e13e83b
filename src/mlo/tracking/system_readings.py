"""Readings of what this process and its children use: CPU time, resident memory, disk I/O; the machine's network
counters and available memory; the limits a container (cgroup v1 or v2) puts on them; GPUs through NVML.

Cumulative counters are read so that nothing between two readings is lost: CPU time and block I/O of the
process itself and of the children it has waited for come from ``getrusage`` (a few microseconds); the children
still running are read with psutil from the list the last :meth:`ProcessTree.scan` found (a scan walks
``/proc`` and costs about a millisecond, so only the sampling thread does it).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

MB = 1024 * 1024
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63


@dataclass
class Reading:
    """One look at the process tree (cumulative counters since the process started)."""

    time: float
    cpu_seconds: float  # user + system of the process and all its children, live or waited for
    rss: int  # bytes resident: the process and its live children
    own_peak_rss: int  # the process's own highest RSS since it started (ru_maxrss)
    read_bytes: int  # block device reads of the tree
    write_bytes: int


# -- the process and its children ----------------------------------------------------------------------------------
class ProcessTree:
    """Reads this process and its children; :meth:`scan` refreshes the list of children."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.children: dict[int, psutil.Process] = {}

    def scan(self) -> None:
        try:
            found = self.process.children(recursive=True)
        except psutil.Error:
            return
        self.children = {p.pid: self.children.get(p.pid, p) for p in found}

    def read(self, memory: bool = True) -> Reading:
        """The counters now; ``memory=False`` leaves the process's own RSS out (a cheaper baseline)."""
        now = time.time()
        own, waited = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime
        read = (own.ru_inblock + waited.ru_inblock) * 512
        write = (own.ru_oublock + waited.ru_oublock) * 512
        try:
            rss = self.process.memory_info().rss if memory else 0
        except psutil.Error:
            rss = 0
        gone = []
        for pid, child in self.children.items():
            try:
                with child.oneshot():
                    times = child.cpu_times()
                    cpu += times.user + times.system + getattr(times, "children_user", 0.0)
                    cpu += getattr(times, "children_system", 0.0)
                    rss += child.memory_info().rss
                    io = child.io_counters() if hasattr(child, "io_counters") else None
                    if io is not None:
                        read += io.read_bytes
                        write += io.write_bytes
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                gone.append(pid)
            except psutil.AccessDenied:
                pass
        for pid in gone:
            self.children.pop(pid, None)
        peak = own.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
        return Reading(now, cpu, rss, peak, read, write)


def network() -> tuple[int, int] | None:
    """(bytes received, bytes sent) by the machine (the container's own network namespace in a container)."""
    try:
        counters = psutil.net_io_counters()
    except (OSError, RuntimeError):
        return None
    return (counters.bytes_recv, counters.bytes_sent) if counters is not None else None


# -- limits --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """What this process may use: CPU cores and memory bytes (cgroup limits where a container sets them)."""

    cpus: float
    memory: int
    cgroup: str | None  # "v1", "v2", or None outside a limiting cgroup

    def available_memory(self, root: str | os.PathLike = "/sys/fs/cgroup") -> int | None:
        """Bytes still free for this process: the cgroup's limit minus its usage, else the machine's."""
        usage = _cgroup_usage(Path(root)) if self.cgroup else None
        if usage is not None:
            return max(0, self.memory - usage)
        try:
            return psutil.virtual_memory().available
        except (OSError, RuntimeError):
            return None


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text().split()
    except (OSError, ValueError):
        return None
    if not text or text[0] == "max":
        return None
    try:
        value = int(text[0])
    except ValueError:
        return None
    return None if value >= _UNLIMITED or value < 0 else value


def _cgroup_paths(proc_cgroup: str | os.PathLike) -> tuple[str | None, dict[str, str]]:
    """The cgroup v2 path and the v1 path of each controller, from /proc/self/cgroup."""
    v2, v1 = None, {}
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None, {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and not controllers:
            v2 = path
        for controller in controllers.split(","):
            if controller:
                v1[controller] = path
    return v2, v1


def _up(mount: Path, path: str) -> list[Path]:
    """The cgroup's folder and its parents up to the mount, innermost first; the mount alone when the path is not
    under it (a container sees its own cgroup as the root)."""
    leaf = mount / path.lstrip("/")
    if not leaf.is_dir():
        return [mount]
    folders = [leaf]
    while folders[-1] != mount and mount in folders[-1].parents:
        folders.append(folders[-1].parent)
    return folders


def _smallest(values: list[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def cgroup_limits(
    root: str | os.PathLike = "/sys/fs/cgroup", proc_cgroup: str | os.PathLike = "/proc/self/cgroup"
) -> tuple[float | None, int | None, str | None]:
    """``(cpu cores, memory bytes, "v1" | "v2")`` the cgroups of this process allow; None where unlimited."""
    root = Path(root)
    v2, v1 = _cgroup_paths(proc_cgroup)
    if (root / "cgroup.controllers").is_file() and v2 is not None:
        folders = _up(root, v2)
        memory = _smallest([_read_number(f / "memory.max") for f in folders])
        cpus = []
        for f in folders:
            try:
                quota, period = (f / "cpu.max").read_text().split()[:2]
            except (OSError, ValueError):
                continue
            if quota != "max" and int(period) > 0:
                cpus.append(int(quota) / int(period))
        return (min(cpus) if cpus else None), memory, "v2"
    memory = cpus_v1 = None
    if "memory" in v1 and (root / "memory").is_dir():
        folders = _up(root / "memory", v1["memory"])
        memory = _smallest([_read_number(f / "memory.limit_in_bytes") for f in folders])
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        mount = root / name
        if "cpu" in v1 and mount.is_dir():
            ratios = []
            for f in _up(mount, v1["cpu"]):
                quota, period = _read_number(f / "cpu.cfs_quota_us"), _read_number(f / "cpu.cfs_period_us")
                if quota and period:
                    ratios.append(quota / period)
            cpus_v1 = min(ratios) if ratios else None
            break
    found = memory is not None or cpus_v1 is not None
    return cpus_v1, memory, ("v1" if found else None)


def _cgroup_usage(root: Path, proc_cgroup: str = "/proc/self/cgroup") -> int | None:
    v2, v1 = _cgroup_paths(proc_cgroup)
    if (root / "cgroup.controllers").is_file() and v2 is not None:
        return _read_number(_up(root, v2)[0] / "memory.current")
    if "memory" in v1:
        return _read_number(_up(root / "memory", v1["memory"])[0] / "memory.usage_in_bytes")
    return None


def limits(
    root: str | os.PathLike = "/sys/fs/cgroup", proc_cgroup: str | os.PathLike = "/proc/self/cgroup"
) -> Limits:
    """The CPU cores and memory this process may use: the smaller of the cgroup's limits and the machine's."""
    cpus, memory, version = cgroup_limits(root, proc_cgroup)
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = float(os.cpu_count() or 1)
    try:
        total = psutil.virtual_memory().total
    except (OSError, RuntimeError):
        total = memory or 0
    limited = (cpus is not None and cpus < cores) or (memory is not None and memory < total)
    return Limits(
        cpus=min(cores, cpus) if cpus else cores,
        memory=min(total, memory) if memory else total,
        cgroup=version if limited else None,
    )


# -- GPUs ----------------------------------------------------------------------------------------------------------
class Gpus:
    """NVIDIA GPUs through NVML (the ``nvidia-ml-py`` package); none, without a word, where it or a driver is
    missing."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.names: list[str] = []
        self.problem: str | None = None
        self._nvml = None
        try:
            import pynvml  # nvidia-ml-py
        except ImportError:
            self.problem = "nvidia-ml-py is not installed"
            return
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.names = [_text(pynvml.nvmlDeviceGetName(h)) for h in self.handles]
            self._nvml = pynvml
        except Exception as exc:  # no driver, no device: NVMLError_LibraryNotFound, …
            self.handles, self.names = [], []
            self.problem = f"NVML is not usable here ({exc})"

    def read(self) -> dict[str, float]:
        nvml, out = self._nvml, {}
        for i, handle in enumerate(self.handles):
            prefix = f"system.gpu.{i}."
            for key, read in (
                ("utilization_percent", lambda h: nvml.nvmlDeviceGetUtilizationRates(h).gpu),
                ("memory_used_mb", lambda h: nvml.nvmlDeviceGetMemoryInfo(h).used / MB),
                (
                    "memory_percent",
                    lambda h: (
                        100 * nvml.nvmlDeviceGetMemoryInfo(h).used / nvml.nvmlDeviceGetMemoryInfo(h).total
                    ),
                ),
                ("power_w", lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000),
                ("temperature_c", lambda h: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
            ):
                try:
                    out[prefix + key] = float(read(handle))
                except Exception:  # not supported on this device
                    pass
        return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
