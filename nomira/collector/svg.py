"""Inline SVG charts: no external assets, every label escaped."""
from __future__ import annotations

from nomira.collector.markup import Markup, esc
from nomira.reports.render import usd as _money




def bar_chart(points: list[tuple[str, float]], title: str, width: int = 720, height: int = 200) -> Markup:
    """Vertical bars (e.g. cost per day)."""
    if not points:
        return Markup(f'<p class="empty">{esc(title)}: no data</p>')
    top = max(v for _, v in points) or 1.0
    pad_l, pad_b, pad_t = 56, 22, 16
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    step = plot_w / len(points)
    bars = []
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top
        x = pad_l + i * step
        bars.append(f'<rect class="bar" x="{x + step * 0.1:.1f}" y="{pad_t + plot_h - h:.1f}" '
                    f'width="{max(step * 0.8, 1):.1f}" height="{h:.1f}"><title>{esc(label)}: '
                    f'{esc(_money(value))}</title></rect>')
    labels = (f'<text x="{pad_l}" y="{height - 6}" class="axis">{esc(points[0][0])}</text>'
              f'<text x="{width - 8}" y="{height - 6}" class="axis" text-anchor="end">{esc(points[-1][0])}</text>'
              f'<text x="{pad_l - 6}" y="{pad_t + 4}" class="axis" text-anchor="end">{esc(_money(top))}</text>'
              f'<text x="{pad_l - 6}" y="{pad_t + plot_h}" class="axis" text-anchor="end">$0</text>')
    return Markup(f'<svg class="chart" role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" '
                  f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>'
                  f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 8}" y2="{pad_t + plot_h}" class="base"/>'
                  + "".join(bars) + labels + "</svg>")


def hbar_chart(rows: list[tuple[str, float, str | None]], title: str, width: int = 520) -> Markup:
    """Horizontal bars (e.g. cost by project); rows are (label, value, link or None)."""
    if not rows:
        return Markup(f'<p class="empty">{esc(title)}: no data</p>')
    top = max(v for _, v, _ in rows) or 1.0
    row_h, label_w = 22, 170
    height = row_h * len(rows) + 4
    out = []
    for i, (label, value, link) in enumerate(rows):
        y = i * row_h + 2
        w = (width - label_w - 90) * value / top
        text = esc(label if len(label) <= 26 else label[:25] + "…")
        if link:
            text = Markup(f'<a href="{esc(link)}">{text}</a>')
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="label">{text}</text>'
                   f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 6}">'
                   f'<title>{esc(label)}: {esc(_money(value))}</title></rect>'
                   f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" class="value">{esc(_money(value))}</text>')
    return Markup(f'<svg class="chart" role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" '
                  f'width="{width}" style="max-width:100%" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}'
                  f'</title>' + "".join(out) + "</svg>")
