"""Cross-run results tables: settings over seeds and folds, intervals, paired tests, plots.

``bioner-report`` (:mod:`bioner.report`) is the command; notebooks call::

    from bioner.reporting import build_report, to_markdown, write_outputs

    report = build_report(["logs/train/multiruns/<date>"], baseline="attack=none")
    print(to_markdown(report))
    write_outputs(report, "report/")

Nothing here imports torch or Lightning (except to read the training config of a ``bioner-eval``
run from its checkpoint).
"""

from bioner.reporting.aggregate import (
    Report,
    Setting,
    Stat,
    build_report,
    differing_keys,
    grouping_keys,
    t_quantile,
)
from bioner.reporting.render import to_latex, to_markdown, write_outputs
from bioner.reporting.runs import (
    GoldSource,
    ReportError,
    Run,
    archive_run,
    find_runs,
    load_run,
)

__all__ = [
    "GoldSource",
    "Report",
    "ReportError",
    "Run",
    "Setting",
    "Stat",
    "archive_run",
    "build_report",
    "differing_keys",
    "find_runs",
    "grouping_keys",
    "load_run",
    "t_quantile",
    "to_latex",
    "to_markdown",
    "write_outputs",
]
