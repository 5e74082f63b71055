"""Small inline SVG charts for the model card page (`mlkube.ml.cardpage`).

Each function takes plain numbers and labels and returns one `<svg>` element: no script, no
external reference, sized in pixels so that a browser draws it without layout. Labels are
escaped here (they come from user data: class labels and column names); numbers are formatted
here. Pure string building; matplotlib is deliberately not a dependency.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

MAX_BARS = 25
INK, MUTED, GRID = "#1f2933", "#9aa5b1", "#e4e7eb"
ACCENT, ACCENT_LIGHT, WARM = "#1c7ed6", "#f5f7fa", "#d9480f"


def confusion(labels: Sequence[object], matrix: Sequence[Sequence[float]]) -> str:
    """A heat map of counts, rows = true class, columns = predicted class, shaded by the row's share."""
    n = len(matrix)
    cell = max(18, min(56, 360 // max(n, 1)))
    left, top = 110, 10
    width, height = left + n * cell + 10, top + n * cell + 60
    shapes = []
    for i, row in enumerate(matrix):
        total = sum(float(v) for v in row) or 1.0
        for j, count in enumerate(row):
            share = float(count) / total
            x, y = left + j * cell, top + i * cell
            shapes.append(
                f"<rect x='{x}' y='{y}' width='{cell}' height='{cell}' fill='{_shade(share)}' stroke='#fff'>"
                f"<title>true {_e(labels[i])}, predicted {_e(labels[j])}: {_count(count)} ({share:.1%} of the row)</title></rect>"
            )
            if cell >= 22:
                colour = "#fff" if share > 0.55 else INK
                shapes.append(
                    f"<text x='{x + cell / 2}' y='{y + cell / 2 + 4}' text-anchor='middle' "
                    f"style='fill:{colour}'>{_count(count)}</text>"
                )
    for i, label in enumerate(labels[:n]):
        shapes.append(f"<text x='{left - 6}' y='{top + i * cell + cell / 2 + 4}' text-anchor='end'>{_short(label, 16)}</text>")
        cx, cy = left + i * cell + cell / 2, top + n * cell + 8
        shapes.append(f"<text x='{cx}' y='{cy}' text-anchor='end' transform='rotate(-40 {cx} {cy})'>{_short(label, 12)}</text>")
    return _svg(width, height, shapes)


def calibration(bins: Sequence[dict]) -> str:
    """A reliability diagram: mean predicted probability against the observed share per bin, the
    diagonal being perfect calibration; a point's area grows with the bin's row count."""
    size, margin = 300, 40
    plot = size - 2 * margin
    largest = max(float(b["count"]) for b in bins) or 1.0

    def xy(p: float, q: float) -> tuple[float, float]:
        return margin + plot * p, size - margin - plot * q

    shapes = _frame(margin, size, size, ("0", "0.5", "1"), ("0", "0.5", "1"), "predicted probability", "observed share")
    (x0, y0), (x1, y1) = xy(0, 0), xy(1, 1)
    shapes.append(f"<line x1='{x0}' y1='{y0}' x2='{x1}' y2='{y1}' stroke='{MUTED}' stroke-dasharray='4 3'/>")
    points = [(xy(float(b["meanPredicted"]), float(b["observed"])), b) for b in bins]
    shapes.append(
        f"<polyline points='{' '.join(f'{x:.1f},{y:.1f}' for (x, y), _ in points)}' fill='none' stroke='{ACCENT}' stroke-width='1.5'/>"
    )
    for (x, y), b in points:
        radius = 2.5 + 6 * math.sqrt(float(b["count"]) / largest)
        shapes.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{radius:.1f}' fill='{ACCENT}' fill-opacity='0.75'><title>"
            f"{_count(b['count'])} rows: predicted {float(b['meanPredicted']):.3f}, observed {float(b['observed']):.3f}</title></circle>"
        )
    return _svg(size, size, shapes)


def predicted_vs_actual(points: Sequence[Sequence[float]]) -> str:
    """A scatter of (actual, predicted) with the diagonal where they are equal."""
    size, margin = 300, 44
    plot = size - 2 * margin
    values = [float(v) for point in points for v in point[:2]]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0

    def xy(actual: float, predicted: float) -> tuple[float, float]:
        return margin + plot * (actual - lo) / span, size - margin - plot * (predicted - lo) / span

    ticks = (_number(lo), _number((lo + hi) / 2), _number(hi))
    shapes = _frame(margin, size, size, ticks, ticks, "actual", "predicted")
    (x0, y0), (x1, y1) = xy(lo, lo), xy(hi, hi)
    shapes.append(f"<line x1='{x0}' y1='{y0}' x2='{x1}' y2='{y1}' stroke='{MUTED}' stroke-dasharray='4 3'/>")
    for actual, predicted, *_ in points:
        x, y = xy(float(actual), float(predicted))
        shapes.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='{ACCENT}' fill-opacity='0.6'/>")
    return _svg(size, size, shapes)


def histogram(edges: Sequence[float], counts: Sequence[float]) -> str:
    """Counts per bin on `edges` (len(counts) + 1 of them), with a line at zero when it is in range."""
    width, height, margin = 420, 220, 36
    plot_w, plot_h = width - 2 * margin, height - 2 * margin
    lo, hi = float(edges[0]), float(edges[-1])
    span = (hi - lo) or 1.0
    top = max(float(c) for c in counts) or 1.0
    shapes = _frame(margin, width, height, (_number(lo), _number((lo + hi) / 2), _number(hi)), ("0", "", _count(top)), "", "rows")
    for i, count in enumerate(counts):
        left, right = float(edges[i]), float(edges[i + 1])
        x = margin + plot_w * (left - lo) / span
        w = max(plot_w * (right - left) / span - 1, 1)
        h = plot_h * float(count) / top
        shapes.append(
            f"<rect x='{x:.1f}' y='{height - margin - h:.1f}' width='{w:.1f}' height='{h:.1f}' fill='{ACCENT}'>"
            f"<title>[{_number(left)}, {_number(right)}): {_count(count)}</title></rect>"
        )
    if lo < 0 < hi:
        x = margin + plot_w * -lo / span
        shapes.append(
            f"<line x1='{x:.1f}' y1='{margin}' x2='{x:.1f}' y2='{height - margin}' stroke='{WARM}' stroke-dasharray='4 3'/>"
        )
    return _svg(width, height, shapes)


def bars(items: Sequence[tuple[object, float]]) -> str:
    """Horizontal bars of shares (0-1), in the order given, with the share printed after each bar."""
    row, left, bar_w = 20, 220, 480
    width, height = left + bar_w + 70, row * len(items) + 10
    top = max((share for _, share in items), default=0.0) or 1.0
    shapes = []
    for i, (name, share) in enumerate(items):
        y = 5 + i * row
        w = bar_w * share / top
        shapes += [
            f"<text x='{left - 8}' y='{y + 13}' text-anchor='end'>{_short(name, 32)}<title>{_e(name)}</title></text>",
            f"<rect x='{left}' y='{y + 2}' width='{w:.1f}' height='{row - 6}' fill='{ACCENT}'/>",
            f"<text x='{left + w + 6:.1f}' y='{y + 13}'>{share:.1%}</text>",
        ]
    return _svg(width, height, shapes)


PALETTE = (ACCENT, WARM, "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d")


def lines(
    x_labels: Sequence[object],
    series: Sequence[tuple[object, Sequence[float | None]]],
    *,
    y_label: str = "",
    reference: float | None = None,
) -> str:
    """Values over a sequence of points (versions, checks): one polyline per series in
    ``PALETTE`` order, a point per value with its label and value as a tooltip, a legend below;
    a None value leaves a gap; ``reference`` draws a dashed level (a threshold). Every series has
    ``len(x_labels)`` values."""
    width, margin, row = 540, 64, 16
    named = [(name, values) for name, values in series][: len(PALETTE)]
    height = 240 + row * len(named)
    plot_w, bottom = width - 2 * margin, 240 - margin
    present = [float(v) for _, values in named for v in values if v is not None] + ([reference] if reference is not None else [])
    lo, hi = (min(present), max(present)) if present else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    count = max(len(x_labels), 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        x = margin + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)
        return x, bottom - (bottom - margin) * (value - lo) / (hi - lo)

    ends = (str(x_labels[0]), "", str(x_labels[-1])) if x_labels else ("", "", "")
    shapes = _frame(margin, width, 240, ends, (_number(lo), _number((lo + hi) / 2), _number(hi)), "", y_label)
    if reference is not None:
        _, level = xy(0, reference)
        shapes.append(
            f"<line x1='{margin}' y1='{level:.1f}' x2='{width - margin}' y2='{level:.1f}' stroke='{MUTED}' stroke-dasharray='4 3'/>"
        )
    for k, (name, values) in enumerate(named):
        colour = PALETTE[k]
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
                continue
            x, y = xy(i, float(value))
            runs[-1].append((x, y))
            shapes.append(
                f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'>"
                f"<title>{_e(name)} at {_e(x_labels[i])}: {_number(float(value))}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                shapes.append(f"<polyline points='{points}' fill='none' stroke='{colour}' stroke-width='1.5'/>")
        y = 240 + row * k + 4
        shapes += [
            f"<rect x='{margin}' y='{y}' width='10' height='10' fill='{colour}'/>",
            f"<text x='{margin + 16}' y='{y + 9}'>{_short(name, 48)}</text>",
        ]
    return _svg(width, height, shapes)


def _frame(margin: int, width: int, height: int, x_ticks, y_ticks, x_label: str, y_label: str) -> list[str]:
    """Axes with three ticks each (start, middle, end) and axis titles."""
    bottom, right = height - margin, width - margin
    shapes = [
        f"<rect x='{margin}' y='{margin}' width='{right - margin}' height='{bottom - margin}' fill='none' stroke='{GRID}'/>",
        f"<text x='{(margin + right) / 2}' y='{height - 6}' text-anchor='middle'>{_e(x_label)}</text>",
        f"<text x='12' y='{(margin + bottom) / 2}' text-anchor='middle' transform='rotate(-90 12 {(margin + bottom) / 2})'>"
        f"{_e(y_label)}</text>",
    ]
    for k, tick in enumerate(x_ticks):
        shapes.append(f"<text x='{margin + (right - margin) * k / 2}' y='{bottom + 14}' text-anchor='middle'>{_e(tick)}</text>")
    for k, tick in enumerate(y_ticks):
        shapes.append(f"<text x='{margin - 4}' y='{bottom - (bottom - margin) * k / 2 + 4}' text-anchor='end'>{_e(tick)}</text>")
    return shapes


def _svg(width: float, height: float, shapes: list[str]) -> str:
    return f"<svg width='{width:.0f}' height='{height:.0f}' viewBox='0 0 {width:.0f} {height:.0f}' role='img'>{''.join(shapes)}</svg>"


def _shade(share: float) -> str:
    """White-ish at 0, ACCENT at 1."""
    start, end = (int(ACCENT_LIGHT[k : k + 2], 16) for k in (1, 3, 5)), (int(ACCENT[k : k + 2], 16) for k in (1, 3, 5))
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(start, end, strict=True))


def _short(label: object, limit: int) -> str:
    text = str(label)
    return _e(text if len(text) <= limit else text[: limit - 1] + "…")


def _count(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return f"{number:,.0f}" if number == int(number) else f"{number:.3g}"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
