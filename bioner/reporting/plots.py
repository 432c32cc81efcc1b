"""PNG figures of a report: per-type F1, F1 against epsilon, wall time.

Each figure shows the mean over a setting's runs with the sample standard deviation as error
bars (none for a single run). matplotlib is imported here only, with the ``Agg`` backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bioner.reporting.aggregate import Report, Setting


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short_labels(settings: list[Setting]) -> list[str]:
    """Legend labels: only the columns that differ between settings (all of them if none do)."""
    keys = [k for k in settings[0].columns if len({s.columns[k] for s in settings}) > 1]
    if not keys:
        return [s.label for s in settings]
    return [" / ".join(s.columns[k] for k in keys if s.columns[k]) for s in settings]


def _err(stat: Any) -> float:
    return 0.0 if stat is None or stat.std is None else stat.std


def plot_per_type(report: Report, path: Path) -> Path | None:
    """Grouped bars: strict F1 per entity type, one bar per setting; ``None`` without types."""
    types = report.entity_types
    if not types:
        return None
    plt = _pyplot()
    settings, labels = report.settings, _short_labels(report.settings)
    width = 0.8 / len(settings)
    x = np.arange(len(types))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(types) * max(1, len(settings)) ** 0.5), 3.8))
    for i, (setting, label) in enumerate(zip(settings, labels)):
        stats = [setting.per_type.get(t, {}).get("f1") for t in types]
        means = [s.mean if s else np.nan for s in stats]
        ax.bar(
            x + (i - (len(settings) - 1) / 2) * width,
            means,
            width,
            yerr=[_err(s) for s in stats],
            capsize=2,
            label=label,
        )
    ax.set_xticks(
        x, types, rotation=30 if len(types) > 6 else 0, ha="right" if len(types) > 6 else "center"
    )
    ax.set_ylabel(f"strict F1 ({report.split})")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, plt, path)


def plot_epsilon(report: Report, path: Path) -> Path | None:
    """Strict F1 against epsilon, one panel per embedding attack, one line per setting (epsilon
    0 is the clean F1); ``None`` when no run has embedding-space robustness scores."""
    attacks = sorted(
        {k.split("/")[2] for s in report.settings for k in s.robustness if "/embedding/" in k}
    )
    if not attacks:
        return None
    plt = _pyplot()
    labels = _short_labels(report.settings)
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.5 * len(attacks), 3.6), squeeze=False)
    for ax, attack in zip(axes[0], attacks):
        for setting, label in zip(report.settings, labels):
            points = [(0.0, setting.robustness.get("robustness/f1_clean"))]
            prefix = f"robustness/embedding/{attack}/"
            for key, stat in setting.robustness.items():
                if key.startswith(prefix) and key.endswith("/f1"):
                    points.append((float(key[len(prefix) :].split("/")[0]), stat))
            points = sorted((e, s) for e, s in points if s is not None)
            if len(points) < 2:
                continue
            eps = [e for e, _ in points]
            ax.errorbar(
                eps,
                [s.mean for _, s in points],
                yerr=[_err(s) for _, s in points],
                marker="o",
                capsize=2,
                label=label,
            )
        ax.set_title(attack)
        ax.set_xlabel("epsilon")
        ax.set_ylabel(f"strict F1 ({report.split})")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, plt, path)


def plot_wall_time(report: Report, path: Path) -> Path | None:
    """Horizontal bars: wall time per setting in minutes; ``None`` when no run records one."""
    rows = [
        (label, s.wall_time_s)
        for s, label in zip(report.settings, _short_labels(report.settings))
        if s.wall_time_s
    ]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y, [s.mean / 60 for _, s in rows], xerr=[_err(s) / 60 for _, s in rows], capsize=2)
    ax.set_yticks(y, [label for label, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("wall time per run (min)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    # bbox_inches="tight" makes room for the legends placed outside the axes.
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_plots(report: Report, out: Path) -> list[Path]:
    """Every figure that the report has data for, as PNG files in ``out``."""
    figures = [
        plot_per_type(report, out / "per_type_f1.png"),
        plot_epsilon(report, out / "f1_vs_epsilon.png"),
        plot_wall_time(report, out / "wall_time.png"),
    ]
    return [p for p in figures if p is not None]
