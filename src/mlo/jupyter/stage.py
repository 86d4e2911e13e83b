"""Loaded into the kernel of a pipeline stage or a reproduction (``--IPKernelApp.exec_lines``): every cell joins
the kernel's history and is recorded on the stage's run (see :mod:`mlo.jupyter.cells`), and metrics logged by
the notebook are written at the end of every cell, so a kernel that has to be stopped hard at shutdown loses
nothing. The kernel attaches to the stage's run from the start, so its system metrics (CPU, memory, I/O of the
kernel process) are sampled for the whole stage."""

from __future__ import annotations

from IPython import get_ipython

from ..tracking import session


def _flush(*_args) -> None:
    try:
        session.flush()
    except Exception:  # never let bookkeeping break the user's cell
        pass


_shell = get_ipython()
if _shell is not None:
    _shell.events.register("post_execute", _flush)
    from .cells import install

    install(_shell)
    try:
        session.attached_run_id()  # attach now (MLO_RUN_ID): sampling starts with the kernel
    except Exception:  # a store fault shows in the first cell that logs
        pass
