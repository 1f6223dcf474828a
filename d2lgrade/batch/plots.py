"""Small matplotlib figures as inline SVG (no files, no external assets)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"svg.fonttype": "none", "svg.hashsalt": "d2lgrade", "font.size": 9}


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]          # drop the XML prolog and DOCTYPE for inline use


def score_histogram(scores: list[float], max_score: float, title: str) -> str:
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.6, 2.2))
        bins = min(10, max(1, int(max_score)))
        ax.hist(scores, bins=bins, range=(0, max_score or 1), color="#4878a8", edgecolor="white")
        ax.set_xlabel(f"points (of {max_score:g})")
        ax.set_ylabel("students")
        ax.set_title(title)
        ax.yaxis.get_major_locator().set_params(integer=True)
        return _svg(fig)


def pass_rates(labels: list[str], rates: list[float], title: str) -> str:
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.6, 0.3 * len(labels) + 0.9))
        ax.barh(labels[::-1], [100 * r for r in rates[::-1]], color="#5a9a5a")
        ax.set_xlim(0, 100)
        ax.set_xlabel("passed (%)")
        ax.set_title(title)
        return _svg(fig)
