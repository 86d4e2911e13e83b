"""Drawing a lineage graph: a layered left-to-right SVG (data flows rightwards), DOT for Graphviz, plain text.

The layout is done here, in a few dozen lines, so a notebook needs no Graphviz binary: layers by longest path
from the sources, order within a layer by the barycentre of the neighbours (a few sweeps), and a tall layer
drawn as two staggered columns so 30 nodes stay readable on one screen.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from .html import STYLE

if TYPE_CHECKING:
    from ..data.lineage import Lineage

KIND_COLORS = {
    "snapshot": "#0969da",
    "run": "#1a7f37",
    "model": "#8250df",
    "report": "#bf8700",
}
NODE_W, NODE_H = 184, 44
GAP_X, GAP_Y, SUB_GAP = 64, 10, 28
MAX_PER_COLUMN = 10
PAD = 12


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _layers(lin: Lineage) -> list[list[str]]:
    ids = list(lin.nodes)
    preds: dict[str, list[str]] = {n: [] for n in ids}
    succs: dict[str, list[str]] = {n: [] for n in ids}
    for e in lin.edges:
        if e.src != e.dst:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
    layer: dict[str, int] = {}
    indeg = {n: len(set(preds[n])) for n in ids}
    queue = [n for n in ids if indeg[n] == 0]
    for n in queue:
        layer[n] = 0
    i = 0
    while i < len(queue):  # Kahn's order; longest path gives the layer
        n = queue[i]
        i += 1
        for m in set(succs[n]):
            layer[m] = max(layer.get(m, 0), layer[n] + 1)
            indeg[m] -= 1
            if indeg[m] == 0:
                queue.append(m)
    for n in ids:  # nodes on a cycle (should not happen): put them after their known predecessors
        if n not in layer:
            layer[n] = 1 + max((layer.get(p, 0) for p in preds[n]), default=0)
    count = max(layer.values()) + 1
    layers: list[list[str]] = [[] for _ in range(count)]
    for n in ids:
        layers[layer[n]].append(n)
    pos = {n: k for lst in layers for k, n in enumerate(lst)}
    for sweep in range(4):  # barycentre ordering, alternating directions
        rng = range(1, count) if sweep % 2 == 0 else range(count - 2, -1, -1)
        for li in rng:
            nbrs = preds if sweep % 2 == 0 else succs

            def key(n: str, nbrs=nbrs) -> tuple[float, int]:
                ps = [pos[p] for p in nbrs[n] if p in pos]
                return (sum(ps) / len(ps) if ps else pos[n], pos[n])

            layers[li].sort(key=key)
            for k, n in enumerate(layers[li]):
                pos[n] = k
    return layers


def _positions(
    layers: list[list[str]],
) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]], float, float]:
    """Node corners, each node's layer span (left, right), and the drawing's size. A tall layer is drawn as two
    staggered columns: the nodes of one sit level with the gaps of the other, so edges pass between them."""
    pitch = NODE_H + GAP_Y
    half = (NODE_H + 2 * GAP_Y) / 2  # row pitch of a staggered layer
    heights = []
    for lst in layers:
        n = len(lst)
        heights.append(n * pitch - GAP_Y if n <= MAX_PER_COLUMN else (n - 1) * half + NODE_H)
    height = max(heights, default=NODE_H)
    xy: dict[str, tuple[float, float]] = {}
    span: dict[str, tuple[float, float]] = {}
    x = float(PAD)
    for lst, h in zip(layers, heights, strict=True):
        y0 = PAD + (height - h) / 2
        wrapped = len(lst) > MAX_PER_COLUMN
        right = x + (2 * NODE_W + SUB_GAP if wrapped else NODE_W)
        for k, n in enumerate(lst):
            if wrapped:
                xy[n] = (x + (k % 2) * (NODE_W + SUB_GAP), y0 + k * half)
            else:
                xy[n] = (x, y0 + k * pitch)
            span[n] = (x, right)
        x = right + GAP_X
    return xy, span, x - GAP_X + PAD, height + 2 * PAD


def lineage_svg(lin: Lineage) -> str:
    layers = _layers(lin)
    xy, span, width, height = _positions(layers)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="system-ui,sans-serif" role="img">',
        '<defs><marker id="mlo-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0L8,4L0,8z" fill="#8c959f"/></marker></defs>',
    ]
    for e in lin.edges:
        if e.src not in xy or e.dst not in xy or span[e.src] == span[e.dst]:
            continue
        (x1, y1), (x2, y2) = xy[e.src], xy[e.dst]
        sx, sy = x1 + NODE_W, y1 + NODE_H / 2
        ex, ty = x2, y2 + NODE_H / 2
        out_x, in_x = span[e.src][1], span[e.dst][0]  # leave the source's layer, enter the target's, level
        in_x = min(in_x, ex - 1)
        mx = (out_x + in_x) / 2
        d = f"M{sx:.1f},{sy:.1f} L{out_x:.1f},{sy:.1f} C{mx:.1f},{sy:.1f} {mx:.1f},{ty:.1f} {in_x:.1f},{ty:.1f}"
        if ex - 1 > in_x:
            d += f" L{ex - 1:.1f},{ty:.1f}"
        parts.append(
            f'<path d="{d}" fill="none" stroke="#8c959f" stroke-width="1.3" marker-end="url(#mlo-arrow)">'
            f"<title>{escape(e.relation)}</title></path>"
        )
    for n, node in lin.nodes.items():
        x, y = xy[n]
        color = KIND_COLORS.get(node.kind, "#57606a")
        root = n == lin.root.id
        stroke = f'stroke="{color}" stroke-width="{2.5 if root else 1}"'
        fill = "#fff8c5" if root else "#ffffff"
        parts.append(
            f"<g><title>{escape(node.id)}\n{escape(node.label)}\n{escape(node.detail)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" {stroke}/>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="5" height="{NODE_H}" rx="2" fill="{color}"/>'
            f'<text x="{x + 12:.1f}" y="{y + 12:.1f}" font-size="9" fill="{color}" '
            f'letter-spacing=".5">{escape(node.kind.upper())}</text>'
            f'<text x="{x + 12:.1f}" y="{y + 26:.1f}" font-size="12" font-weight="600" fill="#1f2328">'
            f"{escape(_short(node.label, 24))}</text>"
            f'<text x="{x + 12:.1f}" y="{y + 39:.1f}" font-size="10" fill="#57606a">'
            f"{escape(_short(node.detail, 30))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def lineage_html(lin: Lineage) -> str:
    up, down = lin.upstream(), lin.downstream()
    note = " · truncated (raise max_nodes)" if lin.truncated else ""
    head = (
        f'<div class="mlo-h">Lineage of {escape(lin.root.kind)} {escape(lin.root.label)}</div>'
        f'<div class="mlo-m">{len(up)} upstream · {len(down)} downstream{note}</div>'
    )
    return f'{STYLE}<div>{head}<div style="overflow:auto">{lineage_svg(lin)}</div></div>'


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def lineage_dot(lin: Lineage) -> str:
    shapes = {"snapshot": "cylinder", "run": "box", "model": "component", "report": "note"}
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for n, node in lin.nodes.items():
        attrs = {
            "label": f"{node.kind}\n{node.label}" + (f"\n{node.detail}" if node.detail else ""),
            "shape": shapes.get(node.kind, "ellipse"),
            "color": KIND_COLORS.get(node.kind, "#57606a"),
        }
        if n == lin.root.id:
            attrs["penwidth"] = "2.5"
        lines.append(
            f"  {_dot_quote(n)} [" + ", ".join(f"{k}={_dot_quote(v)}" for k, v in attrs.items()) + "];"
        )
    for e in lin.edges:
        lines.append(f"  {_dot_quote(e.src)} -> {_dot_quote(e.dst)} [label={_dot_quote(e.relation)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def lineage_text(lin: Lineage) -> str:
    def name(n: str) -> str:
        node = lin.nodes[n]
        return f"{node.kind} {node.label}"

    root = lin.root.id
    out = [f"{name(root)}  ({lin.root.detail})" if lin.root.detail else name(root)]
    up = {n.id for n in lin.upstream()}
    down = {n.id for n in lin.downstream()}
    for title, side, keep in (
        ("upstream", up, lambda e: e.src in up and (e.dst in up or e.dst == root)),
        ("downstream", down, lambda e: e.dst in down and (e.src in down or e.src == root)),
    ):
        out.append(f"{title}: {len(side) or 'none'}")
        out.extend(f"  {name(e.src)} --{e.relation}--> {name(e.dst)}" for e in lin.edges if keep(e))
    if lin.truncated:
        out.append("(truncated: more nodes than max_nodes)")
    return "\n".join(out)
