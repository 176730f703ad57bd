"""The network as an SVG picture: units with their values, connections with weights
and gradients — read from a trace, written by hand (no plotting library needed).

Layout: one column per level (the input, then each layer), one circle per unit with
its output value for the first sample; a line per weight, blue for positive and orange
for negative, its width growing with |W|.  On small networks (every layer of at most 4
units) the step's numbers are on the picture, as in Mazur's figure: each unit's input z
above its circle and its δ below, each weight and its gradient in a grid under each gap
and, where a layer has at most 2 units, each weight on its line too.  A legend says what
the colours and widths mean.  Text is at least 12 units high: drawn at its natural size
(up to three layers fit a 1280-px page), no label is under 11 px.  Columns wider than
``max_units`` show the first units, a ⋮ and the last.  Every element has a <title>, so
hovering in a browser names it.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from glassnet.notation import letter, unit_name
from glassnet.trace import Trace

COL_W = 230
ROW_H = 88
R = 26
CELL_W, CELL_H = 74, 32
POS, NEG, GRAD = "#2563eb", "#ea580c", "#9333ea"
#: The smallest text on the picture (SVG units; drawn 1:1 up to three layers at 1280 px).
SMALL = 12
LEGEND_H = 80


def _shown(n: int, limit: int) -> list[int | None]:
    if n <= limit:
        return list(range(n))
    return [*range(limit - 1), None, n - 1]


def draws_grids(trace: Trace) -> bool:
    """Whether the picture has the weight grids (only when every layer is small)."""
    sizes = [trace.x.shape[1]] + [lt.W.shape[1] for lt in trace.layers]
    return all(sizes[lv] <= 4 and sizes[lv + 1] <= 4 for lv in range(len(trace.layers)))


def network_svg(
    trace: Trace, *, fmt: Callable[[float], str] = lambda v: f"{v:.3g}", max_units: int = 6
) -> str:
    """An SVG document (string) of ``trace``'s network and its values."""
    L = len(trace.layers)
    sizes = [trace.x.shape[1]] + [lt.W.shape[1] for lt in trace.layers]
    cols = [_shown(n, max_units) for n in sizes]
    n_rows = max(len(c) for c in cols)
    width = COL_W * L + 2 * 70
    height = n_rows * ROW_H + 70
    labels = draws_grids(trace)
    if labels:
        height += 40 + max(sizes[:-1]) * CELL_H
    # Each weight on its line only where lines are few enough not to cross labels.
    on_lines = labels and max(sizes) <= 2
    # The legend's last line fits beside the units' colours on a picture this wide.
    wide_legend = width >= 780
    height += LEGEND_H - (22 if wide_legend else 0)

    def pos(level: int, k: int) -> tuple[float, float]:
        col = cols[level]
        top = 50 + (n_rows - len(col)) * ROW_H / 2
        return 70 + level * COL_W, top + k * ROW_H + ROW_H / 2

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="network" '
        'font-family="system-ui, sans-serif">',
        "<title>The network, with each unit's output and each weight</title>",
    ]
    # Connections first, so the circles sit on top.
    for level in range(1, L + 1):
        lt = trace.layer(level)
        wmax = float(abs(lt.W).max()) or 1.0
        for a, i in enumerate(cols[level - 1]):
            for c, j in enumerate(cols[level]):
                if i is None or j is None:
                    continue
                w, g = float(lt.W[i, j]), float(lt.dW[i, j])
                (x1, y1), (x2, y2) = pos(level - 1, a), pos(level, c)
                name = f"W_{letter(level - 1)}{i + 1}{letter(level)}{j + 1}"
                out.append(
                    f'<line x1="{x1 + R}" y1="{y1}" x2="{x2 - R}" y2="{y2}" '
                    f'stroke="{POS if w >= 0 else NEG}" stroke-opacity="0.55" '
                    f'stroke-width="{0.8 + 3.5 * abs(w) / wmax:.2f}">'
                    f"<title>{escape(name)} = {fmt(w)}, ∂E/∂{escape(name)} = {fmt(g)}</title>"
                    "</line>"
                )
    # Under each gap between columns: the weights and their gradients as a small grid
    # (labels on the lines themselves would overlap).
    if labels:
        net_bottom = 50 + n_rows * ROW_H
        for level in range(1, L + 1):
            lt = trace.layer(level)
            n_in, n_out = lt.W.shape
            xm = (pos(level - 1, 0)[0] + pos(level, 0)[0]) / 2
            x0 = xm - n_out * CELL_W / 2
            y0 = net_bottom + 40
            wname = f"W_{letter(level - 1)}{letter(level)}"
            out.append(
                f'<text x="{xm}" y="{y0 - 6}" font-size="{SMALL}" text-anchor="middle" '
                f'fill="#0f172a">{escape(wname)} and <tspan fill="#9333ea">∂E/∂W</tspan></text>'
            )
            for i in range(n_in):
                for j in range(n_out):
                    cx, cy = x0 + j * CELL_W, y0 + i * CELL_H
                    w, g = float(lt.W[i, j]), float(lt.dW[i, j])
                    out.append(
                        f'<rect x="{cx}" y="{cy}" width="{CELL_W}" height="{CELL_H}" '
                        f'fill="{"#eff6ff" if w >= 0 else "#fff7ed"}" stroke="#cbd5e1"/>'
                        f'<text x="{cx + CELL_W / 2}" y="{cy + 14}" font-size="{SMALL}" '
                        f'text-anchor="middle" fill="#0f172a">{escape(fmt(w))}</text>'
                        f'<text x="{cx + CELL_W / 2}" y="{cy + 28}" font-size="{SMALL}" '
                        f'text-anchor="middle" fill="{GRAD}">{escape(fmt(g))}</text>'
                    )
    if on_lines:
        for level in range(1, L + 1):
            lt = trace.layer(level)
            for i in range(sizes[level - 1]):
                for j in range(sizes[level]):
                    (x1, y1), (x2, y2) = pos(level - 1, i), pos(level, j)
                    # A third of the way along, where the lines from one unit part.
                    lx, ly = x1 + R + (x2 - x1 - 2 * R) * 0.3, y1 + (y2 - y1) * 0.3
                    w = float(lt.W[i, j])
                    out.append(
                        f'<text x="{lx:.1f}" y="{ly - 4:.1f}" font-size="{SMALL}" '
                        'text-anchor="middle" paint-order="stroke" stroke="#fff" '
                        f'stroke-width="3" fill="{POS if w >= 0 else NEG}">'
                        f"{escape(fmt(w))}</text>"
                    )
    # Units.
    for level, col in enumerate(cols):
        x0, _ = pos(level, 0)
        name = "I" if level == 0 else unit_name(L, level, "out").split("_")[0]
        act = "" if level == 0 else f" ({trace.layer(level).activation})"
        out.append(
            f'<text x="{x0}" y="28" font-size="15" font-weight="600" text-anchor="middle" '
            f'fill="#0f172a">{escape(name)}{escape(act)}</text>'
        )
        for k, u in enumerate(col):
            x, y = pos(level, k)
            if u is None:
                out.append(
                    f'<text x="{x}" y="{y + 6}" font-size="22" text-anchor="middle">⋮</text>'
                )
                continue
            value = float(trace.x[0, u] if level == 0 else trace.layer(level).a[0, u])
            label = "I" if level == 0 else unit_name(L, level, "out")
            fill = "#f1f5f9" if level == 0 else ("#dcfce7" if level == L else "#e0f2fe")
            out.append(
                f'<circle cx="{x}" cy="{y}" r="{R}" fill="{fill}" stroke="#0f172a" '
                f'stroke-width="1.2"><title>{escape(label)}{u + 1} = {fmt(value)}</title>'
                "</circle>"
                f'<text x="{x}" y="{y + 4}" font-size="{SMALL}" text-anchor="middle" '
                f'fill="#0f172a">{escape(fmt(value))}</text>'
            )
            if labels and level > 0:
                # The step's numbers beside the unit: its input z above, its δ below.
                lt = trace.layer(level)
                z, d = float(lt.z[0, u]), float(lt.delta[0, u])
                out.append(
                    f'<text x="{x}" y="{y - R - 5}" font-size="{SMALL}" text-anchor="middle" '
                    f'fill="#334155">z {escape(fmt(z))}</text>'
                    f'<text x="{x}" y="{y + R + 14}" font-size="{SMALL}" text-anchor="middle" '
                    f'fill="{GRAD}">δ {escape(fmt(d))}</text>'
                )
    out += _legend(height - LEGEND_H + (22 if wide_legend else 0) + 8, labels, wide_legend)
    out.append("</svg>")
    return "\n".join(out)


def _legend(top: float, numbers: bool, wide: bool) -> list[str]:
    """What the colours, widths and numbers mean, under the picture: in two rows, three
    where the picture is not ``wide`` enough for the second."""
    x = 20
    y1, y2 = top + 14, top + 36
    out = [
        f'<g class="legend" font-size="{SMALL}" fill="#334155">',
        f'<line x1="{x}" y1="{y1 - 4}" x2="{x + 28}" y2="{y1 - 4}" stroke="{POS}" '
        'stroke-width="3" stroke-opacity="0.55"/>',
        f'<text x="{x + 34}" y="{y1}">weight ≥ 0</text>',
        f'<line x1="{x + 130}" y1="{y1 - 4}" x2="{x + 158}" y2="{y1 - 4}" stroke="{NEG}" '
        'stroke-width="3" stroke-opacity="0.55"/>',
        f'<text x="{x + 164}" y="{y1}">weight &lt; 0; the wider the line, the larger |W|</text>',
    ]
    units = [
        ("#f1f5f9", "input"),
        ("#e0f2fe", "hidden unit"),
        ("#dcfce7", "output unit"),
    ]
    cx = x + 8
    for fill, words in units:
        out.append(
            # A round swatch drawn as a rect: the picture's circles are its units.
            f'<rect x="{cx - 7}" y="{y2 - 11}" width="14" height="14" rx="7" fill="{fill}" '
            'stroke="#0f172a" stroke-width="1"/>'
            f'<text x="{cx + 12}" y="{y2}">{words}</text>'
        )
        cx += 22 + 8 * len(words)
    inside = "in a circle: the unit's output"
    if numbers:
        inside += f'; z its input; <tspan fill="{GRAD}">δ and ∂E/∂W in purple</tspan>'
    if wide:
        out.append(f'<text x="{cx + 10}" y="{y2}">{inside}</text>')
    else:
        out.append(f'<text x="{x}" y="{y2 + 22}">{inside}</text>')
    out.append("</g>")
    return out
