"""A real IPython InteractiveShell for magic tests, shared by every test folder (``shell`` fixture in
tests/conftest.py). Cell errors are raised into the test, like JupySQL's TestingShell."""

from __future__ import annotations


def _ipython():
    from IPython.testing.globalipapp import get_ipython, start_ipython

    return start_ipython() or get_ipython()  # start_ipython returns the shell only on its first call


class Shell:
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
