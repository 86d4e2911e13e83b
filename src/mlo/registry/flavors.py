"""How a model is stored: the serialization formats ("flavors"), the safe-load allowlist, the environment record.

* ``skops`` — scikit-learn estimators and pipelines. A skops file is a zip of arrays and a JSON schema, loaded
  without pickle: only types that skops trusts by default, or that the allowlist names, can be constructed.
* ``cloudpickle`` — any other Python object (and estimators that skops cannot hold safely). Functions and classes
  defined in a notebook are stored by value, so they load in another process; importable ones by reference.
* ``joblib`` — on request (``flavor="joblib"``), for files that other tools read with ``joblib.load``.

Every flavor is written to the content-addressed blob store, and its SHA-256 is checked before loading: a pickle
whose bytes changed after registration is refused before a byte of it is unpickled.

The allowlist: skops refuses some scikit-learn internals by default (tree node arrays, KD-trees, kernels, …)
because a crafted file could hold out-of-range indices. mlo only loads files it wrote and whose digest still
matches, so it trusts these named internals (:data:`DEFAULT_TRUSTED`); any other type must be named in
``mlo.toml`` (``[registry] trusted_types = ["mypkg.MyTransformer"]``), or the estimator is stored with
cloudpickle instead.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import pickle
import platform
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ..errors import CorruptBlob, InvalidInput, NotFound
from .errors import ModelIntegrityError

FLAVORS = ("skops", "cloudpickle", "joblib")

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


# -- writing ----------------------------------------------------------------------------------------------------
def store(ws, model: Any, flavor: str | None = None) -> Stored:
    """Serialize ``model`` into the blob store in the requested flavor, or the best one for it."""
    if flavor is not None and flavor not in FLAVORS:
        raise InvalidInput(f"flavor must be one of {', '.join(FLAVORS)} (or None to choose), got {flavor!r}")
    details: dict[str, Any] = {}
    if flavor == "skops" or (flavor is None and is_sklearn(model)):
        reason = None
        try:
            import skops.io as sio
        except ImportError:
            reason = "skops is not installed (pip install skops)"
        if reason is None:
            try:
                data = sio.dumps(model)
            except Exception as exc:  # skops does not support every object (e.g. Birch, lambdas in params)
                reason = f"skops cannot serialize it ({type(exc).__name__}: {exc})"
            else:
                untrusted = sio.get_untrusted_types(data=data)
                patterns = trusted_patterns(ws.config)
                unknown = [t for t in untrusted if not _allowed(t, patterns)]
                if not unknown:
                    digest = ws.blobs.put_bytes(data)
                    details = {"trusted_types": untrusted, "blake3": _blake3(data).hexdigest()}
                    return Stored("skops", digest, len(data), details)
                reason = (
                    f"types not on the trusted list: {', '.join(unknown)} (name them in mlo.toml "
                    "[registry] trusted_types to store this estimator with skops)"
                )
        if flavor == "skops":
            raise InvalidInput(f"cannot store {class_name(model)} with skops: {reason}")
        details["skops_fallback"] = reason
        flavor = "cloudpickle"
    if flavor is None:
        flavor = "cloudpickle"
    content = _blake3()
    # pickle writes the objects' own memory, so the SHA-256 of the blob can be computed on a second thread
    with ws.blobs.writer(also=content, background=True) as w:
        try:
            if flavor == "joblib":
                import joblib

                joblib.dump(model, w)
            else:
                import cloudpickle

                cloudpickle.dump(model, w, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise InvalidInput(
                f"cannot serialize {class_name(model)} with {flavor}: {type(exc).__name__}: {exc}"
            ) from None
    details["blake3"] = content.hexdigest()
    return Stored(flavor, w.digest, w.size, details)


def _blake3(data: bytes = b""):
    import blake3

    return blake3.blake3(data, max_threads=blake3.blake3.AUTO)


# -- reading ----------------------------------------------------------------------------------------------------
def load(ws, flavor: str, digest: str, details: dict, label: str) -> Any:
    """The model stored in blob ``digest``, after checking the bytes against the digest (and, for skops, every
    type against the allowlist). ``label`` names the version in errors."""
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
            raise NotFound(
                f"model {label}: its file (blob {digest[:12]}) is missing from the blob store"
            ) from None
    try:
        # a BLAKE3 digest recorded with the version is checked on all cores, ~4x faster than the blob's SHA-256
        data = ws.blobs.get_bytes(digest, verify=recorded is None)
        if recorded is not None and _blake3(data).hexdigest() != recorded:
            raise CorruptBlob(digest)
    except CorruptBlob:
        raise ModelIntegrityError(
            f"model {label}: the stored file no longer matches the digest {digest[:12]} recorded at registration; "
            "refusing to load it (restore the blob from a backup or register the model again)"
        ) from None
    except NotFound:
        raise NotFound(
            f"model {label}: its file (blob {digest[:12]}) is missing from the blob store"
        ) from None
    if flavor == "skops":
        import skops.io as sio

        patterns = trusted_patterns(ws.config)
        trusted = [t for t in details.get("trusted_types", []) if _allowed(t, patterns)]
        try:
            return sio.loads(data, trusted=trusted)
        except sio.exceptions.UntrustedTypesFoundException:
            found = [t for t in sio.get_untrusted_types(data=data) if t not in trusted]
            raise ModelIntegrityError(
                f"model {label} holds types that are not trusted: {', '.join(found)}; name them in mlo.toml "
                "[registry] trusted_types only if you trust where this model came from"
            ) from None
    if flavor == "cloudpickle":
        return pickle.loads(data)  # noqa: S301 - digest-verified bytes that this registry wrote
    if flavor == "joblib":
        import joblib

        return joblib.load(io.BytesIO(data))
    raise ModelIntegrityError(
        f"model {label} has flavor {flavor!r}, which this mlo cannot load; upgrade mlo-workbench"
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
