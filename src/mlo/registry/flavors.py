"""How a model is stored: the serialization formats ("flavors"), the safe-load allowlist, the environment record.

* ``skops`` — scikit-learn estimators and pipelines. A skops file is a zip of arrays and a JSON schema, loaded
  without pickle: only types that skops trusts by default, or that the allowlist names, can be constructed.
* ``cloudpickle`` — any other Python object (a function, a custom model class). Functions and classes defined in a
  notebook are stored by value, so they load in another process; importable ones by reference.
* ``joblib`` — on request (``flavor="joblib"``), for files that other tools read with ``joblib.load``.

Every flavor is written to the content-addressed blob store, and its digest is checked before loading: a pickle
whose bytes changed after registration is refused before a byte of it is unpickled.

Trust. Loading a pickle (cloudpickle, joblib) runs whatever code it holds, so it needs an explicit opt-in:
``trust=True``, or the flavor named in ``mlo.toml`` ``[registry] trusted_flavors``. A skops file constructs only
the types it is allowed to: the safe defaults (:data:`DEFAULT_TRUSTED`: scikit-learn internals that skops refuses
only because a crafted file could hold out-of-range indices, and mlo loads only files whose digest it recorded),
the types ``[registry] trusted_types`` names, and, with ``trust=True``, the types of that one model. A
scikit-learn pipeline with a custom step is stored with skops when its step's type is trusted (``trust=True`` at
registration, or ``trusted_types``); it never falls back to a pickle without being told to.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import io
import pickle
import platform
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ..errors import CorruptBlob, InvalidInput, MissingBlob, MloError, NotFound
from ..store.addresses import BLAKE3, short
from .errors import ModelIntegrityError, UntrustedModel

FLAVORS = ("skops", "cloudpickle", "joblib")
PICKLE_FLAVORS = ("cloudpickle", "joblib")  # loading runs code: needs trust

DEFAULT_TRUSTED = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.*",
    "sklearn.gaussian_process.kernels.*",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.neural_network._stochastic_optimizers.*",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    "sklearn._loss.loss.*",
    "sklearn.feature_selection._univariate_selection.*",
    "sklearn.feature_selection._mutual_info.*",
    "numpy.dtype",
    "numpy.mean",
    "numpy.median",
    "numpy.max",
    "numpy.min",
    "numpy.sum",
    "scipy.interpolate._bsplines.BSpline",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
)


class ModelEnvironmentWarning(UserWarning):
    """A model loaded with package versions other than those it was registered with."""


@dataclass
class Stored:
    """What :func:`store` wrote: the flavor, the blob and what to remember about it."""

    flavor: str
    digest: str
    size: int
    details: dict[str, Any] = field(default_factory=dict)


def trusted_patterns(config: dict | None) -> tuple[str, ...]:
    """The allowlist in force: :data:`DEFAULT_TRUSTED` plus ``[registry] trusted_types`` of ``mlo.toml``."""
    extra = ((config or {}).get("registry") or {}).get("trusted_types") or []
    if isinstance(extra, str) or not all(isinstance(t, str) for t in extra):
        raise InvalidInput("[registry] trusted_types in mlo.toml must be a list of type names (strings)")
    return DEFAULT_TRUSTED + tuple(extra)


def _allowed(type_name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(type_name, p) for p in patterns)


def is_sklearn(model: Any) -> bool:
    if "sklearn" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def class_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def trusted_flavors(config: dict | None) -> tuple[str, ...]:
    """The pickle flavors that ``mlo.toml`` ``[registry] trusted_flavors`` lets load without ``trust=True``."""
    return tuple((((config or {}).get("registry") or {}).get("trusted_flavors")) or ())


# -- writing ----------------------------------------------------------------------------------------------------
def _skops_dump(model: Any) -> tuple[bytes | None, list[str], str | None]:
    """``(bytes, types skops does not trust by default, None)``, or ``(None, [], why skops cannot hold it)``."""
    try:
        import skops.io as sio
    except ImportError:
        return None, [], "skops is not installed (pip install skops)"
    try:
        data = sio.dumps(model)
    except Exception as exc:  # skops does not support every object (e.g. Birch, lambdas in params)
        return None, [], f"skops cannot serialize it ({type(exc).__name__}: {exc})"
    return data, sio.get_untrusted_types(data=data), None


def store(ws, model: Any, flavor: str | None = None, *, trust: bool = False) -> Stored:
    """Serialize ``model`` into the blob store in the requested flavor, or the best one for it.

    A scikit-learn estimator goes to skops. If it holds types beyond the allowlist (a custom step), they are
    trusted for this model with ``trust=True``; without it, the registration is refused with what to do, rather
    than falling back to a pickle that would run code when loaded. With ``trust=True``, an estimator that skops
    cannot hold at all (or whose custom type lives in ``__main__``, which another process cannot import) is
    stored with cloudpickle, and the reason is recorded."""
    if flavor is not None and flavor not in FLAVORS:
        raise InvalidInput(f"flavor must be one of {', '.join(FLAVORS)} (or None to choose), got {flavor!r}")
    cls = class_name(model)
    details: dict[str, Any] = {}
    if flavor == "skops" or (flavor is None and is_sklearn(model)):
        data, untrusted, problem = _skops_dump(model)
        hint = ""
        if data is not None:
            unknown = [t for t in untrusted if not _allowed(t, trusted_patterns(ws.config))]
            local = [t for t in unknown if t.split(".", 1)[0] == "__main__"]
            if not unknown or (trust and not local):
                digest = ws.blobs.put_bytes(data)
                details = {"trusted_types": untrusted, "blake3": _blake3(data).hexdigest()}
                if unknown:
                    details["trusted_at_registration"] = unknown
                return Stored("skops", digest, len(data), details)
            if local:
                problem = (
                    f"{', '.join(local)} is defined in the notebook or script itself (__main__), which skops "
                    "stores by name and another process cannot import"
                )
                hint = "move the class into a module to keep skops, or "
            else:
                problem = f"it holds types that skops does not trust: {', '.join(unknown)}"
                hint = (
                    "pass trust=True to store it with skops trusting them (or name them in mlo.toml [registry] "
                    "trusted_types), or "
                )
        if flavor == "skops":
            raise InvalidInput(
                f"cannot store {cls} with skops: {problem}; {hint}or register it with flavor='cloudpickle'"
            )
        if not trust:
            raise UntrustedModel(
                f"{cls} cannot be stored safely with skops: {problem}. To register it, {hint}pass "
                "flavor='cloudpickle' (or trust=True) to store it as a pickle, which loads only with trust"
            )
        details["skops_fallback"] = problem
        flavor = "cloudpickle"
    elif flavor is None:
        what = "a function" if inspect.isroutine(model) else cls
        details["pickle_reason"] = f"{what} is not a scikit-learn estimator: only a pickle can hold it"
        flavor = "cloudpickle"
    else:
        details["pickle_reason"] = f"flavor={flavor!r} was asked for at registration"
    # pickle writes the objects' own memory, so the blob's hash can be computed on a second thread; the blob is
    # named by BLAKE3, whose whole digest is the one recorded to check the bytes before loading them
    with ws.blobs.writer(background=True, algo=BLAKE3) as w:
        try:
            if flavor == "joblib":
                import joblib

                joblib.dump(model, w)
            else:
                import cloudpickle

                cloudpickle.dump(model, w, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            if isinstance(exc, MloError):
                raise
            raise InvalidInput(f"cannot serialize {cls} with {flavor}: {type(exc).__name__}: {exc}") from None
    details["blake3"] = w.blake3
    return Stored(flavor, w.digest, w.size, details)


def _blake3(data: bytes = b""):
    import blake3

    return blake3.blake3(data, max_threads=blake3.blake3.AUTO)


# -- reading ----------------------------------------------------------------------------------------------------
def check_trusted(ws, flavor: str, details: dict, label: str, who: str, trust: bool) -> None:
    """Refuse, before a byte is read, a pickle that neither ``trust=True`` nor ``[registry] trusted_flavors``
    lets load. ``who`` says who registered it, when and from which run (for the message)."""
    if flavor not in PICKLE_FLAVORS or trust or flavor in trusted_flavors(ws.config):
        return
    why = details.get("skops_fallback") or details.get("pickle_reason")
    because = f"; it is one because {why}" if why else ""
    raise UntrustedModel(
        f"model {label} is a {flavor} pickle, and loading a pickle runs any code it holds{because}. "
        f"It was registered {who}. Only if you trust that source, load it with trust=True "
        f'(mlo.load_model("{label}", trust=True)) or add "{flavor}" to [registry] trusted_flavors in mlo.toml'
    )


def load(ws, flavor: str, digest: str, details: dict, label: str, *, trust: bool = False) -> Any:
    """The model stored in blob ``digest``, after checking the bytes against the digest (and, for skops, every
    type against the allowlist; ``trust`` adds the types of this model). ``label`` names the version in errors.
    Pickles are loaded here as they are: :func:`check_trusted` decides before."""
    recorded = details.get("blake3")
    if flavor == "cloudpickle" and recorded is not None:
        # unpickle straight from the mapped file: no copy of the bytes, and BLAKE3 checks them on all cores first
        try:
            with ws.blobs.mapped(digest) as view:
                if _blake3(view).hexdigest() != recorded:
                    raise ModelIntegrityError(
                        f"model {label}: the stored file no longer matches the digest recorded at registration; "
                        "refusing to load it (restore the blob from a backup or register the model again)"
                    )
                return pickle.loads(view)  # noqa: S301 - digest-verified bytes that this registry wrote
        except NotFound:
            raise _missing(label, digest) from None
    try:
        # a BLAKE3 digest recorded with the version is checked on all cores, ~4x faster than the blob's SHA-256
        data = ws.blobs.get_bytes(digest, verify=recorded is None)
        if recorded is not None and _blake3(data).hexdigest() != recorded:
            raise CorruptBlob(digest)
    except CorruptBlob:
        raise ModelIntegrityError(
            f"model {label}: the stored file no longer matches the digest {short(digest)} recorded at registration; "
            "refusing to load it (restore the blob from a backup or register the model again)"
        ) from None
    except NotFound:
        raise _missing(label, digest) from None
    if flavor == "skops":
        import skops.io as sio

        patterns = trusted_patterns(ws.config)
        found = sio.get_untrusted_types(data=data)
        untrusted = [] if trust else [t for t in found if not _allowed(t, patterns)]
        if untrusted:
            raise UntrustedModel(
                f"model {label} holds types that are not trusted: {', '.join(untrusted)}; loading it constructs "
                f'them. Only if you trust where it came from, load it with trust=True (mlo.load_model("{label}", '
                "trust=True)) or name the types in mlo.toml [registry] trusted_types"
            )
        return sio.loads(data, trusted=found)
    if flavor == "cloudpickle":
        return pickle.loads(data)  # noqa: S301 - digest-verified bytes that this registry wrote
    if flavor == "joblib":
        import joblib

        return joblib.load(io.BytesIO(data))
    raise ModelIntegrityError(
        f"model {label} has flavor {flavor!r}, which this mlo cannot load; upgrade mlo-workbench"
    )


def _missing(label: str, digest: str) -> MissingBlob:
    return MissingBlob(
        f"model {label}: its file (blob {short(digest)}) is missing from the blob store; restore it from a backup "
        "(`mlo doctor` lists every missing blob)"
    )


# -- environment --------------------------------------------------------------------------------------------------
_KNOWN_DISTRIBUTIONS = {
    "sklearn": ["scikit-learn"],
    "skops": ["skops"],
    "numpy": ["numpy"],
    "scipy": ["scipy"],
    "pandas": ["pandas"],
    "joblib": ["joblib"],
    "cloudpickle": ["cloudpickle"],
}


@functools.cache
def _all_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # scans every installed package: only for unusual modules


def _distributions_of(root: str) -> list[str]:
    if root in _KNOWN_DISTRIBUTIONS:
        return _KNOWN_DISTRIBUTIONS[root]
    module = sys.modules.get(root)
    path = str(getattr(module, "__file__", "") or "")
    if "site-packages" not in path and "dist-packages" not in path:
        return []  # the user's own code, not an installed package
    return _all_distributions().get(root, [])


@functools.lru_cache(maxsize=256)
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _module_roots(model: Any) -> set[str]:
    roots = {type(model).__module__.split(".")[0]}
    if is_sklearn(model):
        try:
            params = model.get_params(deep=True)
        except Exception:
            params = {}
        for value in params.values():
            roots.add(type(value).__module__.split(".")[0])
            if callable(value) and hasattr(value, "__module__") and value.__module__:
                roots.add(value.__module__.split(".")[0])
    return roots


def environment(model: Any, flavor: str) -> dict[str, Any]:
    """Python and the versions of the packages the model's classes come from, plus numpy and the serializer."""
    roots = _module_roots(model) | {
        "numpy",
        {"skops": "skops", "joblib": "joblib"}.get(flavor, "cloudpickle"),
    }
    if "sklearn" in sys.modules:
        roots.add("sklearn")
    packages: dict[str, str] = {}
    for root in sorted(roots):
        if root in ("builtins", "__main__") or root not in sys.modules:
            continue
        for dist in _distributions_of(root):
            version = _version(dist)
            if version:
                packages[dist] = version
    return {"python": platform.python_version(), "packages": packages}


def check_environment(env: dict, label: str) -> None:
    """Warn when a package the model was registered with is installed here in another version."""
    diffs = []
    for dist, version in (env.get("packages") or {}).items():
        here = _version(dist)
        if here is not None and here != version and dist not in ("skops", "joblib", "cloudpickle"):
            diffs.append(f"{dist} {version} (here {here})")
    if diffs:
        warnings.warn(
            f"model {label} was registered with {', '.join(diffs)}; predictions may differ",
            ModelEnvironmentWarning,
            stacklevel=3,
        )
