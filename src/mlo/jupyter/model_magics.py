"""``%mlo register``, ``%mlo models`` and ``%mlo promote``: the model registry from the notebook."""

from __future__ import annotations

from IPython.core.error import UsageError

USAGE = """\
  %mlo register VAR --name N [--alias A] [--example VAR2] [--flavor F] [--run RUN] [--trust]
                                         register the model in VAR as the next version of N
                                         (VAR2: an input example, for the signature; RUN: the
                                         run it came from, by default the run whose cell
                                         trained it; --trust: keep a pipeline with a custom
                                         step in skops)
  %mlo models [NAME] [--table]           browse model versions, aliases, validation verdicts and
                                         model cards (--table: a plain table)
  %mlo promote NAME VERSION ALIAS [--reason R] [--force]
                                         point ALIAS at VERSION if the alias's policy is met
"""


def _register(magics, args, cell):
    from .magics import _parser

    a = _parser(
        "register",
        (("var",), {}),
        (("--name", "-n"), {"required": True}),
        (("--alias", "-a"), {}),
        (("--example", "-x"), {}),
        (("--flavor",), {"choices": ["skops", "cloudpickle", "joblib"]}),
        (("--run", "-r"), {}),
        (("--trust",), {"action": "store_true"}),
    ).parse_args(args)
    ns = magics.shell.user_ns
    if a.var not in ns:
        raise UsageError(f"%mlo register: no variable named {a.var!r} in the notebook")
    example = None
    if a.example is not None:
        if a.example not in ns:
            raise UsageError(f"%mlo register: no variable named {a.example!r} for --example")
        example = ns[a.example]
    from .. import registry

    mv = registry.register_model(
        ns[a.var],
        a.name,
        input_example=example,
        alias=a.alias,
        flavor=a.flavor,
        run=a.run,
        trust=a.trust,
    )
    at = f" as @{a.alias}" if a.alias else ""
    run = f" from run {mv.run_id}" if mv.run_id else ""
    print(f"registered {mv.ref}{at} ({mv.flavor}, {mv.size:,} bytes){run}")


def _models(magics, args, cell):
    from ..report.models import ModelsView
    from .magics import _parser

    a = _parser(
        "models",
        (("name",), {"nargs": "?"}),
        (("--table",), {"action": "store_true"}),
        (("--limit", "-n"), {"type": int, "default": 50}),
    ).parse_args(args)
    if a.table:
        from .. import registry

        return ModelsView(registry.models(a.name), max_rows=a.limit)
    from .widgets import browse_models

    return browse_models(a.name)


def _promote(magics, args, cell):
    from .magics import _parser

    a = _parser(
        "promote",
        (("name",), {}),
        (("version",), {}),
        (("alias",), {}),
        (("--reason", "-r"), {}),
        (("--force",), {"action": "store_true"}),
    ).parse_args(args)
    from .. import registry

    event = registry.promote(a.name, a.version, a.alias, reason=a.reason, force=a.force)
    if event is None:
        print(f"{a.name}@{a.alias} already points at version {a.version}")
        return
    forced = " (forced: policy not met, recorded in the audit log)" if event.forced else ""
    print(f"{a.name}@{a.alias} → v{event.to_version}{forced}")


COMMANDS = {"register": _register, "models": _models, "promote": _promote}
