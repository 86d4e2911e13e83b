"""HTML, Markdown and plain text for the model registry: version summaries, the models table (``%mlo models``),
audit trails and model cards."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from ..store.addresses import short
from ..tracking.short_ids import short_ids
from .html import STYLE, badge, fmt, page, table

if TYPE_CHECKING:
    import pandas as pd

    from ..registry.aliases import AuditEvent
    from ..registry.signature import Signature
    from ..registry.versions import ModelVersion

ALIAS_COLOR = "#8250df"
MAX_METRIC_COLUMNS = 6


def alias_badges(aliases: list[str]) -> str:
    return " ".join(
        f'<span class="mlo-b" style="background:{ALIAS_COLOR}">@{escape(a)}</span>' for a in aliases
    )


def size_text(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _verdict(passed: bool | None) -> str:
    return badge({True: "passed", False: "failed"}.get(passed, "no verdict"))


# -- signature ---------------------------------------------------------------------------------------------------
def signature_rows(sig: dict) -> list[list[Any]]:
    if sig.get("type") == "frame":
        return [[c["name"], c.get("dtype") or "any", c.get("kind") or ""] for c in sig.get("columns", [])]
    if sig.get("type") == "array":
        shape = "×".join("n" if s == -1 else str(s) for s in sig.get("shape") or [])
        return [[f"array[{shape}]", sig.get("dtype") or "any", ""]]
    return [["(any input)", "", ""]]


def signature_html(sig: Signature) -> str:
    from ..registry.signature import describe_outputs

    d = sig.to_dict()
    return (
        STYLE
        + table(["input", "dtype", "kind"], signature_rows(d))
        + f"<div class='mlo-m'>output: {escape(describe_outputs(d.get('outputs') or {}))} · from "
        f"{escape(d.get('source') or '')}</div>"
    )


# -- one version -------------------------------------------------------------------------------------------------
def version_html(mv: ModelVersion) -> str:
    sig = mv.signature
    head = (
        f"<div class='mlo-h'>{escape(mv.name)} v{mv.version} {alias_badges(mv.aliases)}</div>"
        f"<div class='mlo-m'>{escape(mv.model_class)} · {escape(mv.flavor)} · {size_text(mv.size)} · "
        f"<code>{escape(short(mv.digest))}</code> · {escape(fmt(mv.created_at))} by {escape(mv.created_by or '?')}"
    )
    if mv.run_id:
        head += f" · run <code title='{escape(mv.run_id)}'>{escape(short_ids([mv.run_id])[mv.run_id])}</code>"
    head += "</div>"
    parts = [STYLE, head]
    metrics = mv.metrics
    if metrics:
        parts.append(table(["metric", "value"], [[k, v] for k, v in metrics.items()], numeric={1}))
    if sig is not None:
        from ..registry.signature import describe_outputs

        d = sig.to_dict()
        parts.append(table(["input", "dtype", "kind"], signature_rows(d)))
        parts.append(f"<div class='mlo-m'>output: {escape(describe_outputs(d.get('outputs') or {}))}</div>")
    return "".join(parts)


# -- the models table --------------------------------------------------------------------------------------------
def models_table_html(df: pd.DataFrame, max_rows: int = 50) -> str:
    if df.empty:
        return (
            STYLE + "<div class='mlo-m'>No models registered yet (mlo.register_model or %mlo register).</div>"
        )
    metrics = [c for c in df.columns if c.startswith("metrics.")][:MAX_METRIC_COLUMNS]
    short = short_ids(df.head(max_rows)["run_id"])
    rows = []
    for rec in df.head(max_rows).to_dict("records"):
        aliases = [a.strip() for a in (rec["aliases"] or "").split(",") if a.strip()]
        rows.append(
            [
                rec["name"],
                rec["version"],
                alias_badges(aliases),
                rec["model_class"],
                rec["flavor"],
                size_text(rec["size"]),
                f"<code title='{escape(str(rec['run_id'] or ''))}'>{escape(short.get(rec['run_id'], ''))}</code>",
                rec["created_at"],
                rec["created_by"],
                *[rec[m] for m in metrics],
            ]
        )
    headers = ["name", "version", "aliases", "class", "flavor", "size", "run", "created", "by"] + [
        m.split(".", 1)[1] for m in metrics
    ]
    n_models = df["name"].nunique()
    more = (
        f"<div class='mlo-m'>{len(df) - max_rows} more versions not shown (all are in mlo.models())</div>"
        if len(df) > max_rows
        else ""
    )
    return (
        STYLE + f"<div class='mlo-h'>{n_models} model{'s' if n_models != 1 else ''}, {len(df)} version"
        f"{'s' if len(df) != 1 else ''}</div>"
        + table(headers, rows, numeric={1, 5, *range(9, 9 + len(metrics))}, raw={2, 6})
        + more
    )


def models_text(df: pd.DataFrame, max_rows: int | None = None) -> str:
    if df.empty:
        return "No models."
    metrics = [c for c in df.columns if c.startswith("metrics.")][:MAX_METRIC_COLUMNS]
    cols = ["name", "version", "aliases", "model_class", "flavor", "size", "run_id", "created_at"] + metrics
    shown = df if max_rows is None else df.head(max_rows)
    short = short_ids(shown["run_id"])
    rows = []
    for rec in shown[cols].to_dict("records"):
        row = []
        for c in cols:
            v = rec[c]
            if c == "size":
                row.append(size_text(v))
            elif c == "run_id":
                row.append("" if _na(v) else short.get(v, str(v)))
            elif _na(v):
                row.append("")
            else:
                row.append(fmt(v))
        rows.append(row)
    headers = [c.split(".", 1)[1] if c in metrics else c for c in cols]
    return _fixed(headers, rows, right={1, 5, *range(8, 8 + len(metrics))})


class ModelsView:
    """What ``%mlo models`` shows: the compact table in notebooks, text elsewhere; ``.df`` has the data."""

    def __init__(self, df: pd.DataFrame, max_rows: int = 50):
        self.df = df
        self.max_rows = max_rows

    def _repr_html_(self) -> str:
        return models_table_html(self.df, self.max_rows)

    def __repr__(self) -> str:
        return models_text(self.df, self.max_rows)


# -- audit -------------------------------------------------------------------------------------------------------
def _v(x: Any) -> str:
    return "" if x is None else f"v{x}"


def audit_html(events: list[AuditEvent]) -> str:
    rows = [
        [
            e.created_at,
            e.name,
            e.action,
            e.alias or "",
            _v(e.from_version),
            _v(e.to_version if e.action != "register" else e.version),
            e.user,
            ("forced: " + "; ".join(e.missing)) if e.forced else "",
            ", ".join(e.evidence),
            e.reason or "",
        ]
        for e in events
    ]
    return STYLE + table(
        ["time", "model", "action", "alias", "from", "to", "by", "override", "evidence", "why"], rows
    )


def audit_text(df: pd.DataFrame) -> str:
    if df.empty:
        return "No audit events."
    rows = []
    for rec in df.to_dict("records"):
        to = rec["version"] if rec["action"] == "register" else rec["to_version"]
        rows.append(
            [
                fmt(rec["time"]),
                rec["name"],
                rec["action"],
                "" if _na(rec["alias"]) else rec["alias"],
                "" if _na(rec["from_version"]) else f"v{rec['from_version']}",
                "" if _na(to) else f"v{to}",
                "" if _na(rec["user"]) else rec["user"],
                "forced" if rec["forced"] else "",
                ",".join(rec["evidence"]),
                "" if _na(rec["reason"]) else rec["reason"],
            ]
        )
    return _fixed(["time", "model", "action", "alias", "from", "to", "by", "", "evidence", "why"], rows)


def _na(v: Any) -> bool:
    try:
        import pandas as pd

        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _fixed(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    from .text import table

    return table(headers, rows, right)


# -- model cards -------------------------------------------------------------------------------------------------
def _kv(d: dict) -> str:
    return ", ".join(
        f"{k}={fmt(v) if not isinstance(v, list) else ','.join(map(str, v))}" for k, v in d.items()
    )[:160]


def _feature_line(f: dict) -> str:
    """``spend@2 · amount_usd, big · from transactions@3 · digest 1a2b…``: a feature view version a model reads."""
    source = f" · from {f['source']}" if f.get("source") else ""
    return f"{f['ref']} · {', '.join(f['columns'])}{source} · digest {(f.get('digest') or '?')[:16]}"


def card_html(d: dict) -> str:
    """The card as a notebook fragment."""
    from ..registry.signature import describe_outputs

    parts = [STYLE]
    parts.append(
        f"<div class='mlo-h'>Model card: {escape(d['name'])} v{d['version']} {alias_badges(d['aliases'])}</div>"
        f"<div class='mlo-m'>{escape(d['model_class'])} · {escape(d['flavor'])} · {size_text(d['size'])} · "
        f"blob <code>{escape(d['digest'])}</code></div>"
        f"<div class='mlo-m'>registered {escape(d['created_at'])} by {escape(d['created_by'] or '?')}</div>"
    )
    if d.get("description"):
        parts.append(f"<p class='mlo-m'>{escape(d['description'])}</p>")
    lin = d["lineage"]
    parts.append("<div class='mlo-h'>Lineage</div>")
    rows = []
    if lin["run"]:
        r = lin["run"]
        git = (
            f" · git {r['git_commit'][:10]}{' (dirty)' if r['git_dirty'] else ''}" if r["git_commit"] else ""
        )
        rows.append(["run", f"{r['name']} ({r['id']}) · {r['experiment']} · {r['status']}{git}"])
    else:
        rows.append(["run", "none recorded"])
    if lin["code"]:
        rows.append(["code", f"{lin['code']['cells']} cell(s), sha256 {lin['code']['digest']}"])
    for s in lin["data"]:
        shape = f"{s['rows']:,} rows · " if s.get("rows") is not None else ""
        rows.append(["data", f"{s['ref']} · {shape}digest {s.get('digest') or '?'}"])
    for f in lin.get("features") or []:
        rows.append(["features", _feature_line(f)])
    parts.append(table(["", ""], rows))
    if d["metrics"]:
        parts.append("<div class='mlo-h'>Metrics</div>")
        parts.append(table(["metric", "value"], [[k, v] for k, v in d["metrics"].items()], numeric={1}))
    parts.append("<div class='mlo-h'>Signature</div>")
    if d["signature"]:
        parts.append(table(["input", "dtype", "kind"], signature_rows(d["signature"])))
        parts.append(
            f"<div class='mlo-m'>output: {escape(describe_outputs(d['signature'].get('outputs') or {}))} · from "
            f"{escape(d['signature'].get('source') or '')}</div>"
        )
    else:
        parts.append("<div class='mlo-m'>none (inputs are not checked)</div>")
    for title, key in (("Validation", "validation"), ("Drift", "drift")):
        parts.append(f"<div class='mlo-h'>{title} evidence</div>")
        if d[key]:
            parts.append(
                table(
                    ["report", "time", "verdict", "summary"],
                    [[r["id"], r["created_at"], _verdict(r["passed"]), _kv(r["summary"])] for r in d[key]],
                    raw={2},
                )
            )
        else:
            parts.append("<div class='mlo-m'>none recorded</div>")
    if d["policies"]:
        parts.append("<div class='mlo-h'>Policies</div>")
        parts.append(
            table(
                ["alias", "requires", "status", "missing"],
                [
                    [
                        p["alias"],
                        p["requires"],
                        badge("passed" if p["ok"] else "failed"),
                        "; ".join(p["missing"]),
                    ]
                    for p in d["policies"]
                ],
                raw={2},
            )
        )
    parts.extend(_governance_html(d))
    parts.append("<div class='mlo-h'>Audit trail</div>")
    parts.append(
        table(
            ["time", "action", "alias", "from", "to", "by", "override", "evidence", "why"],
            [
                [
                    a["time"],
                    a["action"],
                    a["alias"] or "",
                    _v(a["from_version"]),
                    _v(a["to_version"]),
                    a["user"],
                    "forced: " + "; ".join(a["missing"]) if a["forced"] else "",
                    ", ".join(a["evidence"]),
                    a["reason"] or "",
                ]
                for a in d["audit"]
            ],
        )
    )
    env = d.get("env") or {}
    if env:
        pk = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())
        parts.append(
            f"<div class='mlo-m'>environment: Python {escape(str(env.get('python')))} · {escape(pk)}</div>"
        )
    return "".join(parts)


def _governance_html(d: dict) -> list[str]:
    """The problem judged for this version, the feature importance of its validation, the maturity level."""
    from ..governance.render import state_badge
    from ..validate.explain_render import importance_bars

    parts = []
    p = d.get("problem")
    if p:
        parts.append(f"<div class='mlo-h'>Problem {state_badge(p['state'])}</div>")
        parts.append(f"<div class='mlo-m'>{escape(p['objective'])}" + (
            f" · owner {escape(p['owner'])}" if p.get("owner") else "") + "</div>")  # fmt: skip
        parts.append(
            table(
                ["state", "objective or constraint", "value", "bound", "evidence"],
                [
                    [state_badge(i["state"]), i["name"], i["value"], i["bound"], i["evidence"]]
                    for i in p["items"]
                ],
                numeric={2},
                raw={0},
            )
        )
    imp = d.get("importance")
    if imp and imp.get("error"):
        parts.append(
            f"<div class='mlo-h'>Feature importance</div><div class='mlo-m'>not computed by validation "
            f"{escape(imp['report'])}: {escape(imp['error'])}</div>"
        )
    if imp and imp.get("all"):
        a = imp["all"]
        parts.append(
            f"<div class='mlo-h'>Feature importance</div><div class='mlo-m'>{escape(a['method'])} importance "
            f"({escape(a['scoring'])} drop) on {a['n_rows']:,} rows, from validation {escape(imp['report'])}</div>"
        )
        parts.append(importance_bars(a["importances"]))
        w = imp.get("worst_slice")
        if w:
            parts.append(
                f"<div class='mlo-m'>on the worst slice, {escape(w['slice'])} ({w['n_rows']:,} rows):</div>"
            )
            parts.append(importance_bars(w["importances"], top=8))
    m = d.get("maturity")
    if m:
        nxt = f" · next: {', '.join(m['next'])}" if m.get("next") else ""
        parts.append(
            f"<div class='mlo-h'>Maturity</div><div class='mlo-m'>level {m['level']} ({escape(m['name'])}), "
            f"measured from the workspace's records{escape(nxt)}</div>"
        )
    return parts


def _governance_markdown(d: dict) -> list[str]:
    out: list[str] = []
    p = d.get("problem")
    if p:
        out += ["", f"## Problem: {p['state']}", "", _md_block(p["objective"]), ""]
        out.append(
            _md_table(
                ["state", "objective or constraint", "value", "bound", "evidence"],
                [[i["state"], i["name"], fmt(i["value"]), i["bound"], i["evidence"]] for i in p["items"]],
            )
        )
    imp = d.get("importance")
    if imp and imp.get("all"):
        a = imp["all"]
        out += ["", "## Feature importance", "", f"{_md(a['method'])} importance ({_md(a['scoring'])} drop) on "
                f"{a['n_rows']:,} rows, from validation {_md_code(imp['report'])}.", ""]  # fmt: skip
        out.append(
            _md_table(["feature", "importance", "std"], [[r["feature"], fmt(r["importance"]), fmt(r["std"])]
                                                         for r in a["importances"][:15]])
        )  # fmt: skip
        w = imp.get("worst_slice")
        if w:
            out += ["", f"On the worst slice, {_md(w['slice'])} ({w['n_rows']:,} rows):", ""]
            out.append(
                _md_table(
                    ["feature", "importance"],
                    [[r["feature"], fmt(r["importance"])] for r in w["importances"][:8]],
                )
            )
    m = d.get("maturity")
    if m:
        out += [
            "",
            "## Maturity",
            "",
            f"Level {m['level']} ({_md(m['name'])}), measured from the workspace's records.",
        ]
    return out


def card_page(d: dict) -> str:
    """The card as a standalone HTML page."""
    return page(f"{d['name']} v{d['version']} — model card", card_html(d))


def _md(text: Any) -> str:
    """Text for Markdown, inline: no raw HTML (``<`` and ``&`` as entities, so a renderer shows them as text), no
    line breaks, no table pipes."""
    text = str("" if text is None else text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.splitlines()).replace("|", "\\|")


def _md_code(text: Any) -> str:
    """A code span: Markdown shows its content literally, as long as no backtick or line break ends it early."""
    return "`" + " ".join(str("" if text is None else text).replace("`", "'").splitlines()) + "`"


def _md_block(text: Any) -> str:
    """Free Markdown from the user (a description): its formatting is kept, raw HTML is not."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;")


def _md_table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def card_markdown(d: dict) -> str:
    """The card as Markdown. Every value comes from records that users and models wrote (names, reasons, column
    names, class names), so each is escaped: the Markdown carries no raw HTML for a renderer to run."""
    from ..registry.signature import describe_outputs

    aliases = " ".join(_md_code(f"@{a}") for a in d["aliases"])
    out = [
        f"# {_md(d['name'])} v{d['version']} {aliases}".rstrip(),
        "",
        f"- class: {_md_code(d['model_class'])}",
        f"- stored as: {_md(d['flavor'])}, {size_text(d['size'])}, blob {_md_code(d['digest'])}",
        f"- registered: {_md(d['created_at'])} by {_md(d['created_by'] or '?')}",
        f"- uri: {_md_code(d['uri'])}",
    ]
    if d.get("description"):
        out += ["", _md_block(d["description"])]
    lin = d["lineage"]
    out += ["", "## Lineage", ""]
    if lin["run"]:
        r = lin["run"]
        git = (
            f", git {_md_code(r['git_commit'][:10])}{' (dirty)' if r['git_dirty'] else ''}"
            if r["git_commit"]
            else ""
        )
        out.append(
            f"- run: {_md(r['name'])} ({_md_code(r['id'])}), experiment {_md(r['experiment'])}, "
            f"{_md(r['status'])}{git}"
        )
    else:
        out.append("- run: none recorded")
    if lin["code"]:
        out.append(f"- code: {lin['code']['cells']} cell(s), sha256 {_md_code(lin['code']['digest'])}")
    for s in lin["data"]:
        shape = f"{s['rows']:,} rows, " if s.get("rows") is not None else ""
        out.append(f"- data: {_md(s['ref'])}, {shape}digest {_md_code(s.get('digest') or '?')}")
    for f in lin.get("features") or []:
        out.append(f"- features: {_md(_feature_line(f))}")
    if d["metrics"]:
        out += [
            "",
            "## Metrics",
            "",
            _md_table(["metric", "value"], [[k, fmt(v)] for k, v in d["metrics"].items()]),
        ]
    out += ["", "## Signature", ""]
    if d["signature"]:
        out.append(_md_table(["input", "dtype", "kind"], signature_rows(d["signature"])))
        out += ["", f"Output: {_md(describe_outputs(d['signature'].get('outputs') or {}))}."]
    else:
        out.append("None (inputs are not checked).")
    for title, key in (("Validation", "validation"), ("Drift", "drift")):
        out += ["", f"## {title} evidence", ""]
        if d[key]:
            verdict = {True: "passed", False: "failed"}
            out.append(
                _md_table(
                    ["report", "time", "verdict", "summary"],
                    [
                        [r["id"], r["created_at"], verdict.get(r["passed"], "no verdict"), _kv(r["summary"])]
                        for r in d[key]
                    ],
                )
            )
        else:
            out.append("None recorded.")
    if d["policies"]:
        out += ["", "## Policies", ""]
        out.append(
            _md_table(
                ["alias", "requires", "status", "missing"],
                [
                    [p["alias"], p["requires"], "met" if p["ok"] else "not met", "; ".join(p["missing"])]
                    for p in d["policies"]
                ],
            )
        )
    out += _governance_markdown(d)
    out += ["", "## Audit trail", ""]
    out.append(
        _md_table(
            ["time", "action", "alias", "from", "to", "by", "override", "evidence", "why"],
            [
                [
                    a["time"],
                    a["action"],
                    a["alias"] or "",
                    _v(a["from_version"]),
                    _v(a["to_version"]),
                    a["user"] or "",
                    "forced: " + "; ".join(a["missing"]) if a["forced"] else "",
                    ", ".join(a["evidence"]),
                    a["reason"] or "",
                ]
                for a in d["audit"]
            ],
        )
    )
    env = d.get("env") or {}
    if env:
        pk = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())
        out += ["", f"Environment: Python {_md(env.get('python'))}; {_md(pk)}."]
    return "\n".join(out) + "\n"
