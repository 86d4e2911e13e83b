"""The serving core, free of any web framework: deployments that follow their alias, canary routing, reading
and checking inputs, predicting, and logging every prediction. :mod:`.app` puts HTTP in front of it.

A :class:`Slot` serves one reference (``churn@production``). When the reference is an alias (or ``@latest``),
a watcher thread reads the alias every ``poll`` seconds (one indexed SQL read); when it moved, the new version
is loaded and tried on its stored input example in that thread, then swapped in by replacing one attribute. A
request reads that attribute once, so requests in flight finish on the version they started with, and none
waits for or fails because of a swap. A version that fails to load (or to predict its example) is not swapped
in; the old one keeps serving and the load is retried after ``RETRY_SECONDS``.

A request's input is checked (:mod:`.inputs`) before the model runs; input the client got wrong is refused
(400/413/422) and is neither logged nor counted as the model's error, so no client can make a version look
broken or roll a canary back. Labels are taken only for ids this server issued, once each (:mod:`.labels`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import workspace
from ..errors import InvalidInput, MloError, StoreError
from ..monitor.log import PredictionLogger, arrow_type, now_us, resolve_model, write_labels
from .following import AliasFollower
from .inputs import RequestError, as_list, check_values, model_input, one_line, parse_body
from .labels import IdSigner, LabelLedger, check_labels, family, load_key
from .routing import ROUTES, CanarySpec, Router

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..monitor.log import LogStream
    from ..registry.handle import LoadedModel
    from ..registry.versions import ModelVersion
    from ..workspace import Workspace

log = logging.getLogger("mlo.serve")

RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Deployment:
    """One loaded version serving one route; immutable, replaced as a whole when the alias moves."""

    route: str
    version: ModelVersion
    model: LoadedModel
    fn: Callable[[Any], Any]
    kind: str  # the signature's type: frame, array or any
    names: tuple[str, ...] | None  # the input columns, when the signature names them
    types: dict = field(default_factory=dict)  # logged feature -> Arrow type
    stream: LogStream | None = None
    loaded_at: float = 0.0
    dense: np.dtype | None = None  # every input column of this one numeric dtype: inputs become one 2-D block
    features: Any = None  # mlo.features.serving.FeatureFill: the signature names feature views

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def number(self) -> int:
        return self.version.version

    @property
    def ref(self) -> str:
        return self.version.ref


class Slot:
    """A reference being served on one route (``stable`` or ``canary``), following its alias."""

    def __init__(self, ws: Workspace, route: str, ref: Any, logger: PredictionLogger | None):
        self.ws = ws
        self.route = route
        self.logger = logger
        mv, self.selector = resolve_model(ref)
        self.name = mv.name
        self.current = self._deploy(mv, strict=False)
        self.swaps: list[dict[str, Any]] = []
        self.alias_missing = False
        self._failed: dict[int, float] = {}

    @property
    def follows(self) -> bool:
        return self.selector is not None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.selector}" if self.selector else self.current.ref

    def _deploy(self, mv: ModelVersion, *, strict: bool = True) -> Deployment:
        """Load ``mv`` and call it once on its stored input example (which also warms it up). With ``strict``
        (a version about to replace one that serves), a failure on the example raises, so it is not swapped
        in."""
        model = mv.load()
        raw = model.raw
        fn = getattr(raw, "predict", None)
        if not callable(fn):
            if not callable(raw):
                raise MloError(f"model {mv.ref} ({type(raw).__name__}) has no predict() and is not callable")
            fn = raw
        sig = model.signature
        kind = sig.type if sig is not None else "any"
        names: tuple[str, ...] | None = None
        types: dict = {}
        if sig is not None and kind == "frame":
            names = tuple(sig.names)
            types = {c.name: arrow_type(c.dtype, c.kind) for c in sig.columns}
        elif sig is not None and kind == "array" and sig.shape and len(sig.shape) == 2 and sig.shape[1] > 0:
            names = tuple(str(i) for i in range(sig.shape[1]))
            kind_name = None
            if sig.dtype:
                from ..registry.signature import kind_of_name

                kind_name = kind_of_name(sig.dtype)
            types = {n: arrow_type(sig.dtype, kind_name) for n in names}
        example = mv.input_example
        if example is not None:
            try:
                fn(model.conform(example))
            except Exception as exc:
                if strict:
                    raise
                log.warning(
                    "%s fails on its own input example (%s); serving it anyway", mv.ref, one_line(exc)
                )
        features = None
        if sig is not None and sig.features:
            from ..features.serving import FeatureFill

            features = FeatureFill(self.ws, list(sig.features))
        stream = None
        if self.logger is not None and names is not None:
            # with feature views, the log also keeps what the features were made from (the skew check reads it)
            logged_types = {**(features.log_types() if features is not None else {}), **types}
            stream = self.logger.stream(mv.name, mv.version, self.selector, self.route, logged_types)
        dense = None
        if sig is not None and kind == "frame" and sig.columns:
            dtypes = {c.dtype for c in sig.columns}
            kinds = {c.kind for c in sig.columns}
            if len(dtypes) == 1 and kinds <= {"float", "integer"} and len(kinds) == 1:
                try:
                    dense = np.dtype(dtypes.pop())
                except TypeError:
                    dense = None
        return Deployment(self.route, mv, model, fn, kind, names, types, stream, time.time(), dense, features)

    def target(self) -> int | None:
        """The version the reference names now (None: the alias was removed)."""
        if self.selector == "latest":
            return self.ws.models.latest_version(self.name).version
        return self.ws.models.alias_version(self.name, self.selector)

    def refresh(self) -> bool:
        """Load and swap in the version the alias points at now, if it moved; True when it swapped."""
        if not self.follows:
            return False
        target = self.target()
        current = self.current
        if target is None:
            if not self.alias_missing:
                log.warning(
                    "%s: alias %r was removed; still serving %s", self.route, self.selector, current.ref
                )
            self.alias_missing = True
            return False
        self.alias_missing = False
        if target == current.number:
            return False
        failed_at = self._failed.get(target)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_SECONDS:
            return False
        try:
            from ..registry.versions import ModelVersion

            new = self._deploy(ModelVersion(self.ws, self.ws.models.get_version(self.name, target)))
        except Exception as exc:
            self._failed[target] = time.monotonic()
            log.error(
                "%s: %s@%s moved to v%s, which failed to load (%s); still serving %s",
                self.route,
                self.name,
                self.selector,
                target,
                one_line(exc),
                current.ref,
            )
            return False
        self.current = new  # the swap: one attribute, read once per request
        self._failed.pop(target, None)
        self.swaps.append({"at": new.loaded_at, "from": current.number, "to": target, "route": self.route})
        log.info("%s: %s@%s v%s -> v%s", self.route, self.name, self.selector, current.number, target)
        return True

    def describe(self) -> dict[str, Any]:
        dep = self.current
        sig = dep.model.signature
        return {
            "route": self.route,
            "name": self.name,
            "ref": self.ref,
            "alias": self.selector,
            "version": dep.number,
            "model_class": dep.version.model_class,
            "signature": sig.to_dict() if sig is not None else None,
            "signature_text": sig.describe() if sig is not None else None,
            "features": dep.features.describe() if dep.features is not None else None,
            "loaded_at": dep.loaded_at,
            "alias_missing": self.alias_missing,
            "swaps": list(self.swaps),
        }


# -- the service ---------------------------------------------------------------------------------------------
class Service:
    """Everything a server does except HTTP.

    Parameters
    ----------
    ref : str or ModelVersion
        What to serve: ``"churn@production"`` follows the alias; ``"churn@v3"``/``"churn/3"`` pins a version.
    canary : str, optional
        ``"NAME@ALIAS:PCT"``: that share of requests (in percent) goes to this reference.
    log : bool
        Log every prediction (see :func:`mlo.monitor.read_log`).
    poll : float
        Seconds between reads of the aliases; 0 stops following them.
    seed : int, optional
        Seed of the canary's random draws (for reproducible tests).
    """

    def __init__(
        self,
        ref: Any,
        *,
        canary: Any = None,
        log: bool = True,
        poll: float = 1.0,
        seed: int | None = None,
    ):
        ws = workspace.current(create=False)
        self.ws = ws
        self.spec = CanarySpec.parse(canary) if canary is not None else None
        self.logger = PredictionLogger(ws.home) if log else None
        try:
            self.stable = Slot(ws, "stable", ref, self.logger)
            self.canary = Slot(ws, "canary", self.spec.ref, self.logger) if self.spec else None
        except BaseException:
            if self.logger is not None:
                self.logger.close()
            raise
        self.router = Router(self.spec.percent if self.spec else 0.0, seed)
        self.poll = float(poll or 0)
        self.started = time.time()
        self.stats = {"requests": 0, "errors": 0, "rejected": 0, "rows": 0}
        self._stats_lock = threading.Lock()
        self._predicted: str | None = None  # the kind of value predictions are: labels must be the same
        self.signer = IdSigner(load_key(ws.home))
        self.ledger = LabelLedger(ws.home, [s.name for s in self.slots])
        self._follower = AliasFollower(lambda: self.slots, self.poll, "mlo-serve-alias-watch")
        self._follower.start(any(s.follows for s in self.slots))

    @property
    def slots(self) -> list[Slot]:
        return [self.stable] + ([self.canary] if self.canary is not None else [])

    # -- requests --------------------------------------------------------------------------------------------
    def choose(self, route: str | None = None, key: str | None = None) -> Slot:
        """The slot a request goes to: ``route`` forces a side (the operator's, from Python; never a client's),
        else the router decides, by the hash of ``key`` when one is given."""
        if route:
            if route not in ROUTES:
                raise InvalidInput(f"route must be stable or canary, got {route!r}")
            if route == "canary" and self.canary is None:
                raise InvalidInput("route='canary', but this server has no canary")
            return self.canary if route == "canary" else self.stable  # type: ignore[return-value]
        if self.canary is None:
            return self.stable
        return self.canary if self.router.choose(key) == "canary" else self.stable

    def _count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    def refused(self) -> None:
        """Count a request refused before it reached :meth:`predict` (a body that is not JSON)."""
        with self._stats_lock:
            self.stats["requests"] += 1
            self.stats["rejected"] += 1

    def predict(
        self, body: Any, *, route: str | None = None, key: str | None = None, max_rows: int | None = None
    ) -> dict[str, Any]:
        """Predict for a decoded JSON body; returns the response document or raises :class:`RequestError`.

        Input the client got wrong (400, 413, 422) is refused before the model runs and is neither logged
        nor counted as an error of the model: a client cannot make a version look broken."""
        self._count("requests")
        try:
            return self._predict(body, route, key, max_rows)
        except RequestError as exc:
            self._count("errors" if exc.status >= 500 else "rejected")
            raise

    def _predict(self, body: Any, route: str | None, key: str | None, max_rows: int | None) -> dict[str, Any]:
        dep = self.choose(route, key).current
        ts = now_us()
        kind, data, n = parse_body(body)
        if max_rows is not None and n > max_rows:
            raise RequestError(
                413, f"{n:,} rows in one request; the server takes at most {max_rows:,} (max_rows)"
            )
        if dep.features is not None:
            data = self._features(dep, kind, data, n)
        check_values(dep, kind, data)
        X, logged = model_input(dep, kind, data)
        if dep.features is not None and logged is not None:
            logged = {**dep.features.logged(data, n), **logged}
        t0 = time.perf_counter()
        try:
            X = dep.model.conform(X)
        except MloError as exc:
            raise RequestError(422, one_line(exc), dep) from None
        try:
            out = dep.fn(X)
            preds = as_list(out)
        except Exception as exc:
            latency = (time.perf_counter() - t0) * 1e3
            msg = f"model {dep.ref} failed: {type(exc).__name__}: {one_line(exc)}"
            self._log(dep, logged, None, n, latency, msg, ts)
            raise RequestError(500, msg, dep) from None
        latency = (time.perf_counter() - t0) * 1e3
        if len(preds) != n:
            msg = f"model {dep.ref} returned {len(preds)} predictions for {n} rows"
            self._log(dep, logged, None, n, latency, msg, ts)
            raise RequestError(500, msg, dep)
        ids = self._log(dep, logged, preds, n, latency, None, ts)
        with self._stats_lock:
            self.stats["rows"] += n
        if self._predicted is None and preds:
            self._predicted = family(preds[0])
        return {
            "predictions": preds,
            "ids": ids,
            "model": dep.name,
            "version": dep.number,
            "route": dep.route,
        }

    def _features(self, dep: Deployment, kind: str, data: Any, n: int) -> dict[str, list]:
        """The request's columns with the feature views' columns filled (by entity id, or computed from the
        request's own inputs by the registered transform)."""
        from ..features.serving import FeatureRequestError

        if kind != "columns":
            raise RequestError(400, "this model reads feature views: send records or columns by name", dep)
        try:
            return dep.features.fill(data, n)
        except FeatureRequestError as exc:
            raise RequestError(exc.status, one_line(exc), dep) from None
        except StoreError as exc:
            # the online table cannot be read now: not the model's fault, nor the client's
            raise RequestError(503, f"cannot read the online features: {one_line(exc)}", dep) from None

    def _log(
        self,
        dep: Deployment,
        features: dict | None,
        preds: list | None,
        n: int,
        latency: float | None,
        error: str | None,
        ts: int,
    ) -> list[str]:
        ids = self.signer.new(n, ts)
        if self.logger is None:
            return ids
        stream = dep.stream
        if stream is None:  # no named inputs in the signature: one stream per set of columns seen
            names = dict.fromkeys(features) if features else {}
            stream = self.logger.stream(dep.name, dep.number, self.slot_selector(dep), dep.route, names)
        return stream.append(features, preds, n=n, latency_ms=latency, error=error, ts_us=ts, ids=ids)

    def served(self) -> tuple[int, int]:
        """Requests answered (or refused) and rows predicted so far."""
        with self._stats_lock:
            return self.stats["requests"], self.stats["rows"]

    def slot_selector(self, dep: Deployment) -> str | None:
        slot = self.canary if dep.route == "canary" and self.canary is not None else self.stable
        return slot.selector

    def labels(self, body: Any, *, max_rows: int | None = None) -> dict[str, Any]:
        """Record labels for served predictions: ``{"ids": [...], "labels": [...]}``. Only ids this server
        issued (422 otherwise), each once (409 for an id labeled before), with plain values of the model's
        output type (422); all of a request's labels are written, or none."""
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("ids"), list)
            or not isinstance(body.get("labels"), list)
        ):
            raise RequestError(
                400, 'send {"ids": [...], "labels": [...]}, one label per id returned by /predict'
            )
        ids, y = body["ids"], body["labels"]
        if len(ids) != len(y):
            raise RequestError(400, f"{len(ids)} ids but {len(y)} labels; send one label per id")
        if not ids:
            raise RequestError(400, "no ids: send one label per id returned by /predict")
        if max_rows is not None and len(ids) > max_rows:
            raise RequestError(
                413, f"{len(ids):,} labels in one request; the server takes at most {max_rows:,}"
            )
        if not all(isinstance(i, str) for i in ids):
            raise RequestError(400, "ids must be strings, as returned by /predict")
        foreign = [i for i in ids if not self.signer.issued(i)]
        if foreign:
            shown = foreign[0] if len(foreign[0]) <= 40 else foreign[0][:40] + "…"
            raise RequestError(
                422,
                f"{len(foreign)} of {len(ids)} ids were not issued by this server (e.g. {shown!r}); "
                "label the ids /predict returned",
            )
        if len(set(ids)) != len(ids):
            raise RequestError(422, "an id appears twice: send one label per prediction")
        sig = self.stable.current.model.signature
        check_labels(y, sig.outputs if sig is not None else None, self._predicted)
        taken = self.ledger.claim(ids)
        if taken:
            raise RequestError(
                409,
                f"{len(taken)} of {len(ids)} ids already have a label (e.g. {taken[0]!r}); a prediction is "
                "labeled once (correct a label with mlo.monitor.label in Python)",
            )
        names = {s.name for s in self.slots}
        try:
            if len(names) == 1:
                write_labels(self.ws.home, ids, y, model=names.pop())
            else:
                if self.logger is not None:
                    self.logger.flush()
                write_labels(self.ws.home, ids, y)
        except MloError as exc:
            self.ledger.release(ids)
            raise RequestError(422, one_line(exc)) from None
        except BaseException:
            self.ledger.release(ids)
            raise
        return {"labeled": len(ids)}

    # -- state -----------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "ok",
            "model": self.stable.name,
            "version": self.stable.current.number,
            "uptime_s": round(time.time() - self.started, 3),
            **self.stats,
        }
        if self.canary is not None:
            out["canary"] = {"model": self.canary.name, "version": self.canary.current.number}
        missing = [s.route for s in self.slots if s.alias_missing]
        if missing:
            out["warning"] = f"alias removed for {', '.join(missing)}; serving the last version"
        return out

    def metadata(self) -> dict[str, Any]:
        stable = self.stable.describe()
        return {
            **{k: stable[k] for k in ("name", "ref", "alias", "version", "signature", "signature_text")},
            "stable": stable,
            "canary": None
            if self.canary is None
            else {**self.canary.describe(), "percent": self.spec.percent if self.spec else 0.0},
            "canary_percent": self.spec.percent if self.spec else 0.0,
            "poll_s": self.poll,
            "log": self.logger is not None,
            "log_folder": str(self.ws.home / "monitor") if self.logger is not None else None,
        }

    # -- alias following -------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Check every followed alias now; True when a version was swapped."""
        return self._follower.refresh()

    def close(self) -> None:
        """Stop following aliases and write the rest of the prediction log."""
        self._follower.stop()
        if self.logger is not None:
            self.logger.close()

    def describe(self) -> str:
        """``churn@production (v3) + canary churn@staging (v4) 10%``."""
        text = f"{self.stable.ref} (v{self.stable.current.number})"
        if self.canary is not None and self.spec is not None:
            text += f" + canary {self.canary.ref} (v{self.canary.current.number}) {self.spec.percent:g}%"
        return text
