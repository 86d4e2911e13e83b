"""``mlo.toml``: reading the project's and the workspace's settings, merging them, and checking them on load.

Two files are read: the project's ``mlo.toml`` next to ``.mlo/`` (checked into git: policies, trusted types) and
the workspace's own ``.mlo/mlo.toml`` (local settings such as the store); the workspace's wins, per table.

Every section and key is checked against :data:`SCHEMA` when a file is read, so a misspelt name is one line
naming the file, the section and the closest known name, instead of a setting that silently does nothing.
A module that adds settings declares them here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

from .errors import InvalidInput

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CONFIG_NAME = "mlo.toml"
ANY_NAME = "*"  # in a schema: a table whose keys are names the user chooses (e.g. aliases under [policy])

Check = Callable[[Any, str], None]
Schema = Mapping[str, Union[Check, "Schema"]]


def _any(value: Any, where: str) -> None:
    """Checked where it is used (e.g. policy options, monitoring rules)."""


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f'{where} must be a non-empty string, e.g. "…"')


def _text_list(value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f'{where} must be a list of strings, e.g. ["…"]')


def _flavors(value: Any, where: str) -> None:
    from .registry.flavors import FLAVORS

    _text_list(value, where)
    for v in value:
        if v not in FLAVORS:
            raise InvalidInput(
                f"{where}: unknown flavor {v!r}{did_you_mean(v, FLAVORS)} (flavors: {', '.join(FLAVORS)})"
            )


def _number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidInput(f"{where} must be a number >= 0, got {value!r}")


def _whole(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{where} must be a whole number >= 0, got {value!r}")


def _size(value: Any, where: str) -> None:
    from .store.remote import parse_size

    parse_size(value, where)


def _llm_prices(value: Any, where: str) -> None:
    from .llm.pricing import parse_prices

    parse_prices(value, where)


def _bool(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} must be true or false")


def _seconds(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0.05:
        raise InvalidInput(f"{where} must be a number of seconds (at least 0.05), e.g. 5")


def _count(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{where} must be a whole number of at least 0, e.g. 20")


def _positive(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{where} must be a whole number of at least 1, e.g. 10000, got {value!r}")


def _problem(value: Any, where: str) -> None:
    from .governance.problem import parse

    parse(value, source=where.rsplit(": ", 1)[0])


SCHEMA: dict[str, Any] = {
    "store": {"url": _text, "artifacts": _text, "cache_size": _size},
    "registry": {"trusted_types": _text_list, "trusted_flavors": _flavors},
    "policy": {ANY_NAME: {"validation": _any, "drift": _any, "eval": _any, "models": _any}},
    "guardrails": {ANY_NAME: _any},  # checked when a policy is loaded (mlo.llm.guardrails)
    "monitor": {"window": _any, "rules": _any},
    "llm": {
        "base_url": _text,
        "model": _text,
        "api_key_env": _text,
        "timeout": _number,
        "retries": _whole,
        "requests_per_minute": _number,
        "prices": _llm_prices,
        "budget": {"daily": _number, "monthly": _number, "run": _number, "action": _text},
    },
    "autolog": {
        "disable": _text_list,
        "log_models": _bool,
        "metrics": _bool,
        "max_tuning_runs": _count,
        "silent": _bool,
    },
    "system_metrics": {"enabled": _bool, "interval": _seconds},
    "problem": _problem,
    "otel": {"endpoint": _text, "service_name": _text, "live": _bool},
    "ui": {"count_up_to": _positive},
}


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""


def check(doc: Mapping[str, Any], source: str, schema: Mapping[str, Any] | None = None) -> None:
    """Raise InvalidInput (one line) at the first section or key of ``doc`` that ``schema`` does not know or whose
    value is of the wrong kind. ``source`` names the file in the message."""
    _check_table(doc, SCHEMA if schema is None else schema, source, [])


def _check_table(doc: Mapping[str, Any], schema: Mapping[str, Any], source: str, path: list[str]) -> None:
    for key, value in doc.items():
        rule = schema.get(key, schema.get(ANY_NAME))
        where = ".".join([*path, key])
        if rule is None:
            known = sorted(k for k in schema if k != ANY_NAME)
            if not path:
                raise InvalidInput(
                    f"{source}: unknown section [{key}]{did_you_mean(key, known)} (sections: {', '.join(known)})"
                )
            raise InvalidInput(
                f"{source}: unknown key {key!r} in [{'.'.join(path)}]{did_you_mean(key, known)} "
                f"(keys: {', '.join(known)})"
            )
        if isinstance(rule, Mapping):
            if not isinstance(value, dict):
                raise InvalidInput(f"{source}: {where} must be a table ([{where}])")
            _check_table(value, rule, source, [*path, key])
        else:
            rule(value, f"{source}: {where}")


def read(path: Path) -> dict:
    """One ``mlo.toml``, checked; {} when there is none."""
    if not path.is_file():
        return {}
    from .tracking.access import unobserved

    try:
        with unobserved(), path.open("rb") as fh:  # mlo's own settings are not data a cell read
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML ({exc}); fix or delete it") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    check(doc, str(path))
    return doc


def load(home: Path, dirname: str = ".mlo") -> dict:
    """The settings in force for the workspace at ``home``: the project's file, then the workspace's, per table."""
    config = read(home.parent / CONFIG_NAME) if home.name == dirname else {}
    for key, value in read(home / CONFIG_NAME).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config
