"""System metrics of runs: what the process (and its children) uses while a run is active, sampled by one
background thread and logged as step histories under ``system.*``.

Every run that is active in this process is sampled: a run started here and made active (not those started for
others with ``activate=False``: a pipeline's stages are sampled by their own kernels), and the run a process was
started for (``MLO_RUN_ID``: a pipeline stage's kernel). A sample every ``interval`` seconds (5 by default), and
one when the run ends if it lasted a second or more; runs shorter than that are not sampled at all, so starting
and ending a run costs nothing more.

Keys: ``system.cpu_percent`` (CPU of the process and its children, 100 = one core), ``system.rss_mb`` and
``system.peak_rss_mb`` (resident memory, now and the highest seen during the run), ``system.memory_percent``
(of the memory limit: the container's cgroup limit where there is one, else the machine's RAM),
``system.memory_available_mb``, ``system.disk_read_mb`` and ``system.disk_write_mb`` (block I/O since the run
started), ``system.network_recv_mb`` and ``system.network_sent_mb`` (the machine's, since the run started), and
per GPU ``system.gpu.<i>.utilization_percent``, ``.memory_used_mb``, ``.memory_percent``, ``.power_w``,
``.temperature_c`` (NVIDIA, through ``nvidia-ml-py``). The tags ``system.cpu_limit`` (cores),
``system.memory_limit_mb`` and ``system.gpus`` say what the run had.

Off with ``MLO_SYSTEM_METRICS=0``, ``[system_metrics] enabled = false`` in ``mlo.toml`` or
``mlo.log_system_metrics(False)``; the interval from ``MLO_SYSTEM_METRICS_INTERVAL``, ``[system_metrics]
interval`` or ``mlo.log_system_metrics(interval=…)`` (the call wins, then the variable, then the file).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from . import system_readings as readings

log = logging.getLogger("mlo")

ENV = "MLO_SYSTEM_METRICS"
ENV_INTERVAL = "MLO_SYSTEM_METRICS_INTERVAL"
DEFAULT_INTERVAL = 5.0
MIN_INTERVAL = 0.05
FINAL_SAMPLE_AFTER = 1.0  # seconds: a run that lasted less gets no sample when it ends

_chosen: dict[str, Any] = {}  # what log_system_metrics() set in this process


def log_system_metrics(enabled: bool = True, *, interval: float | None = None) -> None:
    """Sample system metrics (CPU, memory, disk and network I/O, GPUs) of runs started from now on, or not.

    Parameters
    ----------
    enabled : bool
        Sample runs of this process (the default), or not.
    interval : float, optional
        Seconds between samples (default 5; ``MLO_SYSTEM_METRICS_INTERVAL`` or ``[system_metrics] interval``).
    """
    if not isinstance(enabled, bool):
        raise InvalidInput(f"enabled must be True or False, got {enabled!r}")
    if interval is not None:
        _check_interval(interval, "interval")
        _chosen["interval"] = float(interval)
    _chosen["enabled"] = enabled


def _check_interval(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= MIN_INTERVAL:
        raise InvalidInput(f"{where} must be a number of seconds of at least {MIN_INTERVAL}, got {value!r}")
    return float(value)


def settings(config: dict | None = None) -> tuple[bool, float]:
    """``(enabled, interval)`` in force: :func:`log_system_metrics`, then the environment, then ``mlo.toml``."""
    section = (config or {}).get("system_metrics") or {}
    enabled = _chosen.get("enabled")
    if enabled is None and os.environ.get(ENV, "").strip():
        enabled = os.environ[ENV].strip().lower() not in ("0", "false", "no", "off")
    if enabled is None:
        enabled = bool(section.get("enabled", True))
    interval = _chosen.get("interval")
    if interval is None and os.environ.get(ENV_INTERVAL, "").strip():
        try:
            interval = _check_interval(float(os.environ[ENV_INTERVAL]), ENV_INTERVAL)
        except (ValueError, InvalidInput):
            log.warning(
                "mlo: ignoring %s=%r (seconds, at least %s)",
                ENV_INTERVAL,
                os.environ[ENV_INTERVAL],
                MIN_INTERVAL,
            )
    if interval is None:
        interval = float(section.get("interval", DEFAULT_INTERVAL))
    return enabled, interval


@dataclass
class Sampled:
    """A run being sampled: where its points go and what its metrics are measured from."""

    run: Any
    writer: Any  # the run's RunWriter (its metric buffer)
    interval: float
    start: float
    cpu: float  # CPU seconds of the tree at the last sample (or the start)
    at: float  # time of the last sample (or the start)
    read_bytes: int
    write_bytes: int
    own_peak: int  # the process's ru_maxrss when the run started
    network: tuple[int, int] | None = None
    peak: int = 0
    tagged: bool = False
    samples: int = 0
    next_due: float = field(default=0.0)
    ending: bool = False  # its run is ending (its writer has left the session): the last sample still goes in


class Sampler:
    """The one sampling thread of the process and the runs it samples."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, Sampled] = {}
        self.tree = readings.ProcessTree()
        self.last: readings.Reading | None = None
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.gpus: readings.Gpus | None = None
        self.limits: readings.Limits | None = None
        self.cpu_seconds = 0.0  # the sampling thread's own CPU time (its cost)
        self.ticks = 0
        self.network: tuple[int, int] | None = None  # the machine's counters at the last sample
        self.last_cpu_clock = 0.0  # time.process_time() when self.last was read
        self.sleeping_until = 0.0  # when the thread wakes up next (0: it is awake, or not started)

    # -- runs --------------------------------------------------------------------------------------------------
    def add(self, run: Any, writer: Any, interval: float) -> None:
        # The run's baseline: the last reading, with the process's own CPU time since then added (children's
        # and I/O since then count for the run). No getrusage here: it waits on the kernel while another
        # thread starts a process (the git capture of a new run does), which costs a short run ~40 µs.
        if self.last is None:
            self.last, self.last_cpu_clock = self.tree.read(memory=False), time.process_time()
        last, now = self.last, time.time()
        cpu = last.cpu_seconds + max(0.0, time.process_time() - self.last_cpu_clock)
        with self.lock:
            self.runs[run.id] = Sampled(
                run, writer, interval, now, cpu, now, last.read_bytes, last.write_bytes, last.own_peak_rss,
                self.network, next_due=now + interval,
            )  # fmt: skip
            sooner = now + interval < self.sleeping_until
        self._ensure_thread()
        if sooner:  # the thread sleeps longer than this run's first sample is due
            self.wake.set()

    def remove(self, run_id: str, final: bool = True) -> None:
        """Stop sampling ``run_id``; with a last sample if it lasted long enough."""
        with self.lock:
            sampled = self.runs.pop(run_id, None)
        if sampled is None or not final or time.time() - sampled.start < FINAL_SAMPLE_AFTER:
            return
        self._sample([sampled], self.tree.read())

    def close_all(self) -> None:
        """A last sample of every run (at exit: the session then writes what is buffered)."""
        with self.lock:
            runs, self.runs = list(self.runs.values()), {}
        now = time.time()
        due = [s for s in runs if now - s.start >= FINAL_SAMPLE_AFTER]
        if due:
            self._sample(due, self.tree.read())

    # -- the thread --------------------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        self.thread = threading.Thread(target=self._loop, name="mlo-system-metrics", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                due_at = min((s.next_due for s in self.runs.values()), default=None)
                self.sleeping_until = time.time() + 60 if due_at is None else due_at
            self.wake.wait(max(0.0, self.sleeping_until - time.time()))
            self.wake.clear()
            self.sleeping_until = 0.0
            if self.stop.is_set():
                return
            try:
                self.tick()
            except Exception as exc:  # sampling must never take anything down
                log.debug("mlo system metrics: %s", exc)

    def tick(self) -> None:
        started = time.thread_time()
        now = time.time()
        with self.lock:
            due = [s for s in self.runs.values() if s.next_due <= now + 0.01]
        if due:
            if self.gpus is None:
                self.gpus = readings.Gpus()
            self.tree.scan()
            self._sample(due, self.tree.read())
        self.cpu_seconds += time.thread_time() - started
        self.ticks += 1

    def _sample(self, runs: list[Sampled], reading: readings.Reading) -> None:
        from . import session

        if self.limits is None:
            self.limits = readings.limits()
        limits = self.limits
        network = self.network = readings.network()
        available = limits.available_memory()
        gpu = self.gpus.read() if self.gpus is not None and self.gpus.handles else {}
        self.last, self.last_cpu_clock = reading, time.process_time()
        for s in runs:
            if session._state.writers.get(s.run.id) is not s.writer and not s.ending:
                with self.lock:  # the run's writer is gone (the run was ended elsewhere): stop sampling it
                    self.runs.pop(s.run.id, None)
                continue
            elapsed = reading.time - s.at
            s.peak = max(
                s.peak, reading.rss, reading.own_peak_rss if reading.own_peak_rss > s.own_peak else 0
            )
            values = {
                "system.rss_mb": reading.rss / readings.MB,
                "system.peak_rss_mb": s.peak / readings.MB,
                "system.memory_percent": 100.0 * reading.rss / limits.memory if limits.memory else 0.0,
                "system.disk_read_mb": max(0, reading.read_bytes - s.read_bytes) / readings.MB,
                "system.disk_write_mb": max(0, reading.write_bytes - s.write_bytes) / readings.MB,
                **gpu,
            }
            if elapsed > 0:
                values["system.cpu_percent"] = max(0.0, 100.0 * (reading.cpu_seconds - s.cpu) / elapsed)
            if available is not None:
                values["system.memory_available_mb"] = available / readings.MB
            if network is not None:
                if s.network is None:
                    s.network = network
                values["system.network_recv_mb"] = max(0, network[0] - s.network[0]) / readings.MB
                values["system.network_sent_mb"] = max(0, network[1] - s.network[1]) / readings.MB
            s.cpu, s.at, s.samples = reading.cpu_seconds, reading.time, s.samples + 1
            s.next_due = reading.time + s.interval
            try:
                s.writer.metrics.add_many(values, timestamp=reading.time)
                if not s.tagged:
                    s.tagged = True
                    tags = {
                        "system.cpu_limit": f"{limits.cpus:g}",
                        "system.memory_limit_mb": f"{limits.memory / readings.MB:.0f}",
                    }
                    if self.gpus is not None and self.gpus.names:
                        tags["system.gpus"] = ", ".join(self.gpus.names)
                    from . import journal

                    journal.set_tags(s.writer.ws, s.run.id, tags)
            except Exception as exc:
                log.debug("mlo system metrics of run %s: %s", s.run.id, exc)

    def reset_after_fork(self) -> None:
        self.__init__()


SAMPLER = Sampler()


# -- wiring: the session's hooks ------------------------------------------------------------------------------------
def on_run_start(ws: Any, run: Any) -> None:
    """Sample ``run`` if it is active here and sampling is on."""
    from . import session

    try:
        if run not in session._state.stack:
            return
        enabled, interval = settings(ws.config)
        writer = session._state.writers.get(run.id)
        if enabled and writer is not None:
            SAMPLER.add(run, writer, interval)
    except Exception as exc:  # never keep a run from starting
        log.debug("mlo system metrics: cannot sample run %s: %s", run.id, exc)


def on_run_end(ws: Any, run: Any) -> None:
    try:
        with SAMPLER.lock:
            sampled = SAMPLER.runs.get(run.id)
        if sampled is not None:
            sampled.ending = True
            SAMPLER.remove(run.id)
    except Exception as exc:
        log.debug("mlo system metrics: last sample of run %s: %s", run.id, exc)


def _at_exit() -> None:
    SAMPLER.stop.set()
    SAMPLER.wake.set()
    try:
        for s in list(SAMPLER.runs.values()):
            s.ending = True
        SAMPLER.close_all()
    except Exception:
        pass


def install() -> None:
    """Hook sampling into the session (called once, by :mod:`mlo.tracking.session`)."""
    from . import session

    if on_run_start not in session.RUN_START_HOOKS:
        session.RUN_START_HOOKS.append(on_run_start)
        session.RUN_ATTACH_HOOKS.append(on_run_start)
        session.RUN_END_HOOKS.append(on_run_end)
        atexit.register(_at_exit)  # before the session's own exit handler (atexit runs last-in first-out)
        os.register_at_fork(after_in_child=SAMPLER.reset_after_fork)
