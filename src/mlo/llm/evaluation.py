"""``mlo.llm.evaluate``: run an LLM app over a dataset, score every output, and keep the report as evidence.

The app is a function, a prompt version (``"support@production"``, a :class:`~mlo.llm.prompts.Prompt`) or a served
endpoint (``"http://…/v1"``). Each (row, repeat) runs in its own trace, is scored, and is appended to a checkpoint
file (``.mlo/evals/<key>.jsonl``, flushed to disk per row) before the next one starts: an evaluation killed half way
and started again with the same arguments picks up at the first row not done. Calls that fail become rows with
their error, never a crash of the whole evaluation; ``requests_per_minute`` paces calls with the client's limiter.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from .. import workspace
from ..errors import InvalidInput
from ..tracking import session
from . import limits, tracing
from .eval_report import KIND, EvalReport
from .scorers import Scorer, resolve

EXPECTED = "expected"


# -- the app ------------------------------------------------------------------------------------------------------
class _App:
    """What is evaluated: ``call(inputs)`` → (output text, usage dict or None, cost or None, error or None)."""

    def __init__(self, app: Any, params: dict[str, Any]):
        from .prompts import Prompt, load_prompt

        self.params = params
        self.prompt = None
        self.url = None
        self.fn = None
        if isinstance(app, str) and app.startswith(("http://", "https://")):
            self.url = app
            self.name = app
        elif isinstance(app, (str, Prompt)):
            ref = app.removeprefix("prompt:") if isinstance(app, str) else app
            self.prompt = ref if isinstance(ref, Prompt) else load_prompt(ref)
            self.name = self.prompt.ref
        elif callable(app):
            self.fn = app
            self.name = getattr(app, "__qualname__", None) or type(app).__name__
        else:
            raise InvalidInput(
                "app must be a function, a prompt ('support@production', a Prompt) or an endpoint URL, "
                f"got {type(app).__name__}"
            )

    @property
    def subject(self) -> str | None:
        return f"model:{self.prompt.ref}" if self.prompt is not None else None

    def identity(self) -> dict[str, Any]:
        if self.prompt is not None:
            return {
                "kind": "prompt",
                "name": self.name,
                "prompt": self.prompt.ref,
                "digest": self.prompt.digest,
            }
        if self.url is not None:
            return {"kind": "endpoint", "name": self.name, "url": self.url}
        try:
            src = inspect.getsource(self.fn)
        except (OSError, TypeError):
            src = self.name
        digest = hashlib.blake2b(src.encode(), digest_size=8).hexdigest()
        return {"kind": "function", "name": self.name, "digest": digest}

    def model_and_max_tokens(self) -> tuple[str | None, int | None]:
        """The model and max_tokens a prompt or endpoint app sends (what a cost bound prices); none for a function."""
        if self.fn is not None:
            return None, None
        base = self.prompt.params if self.prompt is not None else {}
        model = self.params.get("model") or (self.prompt.model if self.prompt is not None else None)
        return model, self.params.get("max_tokens", base.get("max_tokens"))

    def cap_tokens(self, guard) -> None:
        """Send at most the guardrail policy's max_tokens, as serving does."""
        if guard is None or guard.max_tokens is None or self.fn is not None:
            return
        self.params["max_tokens"] = guard.cap_tokens(self.model_and_max_tokens()[1])

    def call(self, inputs: dict[str, Any]) -> Any:
        from .client import chat

        if self.prompt is not None:
            return chat(prompt=self.prompt, variables=inputs, errors="return", **self.params)
        if self.url is not None:
            if len(inputs) != 1:
                raise InvalidInput(
                    f"an endpoint app sends one input column as the user message; the data has {', '.join(inputs)}"
                    " — pass inputs=['question']"
                )
            return chat(next(iter(inputs.values())), base_url=self.url, errors="return", **self.params)
        return _call_function(self.fn, inputs)


def _call_function(fn, inputs: dict[str, Any]) -> Any:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn(**inputs)
    try:
        sig.bind(**inputs)
    except TypeError:
        if len(inputs) == 1:
            return fn(next(iter(inputs.values())))
        return fn(inputs)
    return fn(**inputs)


# -- the data -----------------------------------------------------------------------------------------------------
def _records(data: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows as dicts, and where they came from (a snapshot's ref and digest, or a digest of the rows)."""
    import pandas as pd

    source: dict[str, Any] = {}
    if isinstance(data, str) or type(data).__name__ == "Snapshot":
        from ..data.snapshots import get_snapshot, load_snapshot

        snap = get_snapshot(data.removeprefix("snapshot:") if isinstance(data, str) else data)
        data = load_snapshot(snap)
        source = {"ref": snap.ref, "snapshot_digest": snap.digest}
    if isinstance(data, pd.DataFrame):
        rows = data.to_dict(orient="records")
    elif isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
        rows = [dict(r) for r in data]
    else:
        raise InvalidInput(
            "data must be a DataFrame, a list of dicts or a snapshot ('questions@2'), "
            f"got {type(data).__name__}"
        )
    if not rows:
        raise InvalidInput("data has no rows to evaluate")
    rows = [{str(k): _plain(v) for k, v in r.items()} for r in rows]
    # the rows' own digest, however they came (a frame, a list, a snapshot): the same rows compare and resume alike
    blob = json.dumps(rows, sort_keys=True, default=str).encode()
    source["digest"] = hashlib.blake2b(blob, digest_size=16).hexdigest()
    source["rows"] = len(rows)
    return rows, source


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


# -- checkpoints --------------------------------------------------------------------------------------------------
class Checkpoint:
    """An append-only JSON-lines file of finished (row, repeat) results, synced to disk per line."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[tuple[int, int], dict] = {}

    def load(self) -> dict[tuple[int, int], dict]:
        """Read what a previous attempt finished; a torn last line (killed mid-write) is dropped and the file
        rewritten without it, so appends start on a clean line."""
        if not self.path.exists():
            return {}
        good, torn = [], False
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
                self.done[(rec["index"], rec["repeat"])] = rec
                good.append(line)
            except (ValueError, KeyError, TypeError):
                torn = True
        if torn:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(g + "\n" for g in good), encoding="utf-8")
            os.replace(tmp, self.path)
        return self.done

    def append(self, rec: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(rec, default=str, ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[(rec["index"], rec["repeat"])] = rec

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _key(app: dict, data: dict, scorers: list[Scorer], repeats: int, inputs, expected, params) -> str:
    ident = {
        "app": app,
        "data": data["digest"],
        "scorers": [s.version for s in scorers],
        "names": [s.name for s in scorers],
        "repeats": repeats,
        "inputs": inputs,
        "expected": expected,
        "params": params,
    }
    return hashlib.blake2b(
        json.dumps(ident, sort_keys=True, default=str).encode(), digest_size=12
    ).hexdigest()


# -- one row ------------------------------------------------------------------------------------------------------
def _usage_of_spans(spans) -> tuple[int | None, int | None, float | None, bool]:
    """Tokens and cost of the LLM calls among ``spans`` (cost None when a model has no price)."""
    from .genai import Usage
    from .pricing import price_table

    table = price_table()
    tin = tout = None
    cost, priced = 0.0, True
    for sp in spans:
        if sp.model is None and sp.input_tokens is None:
            continue
        tin = (tin or 0) + (sp.input_tokens or 0)
        tout = (tout or 0) + (sp.output_tokens or 0)
        c = table.cost(
            sp.model or "",
            Usage(sp.input_tokens, sp.output_tokens, sp.cached_tokens, sp.reasoning_tokens),
            when=sp.start_time / 1e6,
        )
        if c.usd is None:
            priced = False
        else:
            cost += c.usd
    return tin, tout, (cost if priced and tin is not None else None), tin is not None


def _run_row(
    app: _App,
    index: int,
    repeat: int,
    row: dict,
    inputs: list[str],
    expected: str | None,
    scorers,
    limiter,
    guard=None,
) -> dict:
    from .client import Reply

    ins = {k: row.get(k) for k in inputs}
    want = row.get(expected) if expected else None
    rec: dict[str, Any] = {"index": index, "repeat": repeat, "inputs": ins, "expected": want}
    if limiter is not None:
        limiter.acquire()
    output, error, result, blocked = None, None, None, False
    decisions: dict[str, Any] = {}
    started = time.monotonic()
    with tracing.trace(f"eval {app.name}"[:200], kind="chain") as span:
        span.set_attributes({"mlo.eval.row": index, "mlo.eval.repeat": repeat})
        first = len(span._trace.spans)
        sent = ins
        if guard is not None:
            texts = [k for k, v in ins.items() if isinstance(v, str)]
            model, max_tokens = app.model_and_max_tokens()
            d = guard.check_request([ins[k] for k in texts], model=model, max_tokens=max_tokens)
            decisions["input"] = d.to_dict()
            blocked = d.blocked
            sent = {**ins, **dict(zip(texts, d.texts, strict=True))}
        if blocked:
            result = guard.message
        else:
            try:
                result = app.call(sent)
            except InvalidInput:
                raise
            except Exception as exc:  # the app's own failure is this row's result, not the evaluation's end
                error = f"{type(exc).__name__}: {exc}"[:500]
                span.record_error(exc)
        if isinstance(result, Reply):
            if not result.ok:
                error = result.error
            output = result.text
        elif result is not None:
            output = (
                result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)
            )
        if guard is not None and not blocked and error is None:
            d = guard.check(output, "output")
            decisions["output"] = d.to_dict()
            output = d.text
        rec["latency_s"] = round(time.monotonic() - started, 6)
        llm_spans = span._trace.spans[first:]
        rec["trace_id"] = span.trace_id
    tin, tout, cost, called = _usage_of_spans(llm_spans)
    rec.update(output=output, error=error, input_tokens=tin, output_tokens=tout, cost_usd=cost)
    if decisions:
        rec["guardrails"] = decisions
    scores, reasons = {}, {}
    judged: list[Any] = []
    if error is None:
        for s in scorers:
            sc = s.score(output, want, ins, row)
            scores[s.name] = sc.value
            if sc.reason:
                reasons[s.name] = sc.reason
            if sc.usage is not None:
                judged.append(sc)
    rec.update(scores=scores, reasons=reasons)
    if judged:
        # The judges' calls are part of what the row cost: priced, added, and kept apart so both show.
        jcost = None if any(j.cost_usd is None for j in judged) else sum(j.cost_usd for j in judged)
        rec["judge_input_tokens"] = sum(j.usage["input_tokens"] for j in judged)
        rec["judge_output_tokens"] = sum(j.usage["output_tokens"] for j in judged)
        rec["judge_cost_usd"] = jcost
        rec["app_cost_usd"] = cost
        app_cost = cost if called else 0.0  # a plain function made no call: it cost nothing
        rec["cost_usd"] = None if app_cost is None or jcost is None else app_cost + jcost
    return rec


# -- the evaluation -----------------------------------------------------------------------------------------------
def evaluate(
    app: Any,
    data: Any,
    scorers: Any,
    *,
    repeats: int = 1,
    inputs: list[str] | None = None,
    expected: str | None = EXPECTED,
    checks: list | None = None,
    requests_per_minute: float | None = None,
    resume: bool = True,
    store: bool = True,
    guardrails: Any = None,
    **params: Any,
) -> EvalReport:
    """Run ``app`` over every row of ``data`` (``repeats`` times), score each output, and store the report.

    Parameters
    ----------
    app : callable, str or Prompt
        A function called with the row's inputs as keyword arguments (or the one input, or a dict of them) that
        returns text, a dict (scored as JSON) or a :class:`~mlo.llm.Reply`; a prompt version
        (``"support@production"``, ``"support/3"``, a :class:`~mlo.llm.prompts.Prompt`) filled with the inputs
        and sent with :func:`mlo.llm.chat`; or an OpenAI-compatible endpoint URL sent the one input.
    data : DataFrame, list of dict or str
        The rows, or a snapshot (``"questions@2"``) — recorded by its digest either way.
    scorers : list
        :mod:`mlo.llm.scorers` (``scorers.exact()``, …), custom callables, or built-in names.
    repeats : int
        Runs per row; the confidence interval then covers the app's own randomness too.
    inputs : list of str, optional
        The input columns (default: every column but ``expected``; for a prompt, its variables).
    expected : str or None
        The column scorers compare with (default ``"expected"``; missing is fine for scorers that need none).
    checks : list, optional
        Gates from :mod:`mlo.llm.checks` (thresholds, no regression against a prompt at an alias).
    requests_per_minute : float, optional
        Pace the app's calls (also ``[llm] requests_per_minute`` for calls through ``mlo.llm.chat``).
    resume : bool
        Pick up a killed evaluation with the same arguments where it stopped (default True).
    store : bool
        Keep the report in the workspace (default True).
    guardrails : str, dict or Guardrails, optional
        A guardrail policy (``"support"`` names ``[guardrails.support]`` in ``mlo.toml``) applied to each row's
        inputs and output as serving applies it; each row records the decisions, the report the trip rates.
    **params
        For a prompt or endpoint app, passed to :func:`mlo.llm.chat` (``model``, ``base_url``, ``temperature``, …).

    Returns
    -------
    EvalReport
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InvalidInput(f"repeats must be a whole number ≥ 1, got {repeats!r}")
    the_app = _App(app, params)
    score_list = resolve(scorers)
    rows, source = _records(data)
    columns = list(rows[0])
    if inputs is None:
        if the_app.prompt is not None:
            inputs = list(the_app.prompt.variables)
        else:
            label_cols = {getattr(s, "labels", None) for s in score_list}
            inputs = [c for c in columns if c != expected and c not in label_cols]
    missing = sorted({c for c in inputs for r in rows if c not in r})
    if missing:
        raise InvalidInput(
            f"the data has no column {', '.join(map(repr, missing))}; it has {', '.join(columns)}"
        )
    if expected is not None and expected not in columns:
        expected_col = None
    else:
        expected_col = expected
    from .checks import check_list

    gates = check_list(checks)
    limiter = limits.RateLimiter(requests_per_minute) if requests_per_minute is not None else None
    from .guardrails import policy as guardrail_policy

    guard = guardrail_policy(guardrails)
    the_app.cap_tokens(guard)

    ws = workspace.current()
    ident = the_app.identity()
    settings = {**_jsonable(params), **({"guardrails": guard.version} if guard else {})}
    key = _key(ident, source, score_list, repeats, inputs, expected_col, settings)
    ckpt = Checkpoint(ws.home / "evals" / f"{key}.jsonl")
    done = ckpt.load() if resume else {}
    if not resume:
        ckpt.remove()
    resumed = len(done)

    run = session.active_run()
    own_run = None
    if run is None and store:
        own_run = session.start_run(f"eval {the_app.name}"[:200])
        run = own_run
    started = time.monotonic()
    status = "failed"
    try:
        for i, row in enumerate(rows):
            for k in range(repeats):
                if (i, k) in done:
                    continue
                ckpt.append(_run_row(the_app, i, k, row, inputs, expected_col, score_list, limiter, guard))
        report = EvalReport(
            list(ckpt.done.values()),
            scorers=[s.to_dict() for s in score_list],
            n=len(rows),
            repeats=repeats,
            app={
                **ident,
                "params": _jsonable(params),
                "inputs": inputs,
                "expected": expected_col,
                "guardrails": guard.to_dict() if guard else None,
            },
            data=source,
            subject=the_app.subject,
            run_id=run.id if run is not None else None,
            timing={
                "seconds": round(time.monotonic() - started, 3),
                "resumed_rows": resumed,
                "rate_limit_wait_s": round(limiter.waited, 3) if limiter else 0.0,
            },
        )
        _agreement(report, score_list, rows)
        report.checks = [
            r
            for g in gates
            for r in g.evaluate(
                report, the_app, data=rows, scorers=score_list, repeats=repeats, params=params
            )
        ]
        if store:
            _keep(ws, report, run)
        ckpt.remove()
        status = "finished"
        return report
    finally:
        if own_run is not None:
            session.end_run(status, run=own_run)


def _agreement(report: EvalReport, score_list: list[Scorer], rows: list[dict]) -> None:
    """A judge's Cohen's kappa against the human labels in the data, into its aggregates."""
    for s in score_list:
        agreement = getattr(s, "agreement", None)
        if agreement is None:
            continue
        scores: dict[int, list] = {}
        for r in sorted(report.rows, key=lambda r: (r["index"], r["repeat"])):
            scores.setdefault(r["index"], []).append((r.get("scores") or {}).get(s.name))
        found = agreement(rows, scores)
        if found is not None:
            report.aggregates[s.name].update(found)


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def _keep(ws, report: EvalReport, run) -> None:
    report.id = ws.reports.save(
        KIND,
        report.summary(),
        report.to_dict(),
        subject=report.subject,
        run_id=report.run_id,
        passed=report.passed,
    )
    node = f"report:{report.id}"
    edges = []
    if report.subject:
        edges.append((node, report.subject, "evidence"))
    if run is not None:
        edges.append((f"run:{run.id}", node, "report"))
    if report.data.get("ref"):
        edges.append((report.data["ref"], node, "input"))
    ws.lineage.link(edges)
    if run is not None:
        metrics = {f"eval.{s['name']}": report.aggregates[s["name"]]["mean"] for s in report.scorers}
        metrics["eval.failure_rate"] = report.aggregates["failure_rate"]
        if report.checks:
            metrics["eval.passed"] = 1.0 if report.passed else 0.0
        session.log_metrics({k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}, run=run)


def evaluations(prompt: str | None = None, limit: int | None = None):
    """Stored evaluation reports, newest first, as a DataFrame: id, created, subject, data, rows, passed, and a
    column per scorer mean. ``prompt`` (``"support"`` or ``"support/2"``) keeps its versions only."""
    import pandas as pd

    ws = workspace.current(create=False)
    recs = ws.reports.list(kind=KIND, limit=None)
    out = []
    for r in recs:
        subj = r.subject or ""
        if prompt is not None:
            want = f"model:{prompt}"
            if not (subj == want or subj.startswith(want + "/")):
                continue
        s = r.summary
        out.append(
            {
                "id": r.id,
                "created": pd.Timestamp(r.created_at, unit="us", tz="UTC"),
                "prompt": s.get("prompt"),
                "app": s.get("app"),
                "data": s.get("data") or (s.get("data_digest") or "")[:12],
                "rows": s.get("rows"),
                "passed": r.passed,
                **{f"mean.{k}": v for k, v in (s.get("means") or {}).items()},
            }
        )
        if limit is not None and len(out) >= limit:
            break
    return pd.DataFrame(out)
