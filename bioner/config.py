"""Locating and composing bioner's Hydra configs outside a ``@hydra.main`` entry point."""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from bioner.errors import ConfigError, UserError

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
        ConfigError: an entry is neither null nor a ``_target_`` node.
    """
    out = []
    for name, node in (group or {}).items():
        if node is None:
            continue
        if not isinstance(node, Mapping) or "_target_" not in node:
            raise ConfigError(
                f"{group_name} entry {name!r} is not a `_target_` node: give it a `_target_` or "
                f"set it to null ({group_name}.{name}=null) to switch it off"
            )
        out.append((str(name), node))
    return out


def instantiate_entries(group: Mapping[str, Any] | None, group_name: str) -> list[Any]:
    """The objects of the switched-on entries of ``group`` (see :func:`named_entries`), each
    built by :func:`instantiate_node` under the key ``<group_name>.<entry>``."""
    return [
        instantiate_node(node, f"{group_name}.{name}")
        for name, node in named_entries(group, group_name)
    ]


def instantiate_node(
    node: Any, key: str, refused: tuple[type[Exception], ...] = (ValueError,), **kwargs: Any
) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)`` for the config node at ``key`` (``attack``,
    ``callbacks.early_stopping``), where a constructor's complaint about a value reaches the user
    as a :class:`~bioner.errors.ConfigError` that names the key.

    Constructors check their arguments with ``ValueError`` ("steps must be at least 1, not 0");
    Hydra wraps it as "Error in call to target 'bioner.attacks.adversaries.PGD': ValueError(...)",
    whose ``full_key`` is relative to ``node`` where ``node`` is a plain container. The message
    here is ``attack: steps must be at least 1, not 0`` (``augmentation.transform: ...`` for a
    nested node). A :class:`~bioner.errors.UserError` or ``FileNotFoundError`` inside (a
    ``ConfigError`` naming its key already, a missing model folder) is raised as it is, out of
    Hydra's wrapper; anything else (a bug) keeps the wrapper. So does a ``ValueError`` that no
    ``raise`` statement wrote (``list.index``, ``int("a")``, unpacking): that is a bug whose
    message ("0 is not in list") would mean nothing as a complaint about a value.

    Args:
        refused: the exceptions by which the constructor refuses a value (Lightning's Trainer
            raises ``MisconfigurationException``).
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, UserError | FileNotFoundError):
            raise cause from None
        if not isinstance(cause, refused) or not _raised_on_purpose(cause):
            raise
        found = re.search(r"^full_key: (\S+)$", str(err), flags=re.MULTILINE)
        where = _join_key(node, key, found.group(1) if found else "")
        message = str(cause)
        root = key.split(".")[0]
        if not re.match(rf"{re.escape(root)}\b", message):
            message = f"{where}: {message}"
        elif where != root and message.startswith(f"{root}.") and not message.startswith(where):
            # A constructor names its keys from the root of its own kind ("dataset.filter.x"),
            # which for a node deeper down (a member of dataset=multi) is that node's path.
            message = f"{where}.{message[len(root) + 1 :]}"
        raise ConfigError(message) from cause


def _raised_on_purpose(err: BaseException) -> bool:
    """Whether ``err`` came from a ``raise`` statement (a message written for a reader), not from
    a built-in operation that failed (``[].index(0)``, ``math.sqrt(-1)``, ``a, b = [1]``)."""
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and (frames[-1].line or "").startswith("raise")


def _join_key(node: Any, key: str, full_key: str) -> str:
    """``key`` extended by Hydra's ``full_key`` (absolute for a node attached to the whole
    config, relative to ``node`` for a plain container), as an override writes it."""
    if full_key == key or full_key.startswith(f"{key}."):
        full_key = full_key[len(key) + 1 :]
    path = _override_path(node, full_key) if full_key else ""
    return ".".join(part for part in (key, path) if part)


def _override_path(node: Any, full_key: str) -> str:
    """A relative ``full_key`` of Hydra's as an override writes it: Hydra joins a list index to
    its key (``transforms0`` for ``transforms[0]``), which is ``transforms.0`` on the command
    line."""
    parts = []
    for part in full_key.split("."):
        split = re.fullmatch(r"(.+?)(\d+)", part)
        if isinstance(node, Mapping) and part not in node and split:
            name, index = split.groups()
            items = node.get(name)
            listed = isinstance(items, Sequence) and not isinstance(items, str)
            if listed and int(index) < len(items):
                parts += [name, index]
                node = items[int(index)]
                continue
        parts.append(part)
        node = node.get(part) if isinstance(node, Mapping) else None
    return ".".join(parts)
