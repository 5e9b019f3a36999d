"""Figures and the self-contained HTML report of a study, drawn from its tidy tables.

Everything here reads the ``measures`` and ``models`` tables of :mod:`repscope.results` (and
the statistics tables of :mod:`repscope.stats`) and never a run's internals. Needs matplotlib.
"""

from repscope.report.figures import (
    OKABE_ITO,
    PNG_DPI,
    brain_alignment_bars,
    correlation_by_k,
    lid_profiles,
    lid_scaling,
    lid_scatter,
    profile_comparison,
    save_figure,
    scale_invariance_vs_brain,
)
from repscope.report.gallery import study_figures
from repscope.report.html import REPORT_DPI, ReportFigure, measure_summary, write_report

__all__ = [
    "OKABE_ITO",
    "PNG_DPI",
    "REPORT_DPI",
    "ReportFigure",
    "brain_alignment_bars",
    "correlation_by_k",
    "lid_profiles",
    "lid_scaling",
    "lid_scatter",
    "measure_summary",
    "profile_comparison",
    "save_figure",
    "scale_invariance_vs_brain",
    "study_figures",
    "write_report",
]
