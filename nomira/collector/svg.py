"""Inline SVG charts: no external assets, every label escaped.

Each chart is drawn at two widths (`responsive`) and CSS shows the one that fits, so labels
keep a readable size from a 360 px phone to a 1920 px screen without client-side layout.
"""
from __future__ import annotations

import math
from datetime import date

from nomira.collector.markup import Markup, esc
from nomira.reports.render import tokens as _tokens, usd as _money

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
UNITS = {"usd": ("USD", _money), "tokens": ("tokens", lambda v: _tokens(int(v)))}


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 x 10^k) up to at least `top`."""
    if not top or top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = max(1, math.ceil(top / step - 1e-9))
    return [i * step for i in range(n + 1)]


def tick_label(value: float, unit: str) -> str:
    if unit == "usd":
        if value >= 1000:
            return f"${value / 1000:g}k"
        return f"${value:,.2f}".replace(".00", "") if value >= 1 or value == 0 else f"${value:.2g}"
    return _tokens(int(value)).replace(".0", "")


def x_label(name: str) -> str:
    """2026-11-03 -> Nov 3; 2026-11 -> Nov 2026; anything else as is."""
    name = name.removeprefix("week of ")
    try:
        if len(name) == 10:
            d = date.fromisoformat(name)
            return f"{MONTHS[d.month - 1]} {d.day}"
        if len(name) == 7 and name[4] == "-":
            return f"{MONTHS[int(name[5:]) - 1]} {name[:4]}"
    except (ValueError, IndexError):
        pass
    return name


def _finite(v: float) -> float:
    return v if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else 0.0


def trend_chart(points: list[tuple[str, float, dict]], title: str, unit: str = "usd", x_title: str = "Day (UTC)",
                parts: tuple[str, ...] = (), part_labels: dict | None = None, plan: tuple[float, str] | None = None,
                width: int = 720, height: int = 240) -> Markup:
    """Vertical bars on a time axis: (label, total, {part: value}) per bucket, stacked by `parts`
    when given; `plan` = (value per bucket, label) draws a dashed reference line."""
    if not points:
        return Markup(f'<p class="empty">{esc(title)}: no data</p>')
    name, fmt = UNITS[unit]
    top = max(_finite(v) for _, v, _ in points)
    off_scale = bool(plan) and _finite(plan[0]) > 4 * top  # bars would be invisible under it: say so instead
    if plan and not off_scale:
        top = max(top, _finite(plan[0]))
    ticks = nice_ticks(top)
    top = ticks[-1]
    narrow = width < 500
    pad_l, pad_r, pad_t, pad_b = (50 if narrow else 64), 8, 22, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = plot_w / len(points)
    bar_w = max(1.0, min(step * 0.78, 44.0))
    y = lambda v: pad_t + plot_h - plot_h * _finite(v) / top  # noqa: E731
    out = [f'<text class="axis-title" x="4" y="12">{esc(name)}</text>']
    for t in ticks:
        out.append(f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
                   f'<text class="tick" x="{pad_l - 5}" y="{y(t) + 4:.1f}" text-anchor="end">'
                   f'{esc(tick_label(t, unit))}</text>')
    labels = part_labels or {}
    for i, (label, value, stack) in enumerate(points):
        x = pad_l + i * step + (step - bar_w) / 2
        detail = ""
        if stack:
            detail = " (" + ", ".join(f"{labels.get(p, p)} {fmt(stack[p])}" for p in (*parts, "unsplit")
                                      if stack.get(p)) + ")"
        out.append(f'<g class="bucket"><title>{esc(label)}: {esc(fmt(value))}{esc(detail)}</title>')
        base = pad_t + plot_h
        if stack and parts:
            for p in (*parts, "unsplit"):
                h = plot_h * _finite(stack.get(p, 0.0)) / top
                if h > 0:
                    out.append(f'<rect class="bar s-{esc(p)}" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                               f'height="{h:.1f}"/>')
                    base -= h
        else:
            h = plot_h * _finite(value) / top
            out.append(f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}"/>')
        # an invisible full-height target, so a tiny bar's exact value is still one hover away
        out.append(f'<rect class="hit" x="{pad_l + i * step:.1f}" y="{pad_t}" width="{step:.1f}" '
                   f'height="{plot_h}"/></g>')
    every = max(1, math.ceil(len(points) / (4 if narrow else 8)))
    for i in range(0, len(points), every):
        cx = pad_l + i * step + step / 2
        anchor = "end" if cx + 26 > width else "middle"  # the last label stays inside the chart
        out.append(f'<text class="tick" x="{min(cx, width - 2):.1f}" y="{pad_t + plot_h + 15}" '
                   f'text-anchor="{anchor}">'
                   f'{esc(x_label(points[i][0]))}</text>')
    out.append(f'<line class="base" x1="{pad_l}" x2="{width - pad_r}" y1="{pad_t + plot_h}" '
               f'y2="{pad_t + plot_h}"/><text class="axis-title" x="{pad_l + plot_w / 2:.1f}" y="{height - 4}" '
               f'text-anchor="middle">{esc(x_title)}</text>')
    if plan and off_scale:
        out.append(f'<g class="plan"><title>{esc(plan[1])}</title><text x="{width - pad_r - 2}" y="{pad_t - 6}" '
                   f'text-anchor="end">▲ {esc(plan[1])} (off scale)</text></g>')
    elif plan and _finite(plan[0]):
        py = y(plan[0])
        out.append(f'<g class="plan"><title>{esc(plan[1])}</title><line x1="{pad_l}" x2="{width - pad_r}" '
                   f'y1="{py:.1f}" y2="{py:.1f}"/><text x="{width - pad_r - 2}" y="{py - 4:.1f}" '
                   f'text-anchor="end">{esc(plan[1])}</text></g>')
    return _svg(title, width, height, "".join(out), "trend")


def hbar_chart(rows: list[tuple[str, float, str | None, str]], title: str, unit: str = "usd",
               width: int = 520) -> Markup:
    """Horizontal bars: (full name, value, link or None, short label) per row."""
    if not rows:
        return Markup(f'<p class="empty">{esc(title)}: no data</p>')
    _, fmt = UNITS[unit]
    top = max(_finite(v) for _, v, _, _ in rows) or 1.0
    narrow = width < 500
    row_h, label_w, value_w = 24, (110 if narrow else 170), (64 if narrow else 84)
    limit = 14 if narrow else 24
    height = row_h * len(rows) + 4
    out = []
    for i, (full, value, link, short) in enumerate(rows):
        y = i * row_h + 2
        w = (width - label_w - value_w) * _finite(value) / top
        text = esc(short if len(short) <= limit else short[:limit - 1] + "…")
        if link:
            text = Markup(f'<a href="{esc(link)}">{text}</a>')
        out.append(f'<g><title>{esc(full)}: {esc(fmt(value))}</title>'
                   f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" class="label">{text}</text>'
                   f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}"/>'
                   f'<text x="{label_w + w + 5:.1f}" y="{y + 16}" class="value">{esc(fmt(value))}</text></g>')
    return _svg(title, width, height, "".join(out), "hbar")


def _svg(title: str, width: int, height: int, body: str, kind: str) -> Markup:
    return Markup(f'<svg class="chart {kind}" role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" '
                  f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>{body}</svg>')


def bar_chart(points: list[tuple[str, float]], title: str, unit: str = "usd", x_title: str = "Day (UTC)") -> Markup:
    """Plain bars per day (no stack), at both widths: for pages that chart one series."""
    return responsive(trend_chart, [(name, value, {}) for name, value in points], title, unit, x_title)


def responsive(draw, *args, wide: int = 720, narrow: int = 360, **kw) -> Markup:
    """The chart at a desktop and a phone width; CSS shows the one that fits."""
    return Markup(f'<div class="chart-box"><div class="w">{draw(*args, width=wide, **kw)}</div>'
                  f'<div class="n">{draw(*args, width=narrow, **kw)}</div></div>')
