"""Locating and composing bioner's Hydra configs outside a ``@hydra.main`` entry point."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

# Inside the package, so that a wheel carries the configs (package data, see pyproject.toml).
# A user's own config folder joins them through Hydra's search path: `--config-dir my_conf` on
# an entry point, or the override `hydra.searchpath=[file:///abs/my_conf]` anywhere.
CONFIG_DIR = Path(__file__).resolve().parent / "conf"


def compose_config(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``bioner/conf/<config_name>.yaml`` with Hydra ``overrides`` (as on the command
    line); ``hydra.searchpath=[file:///abs/my_conf]`` adds a folder of your own configs."""
    if not CONFIG_DIR.is_dir():
        raise FileNotFoundError(
            f"bioner's config folder {CONFIG_DIR} is missing: this bioner was installed without "
            "its package data; reinstall it (`pip install --force-reinstall bioner`)"
        )
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides or []))


def named_entries(group: Mapping[str, Any] | None, group_name: str) -> list[tuple[str, Any]]:
    """The switched-on entries of a group of named ``_target_`` nodes (``callbacks``,
    ``logger``, ``postprocess``), in order; entries set to null are switched off.

    Raises:
        ValueError: an entry is neither null nor a ``_target_`` node.
    """
    out = []
    for name, node in (group or {}).items():
        if node is None:
            continue
        if not isinstance(node, Mapping) or "_target_" not in node:
            raise ValueError(
                f"{group_name} entry {name!r} is not a `_target_` node: give it a `_target_` or "
                f"set it to null ({group_name}.{name}=null) to switch it off"
            )
        out.append((str(name), node))
    return out
