"""Robustness scores as flat metric keys, for the loggers and ``bioner-report`` alike.

The scores themselves come from the robustness suite (:mod:`bioner.attacks.robustness`): attacks
in the embedding space, and text perturbations (:func:`bioner.augment.robustness.text_robustness`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def robustness_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """A robustness section (``metrics.json["robustness"]``) as flat metric keys.

    The one naming of robustness scores, used by the loggers (dashboards) and by
    ``bioner-report`` alike: ``robustness/f1_clean``,
    ``robustness/embedding/<attack>/<epsilon>/{f1,drop}`` and
    ``robustness/text/<kind>/{f1,drop,flip_rate}``.
    """
    flat = {"robustness/f1_clean": float(result["f1_clean"])}
    for name, scores in (result.get("embedding") or {}).items():
        for epsilon, f1, drop in zip(scores["epsilons"], scores["f1"], scores["drop"]):
            flat[f"robustness/embedding/{name}/{epsilon:g}/f1"] = float(f1)
            flat[f"robustness/embedding/{name}/{epsilon:g}/drop"] = float(drop)
    for kind, scores in (result.get("text") or {}).items():
        for key in ("f1", "drop", "flip_rate"):
            flat[f"robustness/text/{kind}/{key}"] = float(scores[key])
    return flat
