"""Following aliases while serving: a thread that asks every slot to re-read its alias every ``poll`` seconds, so a
promotion or rollback from any process reaches a running server. A slot's ``refresh()`` swaps in the new version
and returns True; a store hiccup is logged and the next round retries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .inputs import one_line

log = logging.getLogger("mlo.serve")


class AliasFollower:
    """Re-reads the aliases of ``slots()`` every ``poll`` seconds (0: never) once :meth:`start` is called."""

    def __init__(self, slots: Callable[[], Sequence[Any]], poll: float, name: str):
        self._slots = slots
        self.poll = float(poll or 0)
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, follows: bool) -> None:
        """Start the thread when ``follows`` (some slot names an alias) and polling is on."""
        if self.poll > 0 and follows:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def refresh(self) -> bool:
        """Check every followed alias now; True when a version was swapped."""
        swapped = False
        for slot in self._slots():
            try:
                swapped = slot.refresh() or swapped
            except Exception as exc:  # a store hiccup must not stop serving: the next round retries
                log.warning("%s: cannot read alias %s (%s)", slot.route, slot.ref, one_line(exc))
        return swapped

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
