"""A real IPython shell for magic tests."""

import pytest
from IPython.testing.globalipapp import start_ipython

import mlo

_IPYTHON = []


def _ipython():
    if not _IPYTHON:  # start_ipython returns the shell only on its first call
        _IPYTHON.append(start_ipython())
    return _IPYTHON[0]


class Shell:
    """A real InteractiveShell whose cell errors are raised into the test (like JupySQL's TestingShell)."""

    def __init__(self):
        self.ip = _ipython()
        self.ip.run_cell("%load_ext mlo")

    def run(self, code: str):
        result = self.ip.run_cell(code, store_history=True)
        result.raise_error()
        return result.result

    def fails(self, code: str):
        result = self.ip.run_cell(code, store_history=True)
        assert not result.success
        return result.error_in_exec or result.error_before_exec


@pytest.fixture
def shell(sqlite_ws):
    sh = Shell()
    yield sh
    if mlo.active_run() is not None:
        mlo.end_run()
    sh.ip.run_cell("%unload_ext mlo")
