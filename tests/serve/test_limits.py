"""What one client may cost a server, probed over real loopback sockets: bodies too large (announced or
streamed), too slow or nested too deep, too many rows, hostile values (NaN, infinities, an integer above 2⁶³),
idle and half-open connections, too many requests at once, and a log flood."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

import mlo
from mlo.errors import InvalidInput
from mlo.serve.limits import Limits, json_depth_exceeds, parse_size


def calls(ws) -> list[int]:
    """The number of rows of each call of model ``c`` so far."""
    path = ws.home.parent / "calls.txt"
    return [int(n) for n in path.read_text().split()] if path.exists() else []


@pytest.fixture
def counted(sqlite_ws):
    """Model ``c`` (an int64, a float64 and a text column) that notes each call in a file, and a float32 model
    ``f32``."""
    notes = str(sqlite_ws.home.parent / "calls.txt")

    def model(X):
        with open(notes, "a") as fh:
            fh.write(f"{len(X)}\n")
        return X["n"] * 2

    example = pd.DataFrame({"n": [1, 2], "v": [0.5, 1.5], "s": ["a", "b"]}).astype({"n": "int64"})
    mlo.register_model(model, "c", input_example=example, alias="production")
    mlo.register_model(lambda X: X["w"], "f32", signature={"w": "float32"}, alias="production")
    return sqlite_ws


def raw(srv, data: bytes, read: bool = True, timeout: float = 10.0) -> bytes:
    """Send bytes on a fresh connection; the whole answer (until the server closes or 1 response is read)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(h.split(b":")[1])
                        for h in head.split(b"\r\n")
                        if h.lower().startswith(b"content-length")
                    ),
                    None,
                )
                if length is not None and len(body) >= length:
                    break
        return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


# -- bodies -------------------------------------------------------------------------------------------------------
def test_bodies_over_the_cap_are_refused_before_they_are_read(counted, client_for):
    with mlo.serve("c@production", limits={"max_body": "64k"}) as srv:
        # announced: refused on the headers alone, the 50 MB never sent
        head = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 52428800\r\n\r\n"
        answer = raw(srv, head)
        assert status_of(answer) == 413 and b"max_body" in answer and b"connection: close" in answer.lower()
        # streamed without a length (chunked): refused once it passes the cap
        chunk = b'{"records": [' + b'{"n": 1, "v": 0.5, "s": "a"},' * 3000
        chunked = b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        assert status_of(raw(srv, chunked)) == 413
        ok = json.dumps({"records": [{"n": 1, "v": 0.5, "s": "a"}] * 1000}).encode()
        assert len(ok) < 64 * 1024 and status_of(raw(srv, post("/predict", ok))) == 200
        health = client_for(srv).get("/health")[2]
        assert health["refused"]["too_large"] == 2 and health["status"] == "ok"
    assert calls(counted) == [2, 2, 1000]  # the example, then the one request that fit


def test_too_many_rows_is_413_and_the_model_is_not_called(counted, client_for):
    with mlo.serve("c@production", limits={"max_rows": 100}) as srv:
        c = client_for(srv)
        status, _, doc = c.post("/predict", {"columns": {"n": [1] * 101, "v": [0.5] * 101, "s": ["a"] * 101}})
        assert status == 413 and "at most 100" in doc["error"]
        ids = c.post("/predict", {"records": [{"n": 1, "v": 0.5, "s": "a"}] * 100})[2]["ids"]
        status, _, doc = c.post("/labels", {"ids": ids + ids[:1], "labels": [1] * 101})
        assert status == 413
    assert calls(counted) == [2, 2, 100]


def test_deeply_nested_json_is_400_not_a_traceback(counted, client_for, caplog):
    with caplog.at_level(logging.INFO):
        with mlo.serve("c@production") as srv:
            c = client_for(srv)
            for depth in (33, 1000, 100_000):
                status, _, doc = c.post("/predict", b"[" * depth + b"]" * depth)
                assert status == 400 and "nests deeper than 32" in doc["error"], depth
            # brackets inside strings are text, not nesting
            text = "[{" * 40
            status, _, doc = c.post("/predict", {"records": [{"n": 1, "v": 0.5, "s": text}]})
            assert status == 200
            assert c.get("/health")[2]["errors"] == 0
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged
    assert json_depth_exceeds(b'{"a": [[1]]}', 2) and not json_depth_exceeds(b'{"a": "[[[[[[["}', 2)
    assert not json_depth_exceeds(b'{"a": "\\"[[[[[[[", "b": [1]}', 2)


def test_a_slow_body_gets_408(counted, client_for):
    with mlo.serve("c@production", limits={"body_timeout": 0.5}) as srv:
        start = time.monotonic()
        answer = raw(srv, b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
        assert status_of(answer) == 408 and b"body_timeout" in answer and time.monotonic() - start < 5
        body = json.dumps({"records": [{"n": 1, "v": 0.5, "s": "a"}]}).encode()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:  # slow, but in time
            s.sendall(post("/predict", body)[: -len(body) + 5])
            time.sleep(0.2)
            s.sendall(body[5:])
            assert b" 200 " in s.recv(4096)
        assert client_for(srv).get("/health")[2]["connections"]["body_timeouts"] == 1


# -- hostile values -------------------------------------------------------------------------------------------------
HOSTILE = [
    (b'{"records": [{"n": 1, "v": NaN, "s": "a"}]}', "'v' holds NaN"),
    (b'{"records": [{"n": 1, "v": Infinity, "s": "a"}]}', "'v' holds Infinity"),
    (b'{"records": [{"n": 1, "v": -Infinity, "s": "a"}]}', "'v' holds -Infinity"),
    (b'{"records": [{"n": 1, "v": 1e400, "s": "a"}]}', "'v' holds Infinity"),
    (
        b'{"records": [{"n": 18446744073709551616, "v": 1.0, "s": "a"}]}',
        "'n' holds 18446744073709551616, outside",
    ),
    (b'{"records": [{"n": 9223372036854775808, "v": 1.0, "s": "a"}]}', "outside the range of int64"),
    (b'{"columns": {"n": [1, -9223372036854775809], "v": [1, 2], "s": ["a", "b"]}}', "'n' holds"),
    (b'[[1, NaN, "a"]]', "'v' holds NaN"),
    (b'{"records": [{"n": 1, "v": 1.0, "s": NaN}]}', "'s' holds NaN"),
]


def test_nan_infinity_and_out_of_range_values_are_422_before_the_model_runs(counted, client_for):
    with mlo.serve("c@production") as srv, mlo.serve("f32@production") as f32:
        c = client_for(srv)
        for body, fragment in HOSTILE:
            status, _, doc = c.post("/predict", body)
            assert status == 422 and fragment in doc["error"], (body, doc)
        status, _, doc = client_for(f32).post("/predict", {"records": [{"w": 1e39}]})
        assert status == 422 and "outside the range of float" in doc["error"]
        assert client_for(f32).post("/predict", {"records": [{"w": 3e38}]})[0] == 200
        assert c.post("/predict", {"records": [{"n": 2**63 - 1, "v": 1.7e308, "s": "a"}]})[0] == 200
        health = c.get("/health")[2]
        assert health["rejected"] == len(HOSTILE) and health["errors"] == 0
    assert calls(counted) == [2, 2, 1]  # the model ran for its example and the one request in range


def test_an_integer_above_2_63_cannot_poison_the_log(counted, client_for):
    """The probe: one request turned a numeric feature into text for every later read (67% drift)."""
    rng = np.random.default_rng(0)
    with mlo.serve("c@production") as srv:
        c = client_for(srv)
        for i in range(50):
            if i == 25:
                bad = {"records": [{"n": 2**64 + i, "v": 1.0, "s": "a"}]}
                assert c.post("/predict", bad)[0] == 422
            row = {"n": int(rng.integers(0, 100)), "v": float(rng.normal()), "s": "a"}
            assert c.post("/predict", {"records": [row]})[0] == 200
    log = mlo.monitor.read_log("c")
    assert len(log) == 50 and str(log["f.n"].dtype) == "int64" and str(log["f.v"].dtype) == "float64"
    assert log["error"].isna().all()


def test_untyped_models_refuse_nan_anywhere(sqlite_ws, client_for):
    mlo.register_model(lambda X: [0] * len(X), "free")  # no example, no signature
    with mlo.serve("free@v1") as srv:
        c = client_for(srv)
        assert c.post("/predict", b'{"records": [{"a": [1.0, [2.0, NaN]]}]}')[0] == 422
        assert c.post("/predict", b"[[1.0, Infinity]]")[0] == 422
        assert c.post("/predict", {"records": [{"a": 1.0}]})[0] == 200


# -- connections ----------------------------------------------------------------------------------------------------
def test_idle_and_half_sent_connections_are_closed_and_health_still_answers(counted, client_for):
    with mlo.serve("c@production", limits={"header_timeout": 0.5}) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(300)]
        try:
            c = client_for(srv)
            for _ in range(5):
                assert c.get("/health")[0] == 200
            slow = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            idle.append(slow)
            start = time.monotonic()
            slow.sendall(b"GET /health HTTP/1.1\r\n")
            cut = False
            for _ in range(20):  # a header a little at a time: slower than the header timeout allows
                time.sleep(0.1)
                try:
                    slow.sendall(b"X-Slow: 1\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    cut = True
                    break
            assert cut and time.monotonic() - start < 1.5
            assert sum(s.recv(1) == b"" for s in idle[:300]) == 300  # every idle one closed by the server
            assert c.get("/health")[2]["connections"]["header_timeouts"] >= 301
            # a kept-alive client that pauses between requests (within keep_alive) is not cut
            time.sleep(0.8)
            assert c.get("/health")[0] == 200
        finally:
            for s in idle:
                s.close()


def test_at_the_connection_cap_the_longest_idle_connection_makes_room(counted, client_for):
    with mlo.serve("c@production", limits={"max_connections": 20, "header_timeout": 30}) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(20)]
        try:
            time.sleep(0.2)
            c = client_for(srv)
            for _ in range(3):
                status, _, doc = c.post("/predict", {"records": [{"n": 1, "v": 0.5, "s": "a"}]})
                assert status == 200
            assert idle[0].recv(1) == b""  # the oldest idle connection was closed for the newcomer
            assert c.get("/health")[2]["connections"]["evicted"] >= 1
        finally:
            for s in idle:
                s.close()


def test_too_many_requests_at_once_get_503_and_health_stays_up(sqlite_ws, client_for):
    def slow(X):
        time.sleep(0.6)
        return X["x"]

    mlo.register_model(slow, "slow", signature={"x": "float64"})
    with mlo.serve("slow@v1", limits={"max_concurrency": 2}) as srv:
        answers: list[tuple[int, dict]] = []
        lock = threading.Lock()

        def ask() -> None:
            status, headers, _ = client_for(srv).post("/predict", {"records": [{"x": 1.0}]})
            with lock:
                answers.append((status, headers))

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        assert client_for(srv).get("/health")[0] == 200
        for t in threads:
            t.join()
        statuses = sorted(s for s, _ in answers)
        assert statuses.count(200) >= 2 and statuses.count(503) >= 1 and set(statuses) <= {200, 503}
        assert all(h.get("retry-after") == "1" for s, h in answers if s == 503)


# -- logs -----------------------------------------------------------------------------------------------------------
def test_error_logs_are_rate_limited(sqlite_ws, client_for, caplog):
    def fragile(X):
        raise ValueError("always")

    mlo.register_model(fragile, "fragile", signature={"x": "float64"})
    with caplog.at_level(logging.INFO, logger="mlo.serve"):
        with mlo.serve("fragile@v1", token="t" * 20) as srv:
            c = client_for(srv)
            for _ in range(200):
                assert (
                    c.post("/predict", {"records": [{"x": 1.0}]}, {"Authorization": "Bearer " + "t" * 20})[0]
                    == 500
                )
                assert c.post("/predict", {"records": [{"x": 1.0}]})[0] == 401
    failed = [r for r in caplog.records if "predict failed" in r.getMessage()]
    refused = [r for r in caplog.records if "without a valid token" in r.getMessage()]
    assert 1 <= len(failed) <= 11 and 1 <= len(refused) <= 11
    assert mlo.monitor.read_log("fragile")["error"].notna().sum() == 200  # the log itself keeps every one


# -- settings -------------------------------------------------------------------------------------------------------
def test_limits_are_checked_and_say_what_to_fix(counted):
    assert parse_size("4MB") == 4 * 1024**2 and parse_size("512k") == 512 * 1024 and parse_size(10) == 10
    assert Limits.coerce({"max_body": "1 MiB"}).max_body == 1024**2
    with pytest.raises(InvalidInput, match="did you mean 'max_body'"):
        mlo.serve("c@production", limits={"max_bdy": 10})
    with pytest.raises(InvalidInput, match="size like '4MB'"):
        Limits(max_body="lots")
    with pytest.raises(InvalidInput, match="above 0"):
        Limits(max_rows=0)
    off = Limits.unlimited()
    assert off.max_body is None and off.header_timeout is None and off.keep_alive == 5.0
    with mlo.serve("c@production", limits={"max_rows": None}) as srv:
        assert srv.metadata()["name"] == "c" and srv.limits.max_rows is None


def test_memory_returns_to_its_level_after_large_requests(sqlite_ws):
    """A server in its own process (its memory is its own): requests at the row cap raise it for their
    duration, then it falls back, and more of them do not ratchet it up."""
    import http.client
    import os
    import re
    import subprocess
    import sys

    psutil = pytest.importorskip("psutil")
    from sklearn.linear_model import LogisticRegression

    cols = [f"x{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(500, 10)), columns=cols)
    mlo.register_model(
        LogisticRegression().fit(X, X.x0 > 0), "wide", input_example=X.head(), alias="production"
    )
    big = json.dumps(
        {"records": pd.DataFrame(rng.normal(size=(10_000, 10)), columns=cols).to_dict("records")}
    )
    one = json.dumps({"records": [dict.fromkeys(cols, 0.1)]})
    env = {**os.environ, "MLO_HOME": str(sqlite_ws.home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlo", "serve", "wide@production", "--port", "0", "--no-log"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+) ", proc.stderr.readline()).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def call(body: str) -> int:
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status

        for _ in range(100):
            assert call(one) == 200
        rss = psutil.Process(proc.pid).memory_info
        time.sleep(0.5)
        base = rss().rss
        after = []
        for _ in range(4):
            assert call(big) == 200
            time.sleep(0.5)
            after.append(rss().rss)
        assert max(after) < base * 1.15, (base, after)
        assert after[-1] < after[0] + 15e6, (base, after)  # no ratchet
        conn.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_oversized_headers_are_431_however_they_arrive(counted, client_for):
    with mlo.serve("c@production") as srv:
        big = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
        assert status_of(raw(srv, big)) == 431  # in one piece
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")
            for _ in range(40):  # in pieces, on one connection
                try:
                    s.sendall(b"X-Piece: " + b"b" * 1000 + b"\r\n")
                except OSError:
                    break
            assert b" 431 " in s.recv(1024)
        c = client_for(srv)
        for _ in range(3):  # kept-alive requests do not add up
            assert c.request("GET", "/health", None, {"X-Ok": "c" * 8000})[0] == 200
        assert c.get("/health")[2]["connections"]["headers_too_large"] == 2
