"""Charts as server-rendered SVG: no JavaScript, no CDN, nothing for the CSP to allow.

Colours and sizes are SVG presentation attributes and CSS classes from ``app.css`` (inline
``style`` attributes would need ``'unsafe-inline'``). Every chart carries a ``<title>`` and
an accessible table of its figures, for screen readers and for people who prefer numbers.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from markupsafe import Markup, escape

from clientela.core.web import i18n

PALETTE = ("#2f6fb0", "#e08a2e", "#3a9e5c", "#c2463f", "#7d5bb5", "#5a8f99", "#b3a13a",
           "#8c6d5a")


def _fmt(value, money: str | None) -> str:
    return i18n.format_money(value, money) if money else i18n.format_number(value)


def _table(rows: Sequence[tuple[str, float]], label: str, money: str | None) -> str:
    body = "".join(f"<tr><th scope='row'>{escape(name)}</th><td>{escape(_fmt(value, money))}</td></tr>"
                   for name, value in rows)
    return (f"<table class='chart-data visually-hidden'><caption>{escape(label)}</caption>"
            f"<tbody>{body}</tbody></table>")


def bar_chart(data: Iterable[tuple[str, float]], *, label: str, money: str | None = None,
              width: int = 480, bar_height: int = 26, colour: str | None = None) -> Markup:
    """Horizontal bars, one per ``(name, value)``, with the value written beside each."""
    rows = [(str(name), float(value or 0)) for name, value in data]
    if not rows:
        return Markup(f"<p class='empty'>{escape(i18n.gettext('Nothing to show yet.'))}</p>")
    top = max((value for _, value in rows), default=0) or 1
    label_w, value_w = 140, 110
    plot_w = width - label_w - value_w
    height = bar_height * len(rows) + 8
    parts = [f"<svg class='chart bar-chart' viewBox='0 0 {width} {height}' role='img' "
             f"aria-label='{escape(label)}' xmlns='http://www.w3.org/2000/svg'>"
             f"<title>{escape(label)}</title>"]
    for index, (name, value) in enumerate(rows):
        y = 4 + index * bar_height
        bar = max(0.0, plot_w * value / top)
        fill = colour or PALETTE[index % len(PALETTE)]
        parts.append(
            f"<text x='{label_w - 8}' y='{y + bar_height * 0.62:.1f}' text-anchor='end' "
            f"class='chart-label'>{escape(name)}</text>"
            f"<rect x='{label_w}' y='{y + 3}' width='{bar:.1f}' height='{bar_height - 8}' "
            f"rx='3' fill='{fill}'><title>{escape(name)}: {escape(_fmt(value, money))}</title></rect>"
            f"<text x='{label_w + bar + 6:.1f}' y='{y + bar_height * 0.62:.1f}' "
            f"class='chart-value'>{escape(_fmt(value, money))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts) + _table(rows, label, money))


def progress_bar(value: float, target: float, *, label: str, money: str | None = None,
                 width: int = 480) -> Markup:
    """A bar of ``value`` against a ``target`` line (forecast against target)."""
    value, target = float(value or 0), float(target or 0)
    top = max(value, target) or 1
    plot_w = width - 20
    bar = plot_w * value / top
    mark = plot_w * target / top
    fill = PALETTE[2] if target and value >= target else PALETTE[0]
    svg = (f"<svg class='chart progress-chart' viewBox='0 0 {width} 56' role='img' "
           f"aria-label='{escape(label)}' xmlns='http://www.w3.org/2000/svg'>"
           f"<title>{escape(label)}</title>"
           f"<rect x='10' y='10' width='{plot_w}' height='22' rx='4' class='chart-track'/>"
           f"<rect x='10' y='10' width='{bar:.1f}' height='22' rx='4' fill='{fill}'/>"
           f"<line x1='{10 + mark:.1f}' x2='{10 + mark:.1f}' y1='4' y2='38' class='chart-target'/>"
           f"<text x='10' y='52' class='chart-value'>{escape(_fmt(value, money))}</text>"
           f"<text x='{width - 10}' y='52' text-anchor='end' class='chart-label'>"
           f"{escape(i18n.gettext('Target'))}: {escape(_fmt(target, money))}</text></svg>")
    rows = [(i18n.gettext("Forecast"), value), (i18n.gettext("Target"), target)]
    return Markup(svg + _table(rows, label, money))


def column_chart(data: Iterable[tuple[str, float]], *, label: str, money: str | None = None,
                 width: int = 480, height: int = 200) -> Markup:
    """Vertical columns over time (months): ``(period, value)`` pairs, oldest first."""
    rows = [(str(name), float(value or 0)) for name, value in data]
    if not rows:
        return Markup(f"<p class='empty'>{escape(i18n.gettext('Nothing to show yet.'))}</p>")
    top = max((value for _, value in rows), default=0) or 1
    plot_h = height - 40
    step = (width - 20) / len(rows)
    parts = [f"<svg class='chart column-chart' viewBox='0 0 {width} {height}' role='img' "
             f"aria-label='{escape(label)}' xmlns='http://www.w3.org/2000/svg'>"
             f"<title>{escape(label)}</title>"]
    for index, (name, value) in enumerate(rows):
        h = plot_h * value / top
        x = 10 + index * step
        parts.append(
            f"<rect x='{x + step * 0.15:.1f}' y='{10 + plot_h - h:.1f}' width='{step * 0.7:.1f}' "
            f"height='{h:.1f}' fill='{PALETTE[0]}'><title>{escape(name)}: "
            f"{escape(_fmt(value, money))}</title></rect>"
            f"<text x='{x + step / 2:.1f}' y='{height - 12}' text-anchor='middle' "
            f"class='chart-label'>{escape(name)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts) + _table(rows, label, money))
