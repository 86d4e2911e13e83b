"""Loaded into the kernel of a pipeline stage or a reproduction (``--IPKernelApp.exec_lines``): every cell joins
the kernel's history and is recorded on the stage's run (see :mod:`mlo.jupyter.cells`), and metrics logged by
the notebook are written at the end of every cell, so a kernel that has to be stopped hard at shutdown loses
nothing. The kernel attaches to the stage's run from the start, so its system metrics (CPU, memory, I/O of the
kernel process) are sampled for the whole stage.

The kernel does not open the store for this: what it records on the stage's run goes to the journal its starter
names (:mod:`mlo.tracking.journal`), which the starter, whose store is open already, stores when the kernel has
ended. Installing the cell recorder happens on a thread of its own, while the kernel answers its client and the
client sends the first cell; the first cell waits for that thread, so it is recorded on the run, and no import
of the notebook's own runs beside it."""

from __future__ import annotations

import threading

from IPython import get_ipython


def _attach(shell) -> None:
    from ..tracking import session
    from .cells import install

    install(shell)
    try:
        session.attached_run_id()  # attach now (MLO_RUN_ID): sampling starts with the kernel
    except Exception:  # a store fault (outside a pipeline) shows in the first cell that logs
        pass


def _attached(*_args) -> None:
    """Before a cell runs: the run is attached (or failed to), so the cell is recorded on it."""
    global _attaching
    if _attaching is not None:
        _attaching.join()
        _attaching = None


def _flush(*_args) -> None:
    from ..tracking import session

    try:
        session.flush()
    except Exception:  # never let bookkeeping break the user's cell
        pass


_attaching: threading.Thread | None = None
_shell = get_ipython()
if _shell is not None:
    _shell.events.register("pre_execute", _attached)
    _shell.events.register("post_execute", _flush)
    _attaching = threading.Thread(target=_attach, args=(_shell,), name="mlo-attach", daemon=True)
    _attaching.start()
