"""Server-rendered SVG charts: no JavaScript, no CDN, readable without colour alone."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

#: Series colours live in admin.css (``.sk-s0`` … ``.sk-s3``, one set per colour scheme):
#: marks are drawn in ``currentColor`` so they follow the scheme, and without the stylesheet
#: they fall back to the text colour, still told apart by their dashes.
SERIES_CLASSES = ("sk-s0", "sk-s1", "sk-s2", "sk-s3")
DASHES = ("", "6 3", "2 2", "8 2 2 2")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def axis_label(value: float) -> str:
    """Short tick text: 2,500 / 20k / 1.5M (``:g`` wrote 20000 and 1e+06)."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.4g}"


def total_label(value: float) -> str:
    """A total in full, with thousands separators and at most two decimals."""
    text = f"{value:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _line_summary(labels: Sequence[str], series: dict[str, Sequence[float]]) -> str:
    """What a line chart shows, in words (its ``<desc>``, the accessible description): a
    chart is ``role="img"``, so a screen reader reads none of the marks or their titles."""
    if not labels:
        return "No days to show."
    parts = []
    for name, values in series.items():
        values = list(values)
        top = max(values, default=0)
        peak = f", most {total_label(top)} on {labels[values.index(top)]}" if top > 0 else ""
        parts.append(f"{name}: {total_label(sum(values))} in total{peak}")
    return f"{labels[0]} to {labels[-1]}. " + "; ".join(parts) + "."


def _interval_summary(rows: Sequence[tuple[str, float, float, float]], unit: str) -> str:
    """An interval chart's estimates in words (its ``<desc>``, as ``_line_summary``)."""
    if not rows:
        return "Not enough shoppers in both arms yet."
    return "; ".join(f"{label}: {est:+.3g}{unit} (95% CI {low:+.3g} to {high:+.3g})"
                     for label, est, low, high in rows) + "."


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float]], *,
               width: int = 640, height: int = 220) -> Markup:
    """Several series over the same x labels, with axis, gridlines and a legend."""
    pad_l, pad_r, pad_t, pad_b = 48, 12, 28, 36
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    top = _nice_max(max((max(v) if v else 0) for v in series.values()) if series else 0)
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_t + plot_h - plot_h * (v / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}" class="sk-chart">',
             f"<title>{escape(title)}</title>",
             f"<desc>{escape(_line_summary(labels, series))}</desc>",
             f'<text x="{pad_l}" y="16" class="sk-chart-title">{escape(title)}</text>']
    for k in range(5):
        v = top * k / 4
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'class="sk-grid"/><text x="{pad_l - 6}" y="{y(v) + 4:.1f}" '
                     f'text-anchor="end" class="sk-axis">{axis_label(v)}</text>')
    step = max(1, n // 6)
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{height - pad_b + 16}" text-anchor="middle" '
                     f'class="sk-axis">{escape(str(labels[i]))}</text>')
    for k, (name, values) in enumerate(series.items()):
        tint, dash = SERIES_CLASSES[k % len(SERIES_CLASSES)], DASHES[k % len(DASHES)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="currentColor" stroke-width="2" '
                     f'stroke-dasharray="{dash}" points="{points}" class="sk-series {tint}">'
                     f"<title>{escape(name)}: {total_label(sum(values))} in total</title>"
                     "</polyline>")
        lx = pad_l + 130 * k
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{height - 8}" y2="{height - 8}" '
                     f'stroke="currentColor" stroke-width="2" stroke-dasharray="{dash}" '
                     f'class="sk-key {tint}"/>'
                     f'<text x="{lx + 22}" y="{height - 4}" class="sk-legend">'
                     f"{escape(name)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_chart(title: str, rows: Sequence[tuple[str, float, float, float]], *,
                   unit: str = "", width: int = 640, row_height: int = 34) -> Markup:
    """Estimates with confidence intervals around a zero line (uplift treatment - control)."""
    pad_l, pad_r, pad_t = 170, 20, 30
    height = pad_t + row_height * max(len(rows), 1) + 20
    lo = min([r[2] for r in rows] + [0.0])
    hi = max([r[3] for r in rows] + [0.0])
    span = (hi - lo) or 1.0
    lo, hi = lo - span * 0.1, hi + span * 0.1

    def x(v: float) -> float:
        return pad_l + (width - pad_l - pad_r) * (v - lo) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}" class="sk-chart">',
             f"<title>{escape(title)}</title>",
             f"<desc>{escape(_interval_summary(rows, unit))}</desc>",
             f'<text x="8" y="16" class="sk-chart-title">{escape(title)}</text>',
             f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{pad_t - 6}" y2="{height - 14}" '
             f'class="sk-zero"/>']
    if not rows:
        parts.append(f'<text x="{pad_l}" y="{pad_t + 16}" class="sk-axis">'
                     "not enough shoppers in both arms yet</text>")
    for k, (label, est, low, high) in enumerate(rows):
        cy = pad_t + row_height * k + row_height / 2
        parts.append(
            f'<text x="8" y="{cy + 4:.1f}" class="sk-legend">{escape(label)}</text>'
            f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
            f'stroke="currentColor" stroke-width="2" class="sk-interval {SERIES_CLASSES[0]}"/>'
            f'<circle cx="{x(est):.1f}" cy="{cy:.1f}" r="5" fill="currentColor" '
            f'class="sk-estimate {SERIES_CLASSES[0]}">'
            f"<title>{escape(label)}: {est:+.3g}{unit} (95% CI {low:+.3g} to "
            f"{high:+.3g})</title></circle>"
            f'<text x="{x(high) + 6:.1f}" y="{cy + 4:.1f}" class="sk-axis">'
            f"{est:+.3g}{unit} [{low:+.3g}, {high:+.3g}]</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def progress_bar(label: str, done: int, total: int | None) -> Markup:
    """A native <progress> (accessible, no inline style under a strict CSP); indeterminate
    when the total is unknown."""
    if total:
        return Markup(f'<progress class="sk-progress" aria-label="{escape(label)}" '
                      f'max="{total}" value="{min(done, total)}">{done}/{total}</progress>')
    return Markup(f'<progress class="sk-progress" aria-label="{escape(label)}">'
                  f"{done} so far</progress>")
