"""The generalization diagnostics of a zoo against its generalization gap (METHOD.md §6)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from repscope.report._style import StatsRow, correlation_text, draw_fit, scatter_by_family
from repscope.report._tables import as_measures, as_models, paired, per_model, select

__all__ = ["DIAGNOSTIC_LABELS", "generalization_panels"]

#: Diagnostic measures (x axes) and their axis labels.
DIAGNOSTIC_LABELS = {
    "gen_lid": "LID of the train embedding (dimensions)",
    "gen_w1": "W1(train, test) (embedding units)",
    "gen_lipschitz": "Lipschitz bound of the head",
    "gen_lipschitz_w1": "Lipschitz bound × W1",
}


def generalization_panels(
    measures: pd.DataFrame,
    models: pd.DataFrame,
    *,
    head: str,
    gap: str = "gen_gap_accuracy",
    stats_row: Callable[[str, str], StatsRow | None] | None = None,
) -> Figure:
    """Each diagnostic against the gap, one panel each, one point per model with ``head``.

    Parameters
    ----------
    measures, models : pandas.DataFrame
        The run's tidy tables; ``measures`` holds the ``gen_*`` rows of a
        ``[generalization]`` stage.
    head : {"own", "probe"}
        Models whose diagnostics used this kind of head.
    gap : str
        The y axis: ``gen_gap_accuracy`` (fraction) or ``gen_gap_loss`` (nats).
    stats_row : callable, optional
        ``stats_row(x_quantity, y_quantity)``: the statistics-table row of a pair, whose
        bootstrap CI then goes in the panel title; else r and a Fisher-z CI from the points.

    Returns
    -------
    matplotlib.figure.Figure
        A 2 × 2 grid: LID, W1, the Lipschitz bound and their product against the gap.

    Raises
    ------
    InputError
        Fewer than 3 models with this head have a diagnostic and the gap.
    """
    measures, models = as_measures(measures), as_models(models)
    y_rows = select(measures, gap, estimator=head)
    y = per_model(y_rows, gap)
    fig = Figure(figsize=(10.0, 7.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2).ravel()
    for ax, (name, label) in zip(axes, DIAGNOSTIC_LABELS.items(), strict=True):
        estimator = head if name in ("gen_lipschitz", "gen_lipschitz_w1") else None
        rows = select(measures, name, estimator=estimator)
        frame = paired(per_model(rows, name), y, models)
        scatter_by_family(ax, frame, "x", "y")
        draw_fit(ax, frame["x"].to_numpy(), frame["y"].to_numpy())
        row = stats_row(_quantity(rows, name), f"{gap}@{head}") if stats_row else None
        text = correlation_text(frame["x"].to_numpy(), frame["y"].to_numpy(), row)
        ax.set_xlabel(label)
        ax.set_ylabel(
            "train − test accuracy" if gap == "gen_gap_accuracy" else "test − train loss (nats)"
        )
        ax.set_title(text, fontsize="small")
    fig.suptitle(f"Generalization diagnostics vs gap ({head} head)")
    return fig


def _quantity(rows: pd.DataFrame, name: str) -> str:
    """The statistics-table name of a diagnostic: its estimator and K pinned as the rows have."""
    first = rows.iloc[0]
    text = f"{name}@{first['estimator']}"
    return text + (f"@k={int(first['k'])}" if pd.notna(first["k"]) else "")
