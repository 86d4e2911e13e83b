"""Canary routing (split, sticky keys, forced routes) and alias following: promotion and rollback from another
thread while clients hammer the server, with no failed request."""

from __future__ import annotations

import math
import threading
import time

import pandas as pd
import pytest

import mlo

SIGNATURE = {"x": "float64"}
EXAMPLE = pd.DataFrame({"x": [1.0, 2.0]})


def scaled(factor: float, marker: str | None = None):
    """A cheap model: x * factor. Given x == 999 it touches ``marker`` and sleeps 1 s: a request in flight."""

    def model(X):
        if marker is not None and (X["x"] == 999.0).any():
            open(marker, "w").close()
            time.sleep(1.0)
        return X["x"] * factor

    return model


def broken(X):
    raise RuntimeError("this version cannot predict")


@pytest.fixture
def scales(sqlite_ws, tmp_path):
    """Model ``m``: v1 = x, v2 = 2x (production → v1, staging → v2), v3 raises."""
    marker = str(tmp_path / "in-flight")
    mlo.register_model(
        scaled(1.0, marker), "m", signature=SIGNATURE, input_example=EXAMPLE, alias="production"
    )
    mlo.register_model(scaled(2.0), "m", signature=SIGNATURE, input_example=EXAMPLE, alias="staging")
    mlo.register_model(broken, "m", signature=SIGNATURE, input_example=EXAMPLE)
    return sqlite_ws


def ask(c, x: float = 1.0, headers: dict | None = None):
    return c.post("/predict", {"records": [{"x": x}]}, headers)


def test_canary_share_is_within_binomial_bounds_and_logged(scales, client_for):
    n, share = 2000, 0.2
    with mlo.serve("m@production", canary="m@staging:20", seed=7) as srv:
        c = client_for(srv)
        routes = []
        for _ in range(n):
            status, headers, doc = ask(c, 3.0)
            assert status == 200 and headers["x-mlo-route"] == doc["route"]
            assert doc["predictions"] == ([6.0] if doc["route"] == "canary" else [3.0])
            assert doc["version"] == (2 if doc["route"] == "canary" else 1)
            routes.append(doc["route"])
        meta = c.get("/metadata")[2]
        assert meta["canary_percent"] == 20 and meta["canary"]["version"] == 2
        assert c.get("/health")[2]["canary"] == {"model": "m", "version": 2}
    canary = routes.count("canary")
    sigma = math.sqrt(n * share * (1 - share))
    assert abs(canary - n * share) <= 4 * sigma, canary
    log = mlo.monitor.read_log("m")
    assert len(log) == n
    assert (log["route"] == "canary").sum() == canary
    assert set(log.loc[log["route"] == "canary", "version"]) == {2}
    assert set(log.loc[log["route"] == "canary", "alias"]) == {"staging"}
    assert set(log.loc[log["route"] == "stable", "alias"]) == {"production"}


def test_route_keys_are_sticky_only_when_the_operator_names_the_header(scales, client_for):
    with mlo.serve("m@production", canary="m@staging:30%", route_key="X-User-Id") as srv:
        c = client_for(srv)
        by_key = {}
        for k in range(200):
            seen = {ask(c, headers={"X-User-Id": f"user-{k}"})[2]["route"] for _ in range(3)}
            assert len(seen) == 1
            by_key[k] = seen.pop()
        assert 20 <= list(by_key.values()).count("canary") <= 100
        assert c.get("/metadata")[2]["route_key"] == "X-User-Id"
        # the operator can force a side from Python (smoke tests); a client cannot
        assert srv.service.predict({"records": [{"x": 1.0}]}, route="canary")["version"] == 2
        assert srv.service.predict({"records": [{"x": 1.0}]}, route="stable")["version"] == 1


def test_clients_cannot_steer_the_canary(scales, client_for):
    """No header names a route, and without route_key no header is hashed: a client sending the same key or
    asking for the canary by name gets the random split like everyone else."""
    with mlo.serve("m@production", canary="m@staging:50", seed=3) as srv:
        c = client_for(srv)
        forced = [ask(c, headers={"X-MLO-Route": "canary"})[2]["route"] for _ in range(60)]
        keyed = [ask(c, headers={"X-MLO-Route-Key": "me"})[2]["route"] for _ in range(60)]
        assert {"stable", "canary"} <= set(forced) and {"stable", "canary"} <= set(keyed)
        assert c.get("/metadata")[2]["route_key"] is None
    with mlo.serve("m@production") as srv:
        status, _, doc = ask(client_for(srv), headers={"X-MLO-Route": "canary"})
        assert status == 200 and doc["route"] == "stable"
        with pytest.raises(mlo.errors.InvalidInput, match="no canary"):
            srv.service.predict({"records": [{"x": 1.0}]}, route="canary")


def test_rollback_under_load_fails_no_request(scales, client_for, tmp_path):
    stop = threading.Event()
    seen: list[list[int]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def hammer(srv) -> None:
        c = client_for(srv)
        mine: list[int] = []
        while not stop.is_set():
            status, _, doc = ask(c, 1.0)
            if status != 200 or doc["predictions"] != [float(doc["version"])]:
                with lock:
                    failures.append(f"{status} {doc}")
            else:
                mine.append(doc["version"])
        with lock:
            seen.append(mine)

    def wait_for(version: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if srv.service.stable.current.number == version:
                return
            time.sleep(0.01)
        raise AssertionError(f"the server never swapped to v{version}")

    with mlo.serve("m@production", poll=0.05) as srv:
        threads = [threading.Thread(target=hammer, args=(srv,)) for _ in range(4)]
        for t in threads:
            t.start()
        slow: dict = {}
        in_flight = threading.Thread(target=lambda: slow.update(doc=ask(client_for(srv), 999.0)))
        time.sleep(0.3)
        in_flight.start()  # takes 1 s on v1, while the alias moves under it
        marker = tmp_path / "in-flight"
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        mlo.set_alias("m", "production", 2)
        wait_for(2)
        time.sleep(0.5)
        mlo.rollback("m", "production", reason="bad canary")
        wait_for(1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        in_flight.join()
        swaps = [(s["from"], s["to"]) for s in srv.service.stable.swaps]
    assert failures == []
    assert (
        slow["doc"][0] == 200 and slow["doc"][2]["version"] == 1 and slow["doc"][2]["predictions"] == [999.0]
    )
    assert swaps == [(1, 2), (2, 1)]
    for versions in seen:  # each client saw v1, then v2, then v1 again: no going back and forth
        changes = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
        assert changes == [1, 2, 1], changes
    log = mlo.monitor.read_log("m")
    assert log["error"].isna().all() and set(log["version"]) == {1, 2}
    assert len(log) == sum(len(v) for v in seen) + 1


def test_a_version_that_cannot_predict_is_not_swapped_in(scales, client_for, caplog):
    with mlo.serve("m@production", poll=0.05) as srv:
        c = client_for(srv)
        with caplog.at_level("ERROR", logger="mlo.serve"):
            mlo.set_alias("m", "production", 3)
            time.sleep(0.5)
        assert ask(c)[2]["version"] == 1 and c.get("/health")[0] == 200
        assert any("v3, which failed to load" in r.getMessage() for r in caplog.records)
        assert srv.service.stable.swaps == []
        mlo.set_alias("m", "production", 2)
        deadline = time.monotonic() + 10
        while ask(c)[2]["version"] != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ask(c)[2]["version"] == 2


def test_pinned_versions_do_not_follow_and_the_canary_follows_its_alias(scales, client_for):
    with mlo.serve("m@v1", canary="m@staging:50", poll=0.05) as srv:
        c = client_for(srv)
        mlo.set_alias("m", "staging", 1)
        deadline = time.monotonic() + 10
        while srv.service.canary.current.number != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert srv.service.predict({"records": [{"x": 1.0}]}, route="canary")["version"] == 1
        mlo.set_alias("m", "production", 2)
        time.sleep(0.3)
        assert srv.service.predict({"records": [{"x": 1.0}]}, route="stable")["version"] == 1
        meta = c.get("/metadata")[2]
        assert meta["ref"] == "m/1" and meta["alias"] is None and meta["canary"]["ref"] == "m@staging"
    assert repr(srv).startswith("<mlo Server m/1 (v1) + canary m@staging (v1) 50% at ")


def test_a_removed_alias_keeps_the_last_version_serving(scales, client_for):
    with mlo.serve("m@staging", poll=0.05) as srv:
        c = client_for(srv)
        mlo.delete_alias("m", "staging")
        time.sleep(0.3)
        status, _, doc = ask(c, 2.0)
        assert status == 200 and doc["predictions"] == [4.0]
        health = c.get("/health")[2]
        assert health["status"] == "ok" and "alias removed" in health["warning"]
