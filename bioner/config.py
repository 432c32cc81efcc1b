"""Locating and composing bioner's Hydra configs outside a ``@hydra.main`` entry point."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose_config(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with Hydra ``overrides`` (as on the command line)."""
    if not CONFIG_DIR.is_dir():
        raise FileNotFoundError(
            f"bioner's config folder {CONFIG_DIR} is missing; install bioner from a source "
            "checkout with `pip install -e .` so that conf/ sits next to the package"
        )
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides or []))
