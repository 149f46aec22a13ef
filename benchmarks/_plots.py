"""Horizontal bar charts as plain SVG text, so the docs need no plotting library."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

WIDTH = 900
LABEL_WIDTH = 380
BAR_HEIGHT = 26
GAP = 10
TOP = 40
OURS_COLOUR = "#2b6cb0"
PEER_COLOUR = "#a0aec0"


Bar = tuple[str, float | None, bool, str]


def bar_chart(title: str, bars: list[Bar], unit: str) -> str:
    """An SVG of one bar per ``(label, value, is_ours, why_no_value)``.

    :param title: drawn above the bars.
    :param bars: in the order drawn, top to bottom.
    :param unit: appended to each value.
    """
    values = [value for _, value, _, _ in bars if value is not None]
    largest = max(values) if values else 1.0
    room = WIDTH - LABEL_WIDTH - 120
    height = TOP + len(bars) * (BAR_HEIGHT + GAP) + GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="10" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for index, (label, value, ours, missing) in enumerate(bars):
        y = TOP + index * (BAR_HEIGHT + GAP)
        middle = y + BAR_HEIGHT / 2 + 4
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle}" text-anchor="end">{escape(label)}</text>'
        )
        if value is None:
            parts.append(
                f'<text x="{LABEL_WIDTH}" y="{middle}" fill="#c53030">{escape(missing)}</text>'
            )
            continue
        length = max(1.0, room * value / largest)
        colour = OURS_COLOUR if ours else PEER_COLOUR
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
            f'fill="{colour}"/>'
        )
        value_x = LABEL_WIDTH + length + 6
        parts.append(f'<text x="{value_x:.1f}" y="{middle}">{value:,.1f} {escape(unit)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def plot_names(section: str) -> list[str]:
    """The SVG file names drawn for ``section``."""
    if section in ("stream", "upload"):
        return [f"{section}.svg", f"{section}_memory.svg"]
    return [f"{section}.svg"]


def plots(section: str, meta: tuple[str, str, str, str], results: dict[str, Any]) -> dict[str, str]:
    """The SVG text of each plot of ``section``, by file name."""
    title, ours_key, figure, unit = meta
    rows = results["sections"][section]["rows"]

    def bars(key: str) -> list[Bar]:
        return [
            (
                f"{row['label']} ({row['server']})",
                row.get(key) if row["status"] == "ok" else None,
                row["key"] == ours_key,
                "failed requests under load" if row["status"] == "errors" else "unavailable",
            )
            for row in rows
        ]

    drawn = {f"{section}.svg": bar_chart(title, bars(figure), unit)}
    if section in ("stream", "upload"):
        drawn[f"{section}_memory.svg"] = bar_chart(
            f"{title}: peak RSS of the server process", bars("peak_rss_mib"), "MiB"
        )
    return drawn
