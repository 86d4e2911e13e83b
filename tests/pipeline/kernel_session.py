"""A real Jupyter kernel driven cell by cell, as a person drives one from JupyterLab: cells sent one at a time with
their cell ids, in any order, some of them failing, with files changed between them."""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import KernelManager


@dataclass
class Reply:
    status: str  # ok | error
    execution_count: int | None
    ename: str | None = None
    evalue: str | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: list = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("mlo: ⚠")]


class KernelSession:
    """``with KernelSession(cwd) as k: k.run("x = 1", cell_id="a")``. The kernel inherits the environment (so
    ``MLO_HOME`` points it at the test's workspace) plus ``env``."""

    def __init__(self, cwd: str | os.PathLike, env: dict[str, str] | None = None, timeout: float = 120):
        self.cwd = Path(cwd)
        self.env = env or {}
        self.timeout = timeout
        self.km: KernelManager | None = None
        self.kc = None

    def __enter__(self) -> KernelSession:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(self.cwd), env={**os.environ, **self.env})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=self.timeout)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)

    def run(self, source: str, *, cell_id: str | None = None) -> Reply:
        """Execute one cell (as the front end does, with its cell id); wait for it; return what it printed."""
        kc = self.kc
        content = {
            "code": source,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg = kc.session.msg("execute_request", content)
        if cell_id is not None:
            msg["metadata"]["cellId"] = cell_id
        kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        out: list[str] = []
        err: list[str] = []
        outputs: list = []
        while True:  # the iopub messages of this cell, until the kernel is idle again
            try:
                m = kc.get_iopub_msg(timeout=self.timeout)
            except queue.Empty:
                raise TimeoutError(f"the cell did not finish in {self.timeout} s: {source[:80]!r}") from None
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            kind, c = m["msg_type"], m["content"]
            if kind == "stream":
                (out if c["name"] == "stdout" else err).append(c["text"])
            elif kind in ("execute_result", "display_data", "error"):
                outputs.append(c)
            elif kind == "status" and c["execution_state"] == "idle":
                break
        reply = kc.get_shell_msg(timeout=self.timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=self.timeout)
        c = reply["content"]
        return Reply(
            c["status"],
            c.get("execution_count"),
            c.get("ename"),
            c.get("evalue"),
            "".join(out),
            "".join(err),
            outputs,
        )

    def ok(self, source: str, *, cell_id: str | None = None) -> Reply:
        """Run a cell that must succeed."""
        r = self.run(source, cell_id=cell_id)
        assert r.status == "ok", f"{r.ename}: {r.evalue}\n{r.stderr}\n--- in cell:\n{source}"
        return r
