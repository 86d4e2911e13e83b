"""Putting mlo's process state back between tests (and between the pages of the docs test): buffered metrics
dropped, capture jobs finished, the active-run stack, snapshot scope and workspace cache emptied."""

from __future__ import annotations


def reset() -> None:
    from mlo import workspace
    from mlo.tracking import session

    state = session._state
    for w in list(state.writers.values()):
        w.metrics.discard()
    for job in list(state.captures.values()):
        try:
            job.result(timeout=30)
        except Exception:
            pass
    state.stop.set()
    if state.executor is not None:
        state.executor.shutdown(wait=True)
    session._state = session._State()
    from mlo.data import snapshots

    snapshots.clear_scope()
    workspace.reset_cache()
    from mlo.tracking import autolog, system_metrics

    if autolog._patched or autolog._waiting:  # a test (or a docs page) left autolog on
        autolog.autolog(disable=True)
    for name in [n for n in autolog._registry if n not in autolog.BUILTIN]:  # integrations a test added
        del autolog._registry[name]
    system_metrics._chosen.clear()
    with system_metrics.SAMPLER.lock:
        system_metrics.SAMPLER.runs.clear()
    from mlo.governance import problem

    problem.reset()  # a problem set with mlo.problem() lives for the process
