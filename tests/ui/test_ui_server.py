"""The standalone ``mlo ui`` server: the same API as the Jupyter extension, behind its token, against what a
stranger on the network sends (no token, a wrong one, huge query strings, path traversal, idle connections)."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

import mlo
from mlo.ui.server import COOKIE, UiServer, built

TOKEN = "a-test-token-1234"


@pytest.fixture
def server(sqlite_ws, tmp_path):
    pytest.importorskip("uvicorn")
    with mlo.start_run("first", experiment="ui") as run:
        mlo.log_params({"C": 1.0, "depth": 3})
        for step in range(5):
            mlo.log_metric("loss", 1.0 / (step + 1), step=step)
        (tmp_path / "notes.txt").write_text("hello")
        mlo.log_artifact(tmp_path / "notes.txt")
    srv = UiServer(sqlite_ws.home, TOKEN, limits={"header_timeout": 1.0}).start()
    srv.run_id = run.id
    yield srv
    srv.stop()


def get(srv, path, headers=None, token=True):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    hdrs = {"Authorization": f"token {TOKEN}"} if token else {}
    conn.request("GET", path, headers={**hdrs, **(headers or {})})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_the_api_answers_as_the_jupyter_extension_does(server):
    response, body = get(server, "/mlo/api/experiments")
    assert response.status == 200 and [e["name"] for e in json.loads(body)] == ["ui"]
    response, body = get(server, "/mlo/api/runs?where=metrics.loss%20%3C%201")
    page = json.loads(body)
    assert page["total"] == 1 and page["runs"][0]["params.depth"] == 3
    response, body = get(server, f"/mlo/api/runs/{server.run_id}/metrics?since_step=2")
    assert json.loads(body)["metrics"]["loss"]["step"] == [3, 4]
    response, body = get(server, f"/mlo/api/runs/{server.run_id}/artifacts/notes.txt")
    assert body == b"hello" and response.getheader("Content-Security-Policy").startswith("sandbox")


def test_without_the_token_every_path_is_a_one_line_401(server):
    for path in ("/", "/static/app.js", "/mlo/api/experiments", f"/mlo/api/runs/{server.run_id}"):
        response, body = get(server, path, token=False)
        assert response.status == 401, path
        error = json.loads(body)["error"]
        assert "\n" not in error and "token" in error
    response, _ = get(
        server, "/mlo/api/experiments", {"Authorization": "token wrong-token-0000"}, token=False
    )
    assert response.status == 401
    response, _ = get(server, "/mlo/api/experiments", {"Cookie": f"{COOKIE}=nope"}, token=False)
    assert response.status == 401


@pytest.mark.skipif(not built(), reason="the mlo ui app is not built (make labextension)")
def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_url(server):
    response, _ = get(server, f"/?token={TOKEN}&x=1", token=False)
    assert response.status == 303 and response.getheader("Location") == "/?x=1"
    cookie = response.getheader("Set-Cookie")
    assert cookie.startswith(f"{COOKIE}={TOKEN}") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    response, body = get(server, "/", {"Cookie": f"{COOKIE}={TOKEN}"}, token=False)
    assert response.status == 200 and b"app.js" in body
    assert "script-src 'self'" in response.getheader("Content-Security-Policy")
    response, body = get(server, "/static/app.js", {"Cookie": f"{COOKIE}={TOKEN}"}, token=False)
    assert response.status == 200 and response.getheader("Content-Type").startswith(
        ("application/javascript", "text/javascript")
    )


def test_no_server_without_a_token(sqlite_ws):
    from mlo.errors import InvalidInput
    from mlo.ui.server import create_app

    for weak in ("", "short", None):
        with pytest.raises(InvalidInput, match="at least 8 characters"):
            create_app(sqlite_ws.home, weak)


def test_path_traversal_reaches_nothing_outside(server, tmp_path):
    (tmp_path / "secret.txt").write_text("do not serve")
    for path in (
        f"/mlo/api/runs/{server.run_id}/artifacts/../../secret.txt",
        f"/mlo/api/runs/{server.run_id}/artifacts/%2e%2e/%2e%2e/secret.txt",
        f"/mlo/api/runs/{server.run_id}/artifacts/{tmp_path}/secret.txt",
        "/static/..%2f..%2fapi.py",
        "/static/%2e%2e",
    ):
        response, body = get(server, path)
        assert response.status == 404, path
        assert b"do not serve" not in body and "\n" not in json.loads(body)["error"]


def test_huge_and_repeated_query_strings_are_refused_in_one_line(server):
    response, body = get(server, "/mlo/api/runs?where=" + "x" * 9000)
    assert response.status == 414 and "longer than" in json.loads(body)["error"]
    response, body = get(server, "/mlo/api/runs?" + "&".join(["experiment=a"] * 100))
    assert response.status == 400 and "at most" in json.loads(body)["error"]
    # a request head larger than the guard allows never reaches the app
    response, body = get(server, "/mlo/api/runs?where=" + "y" * 70_000)
    assert response.status in (400, 414, 431)
    response, body = get(server, "/mlo/api/runs?limit=many")
    assert response.status == 400 and json.loads(body)["error"] == "limit takes whole numbers, got 'many'"
    response, body = get(server, "/mlo/api/runs?where=metrics.loss%20%3E%3E%3E%201")
    assert response.status == 400 and "\n" not in json.loads(body)["error"]


def test_an_idle_connection_is_closed_and_others_still_served(server):
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    idle.sendall(b"GET /mlo/api/experiments HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    started = time.monotonic()
    assert idle.recv(1024) == b""  # closed by the header timeout (1 s here)
    assert time.monotonic() - started < 8
    idle.close()
    response, _ = get(server, "/mlo/api/experiments")
    assert response.status == 200


def test_unknown_paths_methods_and_a_missing_workspace(server, tmp_path):
    response, body = get(server, "/mlo/api/nothing-here")
    assert response.status == 404 and "no API endpoint" in json.loads(body)["error"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/mlo/api/experiments", body=b"{}", headers={"Authorization": f"token {TOKEN}"})
    response = conn.getresponse()
    assert response.status == 405 and "GET" in json.loads(response.read())["error"]
    gone = UiServer(tmp_path / "nowhere" / ".mlo", TOKEN, root=tmp_path).start()
    try:
        response, body = get(gone, "/mlo/api/experiments")
        assert response.status == 404 and "run `mlo init`" in json.loads(body)["error"]
    finally:
        gone.stop()


def test_the_compare_endpoint_over_http_refuses_hostile_values_in_one_line(server):
    response, body = get(server, "/mlo/api/compare?view=scatter&metric=metrics.loss&param=params.C")
    assert response.status == 200 and json.loads(body)["x"] == "C"
    for query in (
        "view=scatter&metric=metrics.loss%27%29%3B%20DROP%20TABLE%20runs%3B--",
        "view=parallel&where=params.C%20%3E%3E%3E%201",
        "view=brush&brush=%7B%22params.C%22%3A%7B%22lo%22%3A%22x%22%7D%7D",
        "view=%3Cscript%3E",
    ):
        response, body = get(server, f"/mlo/api/compare?{query}")
        error = json.loads(body)["error"]
        assert response.status == 400 and "\n" not in error, (query, error)
        assert response.getheader("Content-Type") == "application/json"  # an echoed value is never markup
    response, body = get(server, "/mlo/api/experiments")
    assert [e["name"] for e in json.loads(body)] == ["ui"]  # nothing lost
