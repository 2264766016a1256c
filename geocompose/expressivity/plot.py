"""Accuracy against layers, one panel per task, for ``geocompose expressivity --plot``.

Each panel is one pair of one suite (``chain-4``, ``two-body``, ``rotsym-3``, ...): one
line per model with error bars for the population std over seeds (trained: accuracy %;
quick: the accuracy a perfect head could reach at init, 100 where a seed separates,
else 50), and the IGWL / GWL oracle rows as dashed reference lines. Needs matplotlib
(the ``draw`` extra); the Agg backend, so no display is used.

>>> write_plot({"chains": rows}, "chains.png", "quick")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["have_matplotlib", "write_plot"]

ORACLE_STYLE = {
    "IGWL": {"color": "0.6", "linestyle": "-", "linewidth": 6, "alpha": 0.5},
    "GWL": {"color": "0.1", "linestyle": "--", "linewidth": 1.8},
}
"""IGWL wide and pale under GWL dashed, so both show where they coincide."""
DODGE = 0.06
"""Horizontal offset between models (layers), so equal accuracies do not hide each other."""


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (the optional ``draw`` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _panels(rows_by_suite: Mapping[str, Sequence]) -> list[tuple[str, list]]:
    """``(title, rows)`` per (suite, pair), in the order the rows came."""
    panels: dict[tuple[str, str], list] = {}
    for suite, rows in rows_by_suite.items():
        for row in rows:
            panels.setdefault((suite, row.pair), []).append(row)
    return [(f"{suite}: {pair}", rows) for (suite, pair), rows in panels.items()]


def write_plot(rows_by_suite: Mapping[str, Sequence], path: str | Path, how: str) -> None:
    """Write the accuracy-vs-layers figure as PNG.

    Args:
        rows_by_suite: suite name → :class:`~geocompose.expressivity.suites.Row` list
            (model rows and oracle rows, whose ``is_oracle`` is true).
        path: the PNG file.
        how: a subtitle (protocol, seeds).

    Raises:
        OSError: the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(rows_by_suite)
    columns = min(3, len(panels))
    lines = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.4 * lines), squeeze=False)
    for axis, (title, rows) in zip(axes.flat, panels):
        by_model: dict[str, list] = {}
        for row in rows:
            by_model.setdefault(row.blueprint, []).append(row)
        models = [m for m, rs in by_model.items() if not rs[0].is_oracle]
        for model, model_rows in by_model.items():
            model_rows.sort(key=lambda r: r.layers)
            xs = [r.layers for r in model_rows]
            ys = [r.accuracy for r in model_rows]
            if model_rows[0].is_oracle:
                # a step around each column, so a one-column panel still shows the level
                axis.plot(
                    [xs[0] - 0.5, *xs, xs[-1] + 0.5],
                    [ys[0], *ys, ys[-1]],
                    drawstyle="steps-mid",
                    label=f"{model} (oracle)",
                    zorder=1,
                    **ORACLE_STYLE.get(model, {}),
                )
            else:
                shift = (models.index(model) - (len(models) - 1) / 2) * DODGE
                stds = [r.std for r in model_rows]
                axis.errorbar(
                    [x + shift for x in xs],
                    ys,
                    yerr=stds,
                    marker="o",
                    markersize=4,
                    capsize=3,
                    label=model,
                    zorder=2,
                )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("layers")
        axis.set_ylabel("accuracy (%)")
        axis.set_ylim(40, 105)
        depths = sorted({r.layers for r in rows})
        axis.set_xticks(depths)
        if len(depths) == 1:
            axis.set_xlim(depths[0] - 1, depths[0] + 1)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="center right")  # between the 50 and 100 levels
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(how, fontsize=10)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
