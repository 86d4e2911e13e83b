"""Fixtures shared by the whole suite: a workspace per test (SQLite, and PostgreSQL where the test asks for
both), a throwaway PostgreSQL cluster, and strict mode (MLO_TEST_STRICT=1 turns missing-dependency skips
into failures, so CI notices a missing install step)."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mlo_state import reset as _reset_mlo
from strict import STRICT, need  # noqa: F401  (STRICT is read by other fixtures' modules)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    for var in ("MLO_HOME", "MLO_STORE", "MLO_ARTIFACTS", "MLO_EXPERIMENT", "MLO_PARENT_RUN", "MLO_NOTEBOOK"):
        monkeypatch.delenv(var, raising=False)
    # system metrics are sampled in the tests that are about them (tests/tracking/test_system_metrics.py)
    monkeypatch.setenv("MLO_SYSTEM_METRICS", "0")
    monkeypatch.chdir(tmp_path)
    yield
    _reset_mlo()


# -- PostgreSQL: a throwaway cluster for the session ------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self.error = None
        if not bins:
            self.error = (
                "PostgreSQL server binaries not found (apt-get install postgresql; make test does it as root)"
            )
            return
        self.bindir = Path(bins[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="mlo-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres system user
            if shutil.which("runuser") is None:
                self.error = "running as root without runuser: cannot start PostgreSQL as another user"
                return
            self.as_user = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.root, 0o777)
        self._counter = itertools.count()

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "mlo",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.resume()

    def resume(self) -> None:
        """Start the server of an initialized cluster (again, after a stop)."""
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.root} -F -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections=200",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def admin(self):
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.port} user=mlo dbname=postgres", autocommit=True)

    def new_database(self) -> str:
        name = f"mlo_test_{os.getpid()}_{next(self._counter)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://mlo@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        need(False, "psycopg is not installed (pip install 'mlo-workbench[postgres]')")
    cluster = PostgresCluster()
    need(cluster.error is None, cluster.error or "")
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        need(False, f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-500:]}")
    yield cluster
    cluster.stop()


@pytest.fixture
def own_postgres(postgres):
    """A PostgreSQL server of the test's own, for tests that stop it under a live session (the session's
    ``postgres`` stays up for the others)."""
    cluster = PostgresCluster()
    need(cluster.error is None, cluster.error or "")
    cluster.start()
    yield cluster
    cluster.stop()


# -- workspaces ----------------------------------------------------------------------------------------------------
def _make_workspace(tmp_path: Path, monkeypatch, store_url: str | None):
    import mlo
    from mlo import workspace

    home = tmp_path / ".mlo"
    monkeypatch.setenv("MLO_HOME", str(home))
    if store_url:
        monkeypatch.setenv("MLO_STORE", store_url)
    workspace.reset_cache()
    return mlo.init(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ws(request, tmp_path, monkeypatch):
    """A fresh workspace, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield _make_workspace(tmp_path, monkeypatch, None)
        return
    cluster = request.getfixturevalue("postgres")
    name = cluster.new_database()
    yield _make_workspace(tmp_path, monkeypatch, cluster.url(name))
    _reset_mlo()
    cluster.drop_database(name)


@pytest.fixture
def sqlite_ws(tmp_path, monkeypatch):
    """A fresh workspace on the embedded SQLite store."""
    return _make_workspace(tmp_path, monkeypatch, None)


@pytest.fixture
def wait_until():
    def wait(predicate, timeout: float = 30.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    return wait


@pytest.fixture
def shell(sqlite_ws):
    """A real IPython shell with ``%load_ext mlo``, on a fresh SQLite workspace."""
    import mlo
    from ipython_shell import Shell

    sh = Shell()
    yield sh
    while mlo.active_run() is not None:
        mlo.end_run()
    sh.ip.run_cell("%unload_ext mlo")
    from mlo.jupyter import cells

    cells.forget(sh.ip)  # the next test's shell starts a history of its own


# -- S3: one moto server on loopback for the session, a fresh bucket per test -----------------------------------
@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a real S3 HTTP server (moto's ThreadedMotoServer) on 127.0.0.1."""
    try:
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        need(False, f"S3 tests need moto[server] and s3fs (pip install -e '.[dev]'): {exc}")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


_buckets = itertools.count()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A new, empty bucket on the session's S3 server; the AWS variables point every client (and subprocess)
    at it with throwaway credentials."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    import boto3

    name = f"mlo-test-{os.getpid()}-{next(_buckets)}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_ws(s3_bucket, tmp_path, monkeypatch):
    """A fresh SQLite workspace whose blobs are on S3 (``s3://<bucket>/mlo``)."""
    monkeypatch.setenv("MLO_ARTIFACTS", f"s3://{s3_bucket}/mlo")
    return _make_workspace(tmp_path, monkeypatch, None)
