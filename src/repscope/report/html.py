"""One self-contained HTML report of a study: question, zoo, figures, statistics, findings.

The file needs nothing but itself: figures are base64 PNG ``<img>`` elements, style and the
table-sorting script are inline, and a Content-Security-Policy forbids every network load.
All text from the caller is HTML-escaped. The file is written atomically.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from repscope._provenance import library_versions
from repscope._validation import InputError
from repscope.io.atomic import atomic_write_bytes
from repscope.report._html_assets import SCRIPT, STYLE
from repscope.report._style import png_bytes
from repscope.report._tables import as_measures, as_models

__all__ = [
    "REPORT_DPI",
    "ReportFigure",
    "generalization_table",
    "measure_summary",
    "weights_table",
    "write_report",
]

#: resolution of the PNG figures embedded in the report, in dots per inch
REPORT_DPI = 110
#: a figure in the report: (title, figure, one-sentence reading)
ReportFigure = tuple[str, Figure, str]
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def measure_summary(measures: pd.DataFrame) -> pd.DataFrame:
    """What was measured: per measure, its rows, models, estimators, K range and ROIs.

    Parameters
    ----------
    measures : pandas.DataFrame
        Tidy ``measures`` table (:mod:`repscope.results`).

    Returns
    -------
    pandas.DataFrame
        Columns ``measure``, ``rows``, ``models``, ``estimators``, ``k_min``, ``k_max``,
        ``rois``; one row per measure, in order of first appearance.
    """
    measures = as_measures(measures)

    def joined(column: pd.Series) -> str:
        return ", ".join(sorted(v for v in column.dropna().unique() if v))

    grouped = measures.groupby("measure", sort=False)
    return pd.DataFrame(
        {
            "rows": grouped.size(),
            "models": grouped["model"].nunique(),
            "estimators": grouped["estimator"].agg(joined),
            "k_min": grouped["k"].min(),
            "k_max": grouped["k"].max(),
            "rois": grouped["roi"].agg(joined),
        }
    ).reset_index()


def _cell(value: Any) -> str:
    """A ``<td>``: numbers carry their exact value in ``data-value`` for sorting."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return '<td data-value=""></td>'
    if isinstance(value, (bool, np.bool_)):
        return f"<td>{escape(str(value))}</td>"
    if isinstance(value, (int, np.integer)):
        return f'<td data-value="{int(value)}">{int(value)}</td>'
    if isinstance(value, (float, np.floating)):
        # JavaScript's Number() reads "Infinity", not Python's "inf"
        exact = repr(float(value)).replace("inf", "Infinity")
        return f'<td data-value="{exact}">{float(value):.4g}</td>'
    return f"<td>{escape(str(value))}</td>"


def _table(frame: pd.DataFrame, table_id: str, caption: str) -> str:
    """A sortable ``<table>``: numeric columns sort by value, text columns alphabetically."""
    heads = []
    for column in frame.columns:
        dtype = frame[column].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        kind = "number" if numeric else "text"
        heads.append(
            f'<th scope="col" tabindex="0" aria-sort="none" data-type="{kind}">'
            f"{escape(str(column))}</th>"
        )
    body = "\n".join(
        "<tr>" + "".join(_cell(v) for v in row) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return (
        f'<table class="sortable" id="{escape(table_id)}">'
        f"<caption>{escape(caption)}</caption>"
        f"<thead><tr>{''.join(heads)}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"
    )


def _figure(index: int, item: ReportFigure, dpi: int) -> str:
    try:
        title, fig, reading = item
    except (TypeError, ValueError):
        raise InputError(
            f"figures[{index}] must be (title, Figure, reading); got {type(item).__name__}."
        ) from None
    if not isinstance(fig, Figure):
        raise InputError(f"figures[{index}] holds a {type(fig).__name__}, not a Figure.")
    data = base64.b64encode(png_bytes(fig, dpi=dpi)).decode("ascii")
    alt = escape(f"{title}: {reading}")
    return (
        f'<figure id="figure-{index + 1}"><img src="data:image/png;base64,{data}" alt="{alt}">'
        f"<figcaption><strong>Figure {index + 1}. {escape(title)}.</strong> "
        f"{escape(reading)}</figcaption></figure>"
    )


def _provenance(provenance: Mapping[str, Any]) -> str:
    """Key–value table; nested values as indented JSON, plus when the report was written."""
    written = {
        "report written (UTC)": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "report libraries": library_versions("numpy", "pandas", "matplotlib"),
    }
    rows = []
    for key, value in {**provenance, **written}.items():
        if isinstance(value, (Mapping, list, tuple)):
            text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
            shown = f"<pre>{escape(text)}</pre>"
        else:
            shown = escape(str(value))
        rows.append(f'<tr><th scope="row">{escape(str(key))}</th><td>{shown}</td></tr>')
    return f'<table class="provenance"><tbody>{"".join(rows)}</tbody></table>'


def _statistics(statistics: Any, correlation_by_k: Any, scaling: Any) -> str:
    """The statistics tables that were given, each sortable; a line for an empty one."""
    parts = []
    for frame, name, caption in (
        (statistics, "statistics", "Correlations across models"),
        (correlation_by_k, "correlation-by-k", "Correlation as a function of K"),
        (scaling, "scaling", "Scaling fits: LID per decade of model or data size"),
    ):
        if frame is None:
            continue
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
        empty = f"<p>{caption}: no rows.</p>"
        parts.append(_table(frame, f"{name}-table", caption) if len(frame) else empty)
    return "\n".join(parts) or "<p>No statistics.</p>"


_BOUND = (
    "<p>The third paper bounds the generalization gap through the Wasserstein convergence of "
    "the embedding distribution: gap ≲ Lip(head) · W1(train, test), with W1 shrinking like "
    "n<sup>−1/d</sup> for an embedding of intrinsic dimension d. Each row measures those "
    "factors on the model's penultimate embedding of the labelled set; the gap is train − test "
    "accuracy (and test − train cross-entropy). The head is the model's own classifier "
    "(<em>own</em>, trained on the train images) or a linear probe fit on them "
    "(<em>probe</em>).</p>"
)


def generalization_table(measures: pd.DataFrame) -> pd.DataFrame:
    """One row per model of a ``[generalization]`` stage: diagnostics, gap and probes.

    Parameters
    ----------
    measures : pandas.DataFrame
        The measures table.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, head, gen_lid, gen_w1, w1_method, gen_lipschitz, gen_lipschitz_w1,
        gen_train_accuracy, gen_test_accuracy, gen_gap_accuracy, gen_gap_loss`` and one
        ``probe_<kind>`` column per probe; empty when the table has no such rows.
    """
    rows = measures[measures["measure"].str.startswith("gen_").fillna(False)]
    probes = measures[measures["measure"] == "probe_accuracy"]
    if rows.empty and probes.empty:
        return pd.DataFrame()
    wide = rows.pivot_table(index="model", columns="measure", values="value", aggfunc="first")
    heads = rows[rows["measure"] == "gen_gap_accuracy"].set_index("model")["estimator"]
    methods = rows[rows["measure"] == "gen_w1"].set_index("model")["estimator"]
    wide = wide.assign(head=heads, w1_method=methods)
    for kind, part in probes.groupby("estimator"):
        wide[f"probe_{kind}"] = part.set_index("model")["value"]
    order = [
        "head", "gen_lid", "gen_w1", "w1_method", "gen_lipschitz", "gen_lipschitz_w1",
        "gen_train_accuracy", "gen_test_accuracy", "gen_gap_accuracy", "gen_gap_loss",
    ]  # fmt: skip
    columns = [c for c in order if c in wide.columns] + [
        c for c in wide.columns if c.startswith("probe_")
    ]
    return wide[columns].reset_index()


def _generalization(measures: pd.DataFrame, statistics: Any) -> list[str]:
    """The report's generalization section, or nothing without ``gen_``/probe rows."""
    table = generalization_table(measures)
    if table.empty:
        return []
    body = _BOUND + _table(table, "generalization-table", "Diagnostics and probes per model")
    if isinstance(statistics, pd.DataFrame) and not statistics.empty:
        gaps = statistics[statistics["y"].str.startswith("gen_gap").fillna(False)]
        if not gaps.empty:
            body += _table(gaps, "generalization-statistics", "Diagnostics vs gap across models")
    return [_section("generalization", "Generalization", body)]


_SPECTRAL = (
    "<p>The fourth paper asks whether pretraining builds a spectral basis that fine-tuning "
    "reuses. Each model was fine-tuned on the task (a new head, all weights trained) and every "
    "weight matrix W = U&Sigma;V<sup>T</sup> compared before and after: the overlap "
    "&Vert;U<sub>r</sub><sup>T</sup>U&prime;<sub>r</sub>&Vert;<sup>2</sup>/r of the top-r "
    "singular subspaces (left and right averaged; 1 = unchanged, r/d for a random subspace), "
    "the share of the update &Delta;W inside the pretrained top-r subspaces, and the relative "
    "change of the top-r singular values. Means over the layers whose both dimensions exceed "
    "r.</p>"
)


def weights_table(measures: pd.DataFrame, rank: int = 16) -> pd.DataFrame:
    """One row per model and task of a ``[weights]`` stage, at rank ``rank``.

    Parameters
    ----------
    measures : pandas.DataFrame
        The measures table.
    rank : int
        The rank r of the summaries shown.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, task, finetune_accuracy, spectral_overlap, spectral_baseline,
        spectral_update_share, spectral_sigma_change, spectral_update_norm``; empty without
        such rows.
    """
    rows = measures[measures["measure"].str.startswith("spectral_").fillna(False)]
    rows = rows[(rows["estimator"] == "all") & ((rows["k"] == rank) | rows["k"].isna())]
    accuracy = measures[measures["measure"] == "finetune_accuracy"]
    rows = pd.concat([rows, accuracy])
    if rows.empty:
        return pd.DataFrame()
    wide = rows.pivot_table(
        index=["model", "target"], columns="measure", values="value", aggfunc="first"
    )
    order = [
        "finetune_accuracy", "spectral_overlap", "spectral_baseline", "spectral_update_share",
        "spectral_sigma_change", "spectral_update_norm",
    ]  # fmt: skip
    wide = wide[[c for c in order if c in wide.columns]]
    return wide.reset_index().rename(columns={"target": "task"})


def _weights(measures: pd.DataFrame, statistics: Any, rank: int) -> list[str]:
    """The report's weight-space section, or nothing without ``spectral_`` rows."""
    table = weights_table(measures, rank)
    if table.empty:
        return []
    caption = f"Stability of the spectral basis per model (r = {rank})"
    body = _SPECTRAL + _table(table, "weights-table", caption)
    if isinstance(statistics, pd.DataFrame) and not statistics.empty:
        mentions = statistics["x"].str.startswith("spectral_") | statistics["y"].str.startswith(
            "spectral_"
        )
        pairs = statistics[mentions.fillna(False)]
        if not pairs.empty:
            body += _table(pairs, "weights-statistics", "Stability across models")
    return [_section("weights", "Weight-space stability", body)]


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{escape(heading)}</h2>\n{body}\n</section>'


def _list(items: Sequence[str], css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f"<ul{attr}>" + "".join(f"<li>{escape(str(i))}</li>" for i in items) + "</ul>"


def _page(title: str, sections: Sequence[str]) -> str:
    """The HTML document: CSP forbidding every load but inline style, script and data: images."""
    contents = " · ".join(
        f'<a href="#{anchor}">{anchor}</a>'
        for anchor in ("question", "zoo", "figures", "statistics", "measures", "findings",
                       "provenance")
    )  # fmt: skip
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{escape(title)}</h1>\n<nav>{contents}</nav>\n"
        + "\n".join(sections)
        + f"\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_report(
    path: str | Path,
    *,
    question: str,
    measures: pd.DataFrame,
    models: pd.DataFrame,
    statistics: pd.DataFrame | None = None,
    correlation_by_k: pd.DataFrame | None = None,
    scaling: pd.DataFrame | None = None,
    figures: Sequence[ReportFigure] = (),
    findings: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    title: str = "repscope study report",
    dpi: int = REPORT_DPI,
    spectral_rank: int = 16,
) -> Path:
    """Write the study's report as one self-contained HTML file.

    Parameters
    ----------
    path : str or path-like
        Output ``.html`` file; its folder is created if missing.
    question : str
        The question the study asks (one paragraph).
    measures, models : pandas.DataFrame
        The run's tidy tables (:mod:`repscope.results`): the zoo is listed in full, the
        measures as a per-measure summary (:func:`measure_summary`).
    statistics, correlation_by_k : pandas.DataFrame, optional
        Tables of :mod:`repscope.stats`, shown as they are (sortable).
    scaling : pandas.DataFrame, optional
        Scaling fits (``repscope.experiment.run.scaling_table``), shown as they are.
    figures : sequence of (str, Figure, str)
        Title, figure and its one-sentence reading, in report order; embedded as PNG.
    findings : sequence of str, optional
        The caller's findings, one list item each.
    provenance : mapping, optional
        Versions, configuration, times…; nested values are shown as JSON.
    notes : sequence of str
        Remarks shown under the figures, e.g. why a figure was left out.
    title : str
        Page title and heading.
    dpi : int
        Resolution of the embedded figures.
    spectral_rank : int
        The rank r of the weight-space stability table.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    measures, models = as_measures(measures), as_models(models)
    figure_html = [_figure(i, item, dpi) for i, item in enumerate(figures)]
    sections = [
        _section("question", "The question", f"<p>{escape(question)}</p>"),
        _section(
            "zoo", f"The zoo ({len(models)} models)", _table(models, "models-table", "Models")
        ),
        _section(
            "figures",
            "Figures",
            "\n".join(figure_html or ["<p>No figures.</p>"])
            + (_list(notes, "notes") if notes else ""),
        ),
        _section("statistics", "Statistics", _statistics(statistics, correlation_by_k, scaling)),
        *_generalization(measures, statistics),
        *_weights(measures, statistics, spectral_rank),
        _section(
            "measures",
            "What was measured",
            _table(measure_summary(measures), "measures-table", "Measures"),
        ),
        _section("findings", "Findings", _list(findings) if findings else "<p>None stated.</p>"),
        _section("provenance", "Provenance", _provenance(provenance or {})),
    ]
    path = Path(path)
    atomic_write_bytes(path, _page(title, sections).encode("utf-8"))
    return path
