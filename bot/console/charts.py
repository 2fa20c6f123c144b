"""Charts for the statistics page, drawn on the server with matplotlib as SVG (no JavaScript, nothing remote).

The page shows them as `<img src=…svg>`, so the console's strict Content-Security-Policy stays as it is.
Text stays text in the SVG (`svg.fonttype = none`): the viewer's browser draws the Chinese labels.
"""

from __future__ import annotations

import io
import warnings
from typing import Dict

from bot import messages

KIND_ORDER = ("leak", "repair", "help", "feedback")
COLOURS = {"leak": "#1f77b4", "repair": "#ff7f0e", "help": "#2ca02c", "feedback": "#9467bd"}


def weekly_tickets_svg(weekly: Dict[str, Dict[str, int]]) -> bytes:
    """A stacked bar chart of tickets per week and type."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with warnings.catch_warnings(), matplotlib.rc_context({"svg.fonttype": "none", "font.family": ["Noto Sans CJK SC", "Noto Serif CJK SC", "sans-serif"],
                                "svg.hashsalt": "hongguanjia"}):
        # Without a CJK font matplotlib only guesses the labels' widths; the browser draws the text itself.
        warnings.filterwarnings("ignore", message="Glyph .* missing from current font")
        figure = Figure(figsize=(6.4, 3.2), dpi=100)
        axes = figure.add_subplot()
        weeks = list(weekly)
        bottom = [0] * len(weeks)
        for kind in KIND_ORDER:
            counts = [weekly[w].get(kind, 0) for w in weeks]
            if any(counts):
                axes.bar(weeks, counts, bottom=bottom, label=messages.KIND_LABELS[kind], color=COLOURS[kind])
                bottom = [b + c for b, c in zip(bottom, counts)]
        axes.set_ylabel("工单数")
        axes.set_title("每周工单（按类型）")
        if weeks:
            axes.legend(loc="upper left", fontsize="small")
        else:
            axes.text(0.5, 0.5, "这段时间没有工单", ha="center", va="center", transform=axes.transAxes)
        axes.tick_params(axis="x", labelrotation=30)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()
