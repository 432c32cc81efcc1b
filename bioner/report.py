"""One results table across runs: ``bioner-report <run or multirun folders ...> [options]``.

Examples::

    bioner-report logs/train/multiruns/2026-11-25_15-59-51 --baseline attack=none
    bioner-report logs/attack_study --baseline attack=none --out reports/attack_study
    bioner-report runs_a runs_b --group-by dataset,model,attack --split devel

Prints the Markdown tables and writes ``results.md``, ``results.csv``, ``per_type.csv``,
``results.tex`` and PNG plots into ``--out``. The logic is in :mod:`bioner.reporting`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bioner.cli.errors import cli_main
from bioner.reporting import build_report, to_markdown, write_outputs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="bioner-report",
        description="Aggregate finished bioner runs into one results table (Markdown, CSV, "
        "LaTeX, PNG): one row per setting, mean +- std and 95% intervals over seeds and folds, "
        "and a paired bootstrap test against a baseline.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="run folders or multirun folders")
    parser.add_argument(
        "--baseline",
        help="selector of the baseline setting, key=value[,key=value]: e.g. attack=none, "
        "'attack=fgm,attack.epsilon=0.3'; every other setting is tested against the baseline "
        "that shares its other columns",
    )
    parser.add_argument(
        "--group-by",
        help="comma-separated families (dataset, model, attack, alignment, augmentation, "
        "precision, folds) or config keys (module.lr, or tags for runs labelled with "
        "tags=[...]); default: every config key that differs between runs except seed, "
        "cv.fold and those that only name or place a run (tags, run_name, paths ...)",
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=["test", "devel", "train"],
        help="the split to report (train: runs that scored it, as bioner-eval "
        "predictions=<file> 'splits=[train]' does)",
    )
    parser.add_argument(
        "--corpus",
        help="for runs of several corpora (dataset=multi), report this member corpus (its key) "
        "only, paired with runs of that corpus alone by document",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder (default for a single path: <path>/report for a folder of runs, "
        "reports/<run> for one run folder)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder holding the corpora, for the paired test's gold spans (default: the runs' "
        "paths.data_dir)",
    )
    parser.add_argument(
        "--pool-datasets",
        action="store_true",
        help="allow runs of different datasets in one row (only with a --group-by without dataset)",
    )
    parser.add_argument(
        "--bootstrap-samples", type=int, default=1000, help="samples of the paired bootstrap"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the paired bootstrap")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.add_argument("--debug", action="store_true", help="full tracebacks of input errors")
    args = parser.parse_args(argv)
    if args.bootstrap_samples < 1:
        parser.error(f"--bootstrap-samples must be positive, not {args.bootstrap_samples}")
    if args.out is None:
        if len(args.paths) != 1:
            parser.error("--out is required with more than one path")
        path = args.paths[0]
        # Never into a run folder itself (it holds one run's files): reports/<run> here instead.
        single_run = (path / "metrics.json").is_file()
        args.out = Path("reports") / path.resolve().name if single_run else path / "report"
    return args


@cli_main("bioner-report")
def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 for input a report cannot use)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A ReportError (input a report cannot use) exits 2 with its message (cli_main).
    report = build_report(
        args.paths,
        split=args.split,
        baseline=args.baseline,
        group_by=args.group_by.split(",") if args.group_by else None,
        pool_datasets=args.pool_datasets,
        data_dir=args.data_dir,
        bootstrap_samples=args.bootstrap_samples,
        seed=args.seed,
        corpus=args.corpus,
    )
    print(to_markdown(report))
    written = write_outputs(report, args.out, plots=not args.no_plots)
    print(f"Wrote {', '.join(sorted(written))} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
