"""What serving costs, per monitoring window: the server samples its CPU, memory, queue and throughput beside
the prediction log; reports and alert rules read them."""

from __future__ import annotations

import json
import threading
import time

import mlo
from mlo.monitor import resources
from mlo.serve import server as server_module


def records(X, n):
    return json.loads(json.dumps(X.head(n).to_dict(orient="records"), default=lambda v: v.item()))


def test_a_loaded_server_leaves_its_resource_figures_in_the_monitoring_windows(
    churn, client_for, monkeypatch
):
    monkeypatch.setattr(server_module, "RESOURCE_INTERVAL", 0.05)
    X = churn["X"]
    srv = mlo.serve("churn@production")
    errors = []

    def load(k: int) -> None:
        c = client_for(srv)
        for i in range(40):
            status = c.post("/predict", {"records": records(X.iloc[i % 50 :], 5)})[0]
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.2)
    srv.stop()
    assert not errors
    samples = resources.read(churn["ws"].home, "churn")
    assert len(samples) >= 2 and samples["requests"].sum() == 160 and samples["rows"].sum() == 800
    assert (samples["rss_mb"] > 10).all() and (samples["queue_depth"] >= 0).all()

    report = mlo.monitor.report("churn", window="1h", save=False)
    w = report.windows.iloc[-1]
    assert w["n"] == 800 and w["rows_per_s"] > 0 and w["requests_per_s"] > 0
    assert w["rss_mb"] > 10 and w["cpu_percent"] >= 0 and w["queue_depth"] >= 0


def test_rules_read_the_figures_and_a_cut_line_is_skipped(churn, client_for, monkeypatch):
    from mlo.monitor.rules import firing, load_rules

    monkeypatch.setattr(server_module, "RESOURCE_INTERVAL", 0.05)
    with mlo.serve("churn@production") as srv:
        c = client_for(srv)
        for _ in range(5):
            assert c.post("/predict", {"records": records(churn["X"], 2)})[0] == 200
    (path,) = (churn["ws"].home / "monitor" / "churn").glob("res-*.jsonl")
    with open(path, "a") as fh:
        fh.write('{"ts": 17')  # a server killed mid-line
    report = mlo.monitor.report("churn", window="1h", save=False)
    rules = load_rules({"monitor": {"rules": [{"name": "memory", "when": "rss_mb > 1"}]}})
    evidence = firing(rules[0], report.windows.to_dict("records"))
    assert evidence and evidence[0]["rss_mb"] > 1


def test_without_a_log_nothing_is_sampled(churn, client_for):
    with mlo.serve("churn@production", log=False) as srv:
        assert srv._sampler is None
        assert client_for(srv).post("/predict", {"records": records(churn["X"], 1)})[0] == 200
    assert not list((churn["ws"].home / "monitor").glob("*/res-*.jsonl"))
