"""Replacing methods and functions of other libraries for autolog, undoing it exactly, and running code when a
module is first imported.

A method is replaced by a descriptor that asks the original attribute for the bound method first, so what the
library decides about its own methods still holds: ``hasattr(pipeline, "fit_transform")`` stays False when the
last step cannot ``fit_transform`` (scikit-learn's ``available_if``), and ``inspect.signature(est.fit)`` still
shows the original parameters. Undoing puts back exactly what the class had in its own ``__dict__``.
"""

from __future__ import annotations

import functools
import importlib.abc
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mlo")

# wrapper(bound_original, instance, *args, **kwargs) for methods; wrapper(original, *args, **kwargs) for functions
MethodWrapper = Callable[..., Any]


@dataclass
class Patch:
    """One replaced attribute and what to put back."""

    owner: Any
    name: str
    had_own: bool
    previous: Any

    def undo(self) -> None:
        if self.had_own:
            setattr(self.owner, self.name, self.previous)
        else:
            try:
                delattr(self.owner, self.name)
            except AttributeError:
                pass


class _Bound:
    """A patched bound method: calls ``wrapper(original_bound, instance, ...)``; looks like the original to
    ``inspect`` (``__wrapped__``) and to readers (name, doc)."""

    __slots__ = ("_wrapper", "__wrapped__", "__self__")

    def __init__(self, wrapper: MethodWrapper, bound: Any, instance: Any):
        self._wrapper = wrapper
        self.__wrapped__ = bound
        self.__self__ = instance

    def __call__(self, *args, **kwargs):
        return self._wrapper(self.__wrapped__, self.__self__, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # __name__, __doc__, __func__, … of the original
        return getattr(self.__wrapped__, name)

    def __repr__(self) -> str:
        return f"<autologged {self.__wrapped__!r}>"


class _PatchedMethod:
    """The descriptor put on a class in place of a method (a function or another descriptor)."""

    def __init__(self, raw: Any, wrapper: MethodWrapper):
        self.raw = raw
        self.wrapper = wrapper
        if callable(raw):
            functools.update_wrapper(self, raw, updated=())

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        getter = getattr(self.raw, "__get__", None)
        if instance is None:  # Class.method: the original, as the library wrote it
            return getter(None, owner) if getter is not None else self.raw
        bound = getter(instance, owner) if getter is not None else self.raw  # AttributeError stays
        return _Bound(self.wrapper, bound, instance)


def raw_attribute(cls: type, name: str) -> Any:
    """The attribute ``name`` as stored on ``cls`` or the first class of its MRO that has it, unpatched."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            raw = klass.__dict__[name]
            return raw.raw if isinstance(raw, _PatchedMethod) else raw
    raise AttributeError(name)


def patch_method(cls: type, name: str, wrapper: MethodWrapper) -> Patch:
    """Make ``cls().name(...)`` call ``wrapper(bound_original, instance, ...)``, for a method defined on ``cls``
    or inherited."""
    raw = raw_attribute(cls, name)
    patch = Patch(cls, name, name in cls.__dict__, cls.__dict__.get(name))
    setattr(cls, name, _PatchedMethod(raw, wrapper))
    return patch


def patch_function(module: Any, name: str, wrapper: Callable[..., Any], original: Any = None) -> Patch:
    """Make ``module.name(...)`` call ``wrapper(original, ...)``. Pass ``original`` when the module holds a name
    bound to a function defined elsewhere (``from .training import train``) so every name calls one original."""
    original = original if original is not None else getattr(module, name)
    original = getattr(original, "__mlo_original__", original)

    @functools.wraps(original)
    def patched(*args, **kwargs):
        return wrapper(original, *args, **kwargs)

    patched.__mlo_original__ = original  # type: ignore[attr-defined]
    patch = Patch(module, name, True, getattr(module, name))
    setattr(module, name, patched)
    return patch


# -- running code when a module is imported ---------------------------------------------------------------------
class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Calls ``callback(module)`` right after a watched module has been imported (once)."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callable[[Any], None]]] = {}
        self._local = threading.local()

    def find_spec(self, fullname, path, target=None):  # type: ignore[override]
        if fullname not in self.callbacks or getattr(self._local, "busy", False):
            return None
        self._local.busy = True
        try:
            from importlib.util import find_spec

            spec = find_spec(fullname)
        except Exception:
            return None
        finally:
            self._local.busy = False
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return None
        exec_module = loader.exec_module

        def exec_then_notify(module):
            exec_module(module)
            self.fire(fullname, module)

        try:
            loader.exec_module = exec_then_notify
        except (AttributeError, TypeError):  # a loader that takes no attributes: import it unwatched
            return None
        return spec

    def fire(self, fullname: str, module: Any) -> None:
        for callback in self.callbacks.pop(fullname, []):
            try:
                callback(module)
            except Exception as exc:  # never break the user's import
                log.warning("mlo.autolog could not patch %s: %s", fullname, exc)


_watcher = _ImportWatcher()


def when_imported(module_name: str, callback: Callable[[Any], None]) -> bool:
    """Run ``callback(module)`` now if ``module_name`` is imported (True), else right after its import (False)."""
    module = sys.modules.get(module_name)
    if module is not None:
        callback(module)
        return True
    if _watcher not in sys.meta_path:
        sys.meta_path.insert(0, _watcher)
    _watcher.callbacks.setdefault(module_name, []).append(callback)
    return False


def forget(module_name: str) -> None:
    """Drop the callbacks still waiting for ``module_name``."""
    _watcher.callbacks.pop(module_name, None)
