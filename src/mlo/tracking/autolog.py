"""``mlo.autolog()``: record what training calls of the installed frameworks do, and the hook API that adds a
framework.

Each framework is an :class:`Integration`: a name (what ``disable=`` says), the module whose import brings it
in, and a ``patch`` method that wraps the framework's training entry points. ``mlo.autolog()`` patches the
frameworks already imported and arms an import hook for the others, so it costs nothing for a framework that is
never imported. Built in: scikit-learn, XGBoost and LightGBM (:mod:`mlo.tracking.integrations`).

Adding a framework (see docs/autolog.md for a whole one)::

    from mlo.tracking.autolog import FitRun, Integration, register

    class MyFramework(Integration):
        name = "myfw"
        module = "myfw"

        def patch(self, patcher, myfw):
            patcher.method(myfw.Trainer, "train", self.train)

        def train(self, train, trainer, *args, **kwargs):
            with FitRun(self.name, type(trainer).__name__) as rec:
                if rec is None:                      # an internal call of another autologged call
                    return train(*args, **kwargs)
                rec.log_params(trainer.config)
                model = train(*args, **kwargs)
                rec.log_model(model)
                return model

    register(MyFramework())
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InvalidInput
from . import patching
from .fit_run import FitRun, param_value

log = logging.getLogger("mlo")

__all__ = ["FitRun", "Integration", "Patcher", "autolog", "integration", "param_value", "register"]

BUILTIN = {
    "sklearn": "mlo.tracking.integrations.sklearn",
    "xgboost": "mlo.tracking.integrations.xgboost",
    "lightgbm": "mlo.tracking.integrations.lightgbm",
}
DEFAULT_MAX_TUNING_RUNS = 100


@dataclass(frozen=True)
class Options:
    """What autologged calls record (set by :func:`autolog`)."""

    log_models: bool = True
    metrics: bool = True
    max_tuning_runs: int | None = DEFAULT_MAX_TUNING_RUNS
    silent: bool = False


_options = Options()


def current_options() -> Options:
    return _options


class Patcher:
    """What an integration's ``patch`` uses to replace methods and functions; remembers how to undo them."""

    def __init__(self) -> None:
        self.patches: list[patching.Patch] = []

    def method(self, cls: type, name: str, wrapper: Callable[..., Any]) -> None:
        """``cls().name(*a, **k)`` becomes ``wrapper(bound_original, instance, *a, **k)``."""
        self.patches.append(patching.patch_method(cls, name, wrapper))

    def function(self, module: Any, name: str, wrapper: Callable[..., Any], original: Any = None) -> None:
        """``module.name(*a, **k)`` becomes ``wrapper(original, *a, **k)``."""
        self.patches.append(patching.patch_function(module, name, wrapper, original))

    def undo(self) -> None:
        for patch in reversed(self.patches):
            patch.undo()
        self.patches.clear()


class Integration:
    """A framework that autolog records. Subclass it, set :attr:`name` and :attr:`module`, implement
    :meth:`patch`, and :func:`register` an instance.

    Optionally, :meth:`save_model` and :meth:`load_model` store models in the framework's own format:
    ``rec.log_model(model, flavor=self.name)`` then uses them, and ``run.load_model()`` reads them back.
    """

    name: str = ""
    module: str = ""

    def patch(self, patcher: Patcher, module: Any) -> None:
        """Wrap the framework's training entry points with ``patcher``; ``module`` is the imported module."""
        raise NotImplementedError

    def save_model(self, model: Any) -> tuple[bytes, str, dict]:
        """``(bytes, file name, details)`` of ``model`` in the framework's format."""
        raise NotImplementedError(f"{self.name} stores no models of its own format")

    def load_model(self, data: bytes, info: dict) -> Any:
        """The model from what :meth:`save_model` gave (``info`` is the logged ``model.json``)."""
        raise NotImplementedError(f"{self.name} loads no models of its own format")


_registry: dict[str, Integration] = {}
_patched: dict[str, Patcher] = {}
_waiting: set[str] = set()


def register(integration_: Integration) -> Integration:
    """Make ``integration_`` known to :func:`autolog` (a later one of the same name replaces it)."""
    if not isinstance(integration_, Integration):
        raise InvalidInput(f"register takes an Integration instance, got {type(integration_).__name__}")
    if not integration_.name or not integration_.module:
        raise InvalidInput("an Integration needs a name and the module it patches (class attributes)")
    _registry[integration_.name] = integration_
    return integration_


def _load_builtins() -> None:
    for name, module in BUILTIN.items():
        if name not in _registry:
            register(importlib.import_module(module).INTEGRATION)


def integration(name: str) -> Integration:
    """The integration called ``name``."""
    _load_builtins()
    if name not in _registry:
        from ..config import did_you_mean

        raise InvalidInput(
            f"no autolog integration {name!r}{did_you_mean(name, _registry)} (known: {', '.join(sorted(_registry))})"
        )
    return _registry[name]


def autolog(
    disable: bool | str | Sequence[str] | None = None,
    *,
    log_models: bool | None = None,
    metrics: bool | None = None,
    max_tuning_runs: int | None = -1,
    silent: bool | None = None,
) -> dict[str, str]:
    """Record training calls of every installed framework mlo knows: scikit-learn, XGBoost, LightGBM.

    Each top-level ``fit`` (``fit_transform``, ``fit_predict``, ``partial_fit``; XGBoost's and LightGBM's
    ``train``) logs into the active run, or into a run of its own named after the estimator: its params
    (``get_params(deep=True)``), training metrics, per-iteration evaluation metrics as step histories, and the
    fitted model with its signature. Fits made inside another (a pipeline's steps, an ensemble's trees, a
    search's candidates) record nothing of their own. A hyperparameter search (``GridSearchCV``,
    ``RandomizedSearchCV``, ``HalvingGridSearchCV``, …) is a parent run with the best params and score and the
    ``cv_results.csv`` artifact, and one child run per candidate. Frameworks not imported yet are patched when
    they are.

    Parameters
    ----------
    disable : bool, str or list of str, optional
        ``True`` undoes all patching; a framework name (``"xgboost"``) or a list of them turns those off and the
        others on. Default: as ``mlo.toml`` ``[autolog] disable`` says, else nothing off.
    log_models : bool, optional
        Store each fitted model with its run (``model/``, loaded back with ``run.load_model()``). Default True.
    metrics : bool, optional
        Score estimators on their training data (``training_accuracy``, ``training_r2``, …). Default True.
    max_tuning_runs : int or None, optional
        At most this many child runs per search, the best-ranked first; None for all. Default 100.
    silent : bool, optional
        No warnings when something cannot be recorded (training itself is never affected).

    Returns
    -------
    dict
        Each framework's state: ``"on"`` (patched), ``"on import"`` (patched when imported), ``"off"`` or
        ``"not installed"``.
    """
    global _options
    config = _config()
    for label, value in (("log_models", log_models), ("metrics", metrics), ("silent", silent)):
        if value is not None and not isinstance(value, bool):
            raise InvalidInput(f"{label} must be True or False, got {value!r}")
    if max_tuning_runs == -1:
        max_tuning_runs = config.get("max_tuning_runs", DEFAULT_MAX_TUNING_RUNS)
    if max_tuning_runs is not None and (
        isinstance(max_tuning_runs, bool) or not isinstance(max_tuning_runs, int) or max_tuning_runs < 0
    ):
        raise InvalidInput(f"max_tuning_runs must be a non-negative integer or None, got {max_tuning_runs!r}")
    _load_builtins()
    off = _disabled(config.get("disable", []) if disable is None else disable)
    _options = replace(
        _options,
        log_models=config.get("log_models", True) if log_models is None else log_models,
        metrics=config.get("metrics", True) if metrics is None else metrics,
        max_tuning_runs=max_tuning_runs,
        silent=config.get("silent", False) if silent is None else silent,
    )
    states = {}
    for name, integ in sorted(_registry.items()):
        if name in off:
            _turn_off(name)
            states[name] = "off"
        else:
            states[name] = _turn_on(integ)
    return states


def _disabled(disable: Any) -> set[str]:
    if disable is True:
        return set(_registry)
    if disable is False:
        return set()
    names = [disable] if isinstance(disable, str) else disable
    if not isinstance(names, (list, tuple, set)) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(
            f"disable must be True/False, a framework name or a list of them, got {type(disable).__name__}"
        )
    for n in names:
        integration(n)  # an unknown name is an error that names the known ones
    return set(names)


def _config() -> dict:
    from .. import workspace
    from ..errors import NotFound

    try:
        ws = workspace.current(create=False)
    except NotFound:
        return {}
    section = ws.config.get("autolog")
    return section if isinstance(section, dict) else {}


def _turn_on(integ: Integration) -> str:
    name = integ.name
    if name in _patched:
        return "on"
    if name in _waiting:
        return "on import"
    try:
        installed = integ.module in sys.modules or importlib.util.find_spec(integ.module) is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        return "not installed"
    _waiting.add(name)
    if patching.when_imported(integ.module, lambda module, integ=integ: _apply(integ, module)):
        return "on" if name in _patched else "off"
    return "on import"


def _apply(integ: Integration, module: Any) -> None:
    _waiting.discard(integ.name)
    patcher = Patcher()
    try:
        integ.patch(patcher, module)
    except (
        Exception
    ) as exc:  # a framework version whose entry points moved: record nothing rather than break it
        patcher.undo()
        log.warning("mlo.autolog cannot record %s: %s", integ.name, exc)
        return
    _patched[integ.name] = patcher


def _turn_off(name: str) -> None:
    if name in _waiting:
        patching.forget(_registry[name].module)
        _waiting.discard(name)
    patcher = _patched.pop(name, None)
    if patcher is not None:
        patcher.undo()
