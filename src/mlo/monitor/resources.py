"""What serving costs: a server samples its process every few seconds — CPU, memory, requests in progress (its
queue), requests and rows served since the last sample — into ``<home>/monitor/<model>/res-<pid>-<start>.jsonl``
beside the prediction log, one JSON line per sample (appended whole, so a killed server leaves whole lines).

Monitoring reports read them back per window (:func:`window_figures`): ``cpu_percent`` (mean), ``rss_mb`` (peak),
``rss_growth_mb`` (last minus first sample), ``queue_depth`` (peak), ``requests_per_s``; ``rows_per_s`` comes
from the prediction log itself. Alert rules can name any of them (``when = "rss_growth_mb > 200"``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .log import FOLDER

log = logging.getLogger("mlo.monitor")

PREFIX = "res-"
INTERVAL = 5.0
COLUMNS = ("cpu_percent", "rss_mb", "rss_growth_mb", "queue_depth", "requests_per_s")


class ResourceSampler:
    """A thread sampling this process for the models it serves: ``in_flight()`` gives the requests in progress,
    ``served()`` the running totals ``(requests, rows)``."""

    def __init__(
        self,
        home: str | os.PathLike,
        models: Iterable[str],
        in_flight: Callable[[], int],
        served: Callable[[], tuple[int, int]],
        interval: float = INTERVAL,
    ):
        import psutil

        self.interval = float(interval)
        self._in_flight = in_flight
        self._served = served
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first call only starts the measure
        start = time.time_ns() // 1000
        root = Path(home) / FOLDER
        self.paths = [root / m / f"{PREFIX}{os.getpid()}-{start}.jsonl" for m in dict.fromkeys(models)]
        self._last = (time.monotonic(), *served())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlo-serve-resources", daemon=True)
        self.samples = 0

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def sample(self) -> dict[str, Any]:
        """Take one sample and append it to each model's file."""
        now = time.monotonic()
        requests, rows = self._served()
        t0, r0, w0 = self._last
        self._last = (now, requests, rows)
        mem = self._proc.memory_info()
        record = {
            "ts": time.time_ns() // 1000,
            "seconds": round(now - t0, 3),
            "cpu_percent": self._proc.cpu_percent(None),
            "rss_mb": round(mem.rss / 1e6, 3),
            "queue_depth": int(self._in_flight()),
            "requests": requests - r0,
            "rows": rows - w0,
        }
        line = json.dumps(record) + "\n"
        for path in self.paths:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as fh:  # one write of one line: whole or absent
                    fh.write(line)
            except OSError as exc:  # a full disk must not stop serving: the sample is lost, and said once
                if self.samples == 0:
                    log.warning("mlo: cannot record serving resources in %s: %s", path, exc)
        self.samples += 1
        return record

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception as exc:  # pragma: no cover - a sampler never takes the server down
                log.warning("mlo: resource sample failed: %s", exc)

    def stop(self) -> None:
        """Stop, after one last sample (so a short-lived server still leaves its figures)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 1)
        try:
            self.sample()
        except Exception:  # pragma: no cover
            pass


def read(home: str | os.PathLike, model: str, since_us: int | None = None, until_us: int | None = None):
    """The samples of ``model`` (every server process), oldest first, as a DataFrame (empty when none)."""
    import pandas as pd

    folder = Path(home) / FOLDER / model
    rows = []
    for path in sorted(folder.glob(f"{PREFIX}*.jsonl")) if folder.is_dir() else []:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:  # a line a dying process cut short
                    continue
                ts = rec.get("ts")
                if not isinstance(ts, int) or (since_us is not None and ts < since_us):
                    continue
                if until_us is not None and ts >= until_us:
                    continue
                rows.append(rec)
    columns = ["ts", "seconds", "cpu_percent", "rss_mb", "queue_depth", "requests", "rows"]
    df = pd.DataFrame(rows, columns=columns)
    return df.sort_values("ts", kind="stable", ignore_index=True)


def window_figures(samples, start_us: int, end_us: int) -> dict[str, float]:
    """The resource figures of one window ``[start_us, end_us)`` (NaN when no sample fell in it)."""
    out = {c: math.nan for c in COLUMNS}
    if samples is None or not len(samples):
        return out
    w = samples[(samples["ts"] >= start_us) & (samples["ts"] < end_us)]
    if not len(w):
        return out
    seconds = float(w["seconds"].sum())
    out.update(
        cpu_percent=float(w["cpu_percent"].mean()),
        rss_mb=float(w["rss_mb"].max()),
        rss_growth_mb=float(w["rss_mb"].iloc[-1] - w["rss_mb"].iloc[0]),
        queue_depth=float(w["queue_depth"].max()),
        requests_per_s=float(w["requests"].sum() / seconds) if seconds > 0 else math.nan,
    )
    return out
