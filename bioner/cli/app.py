"""What every Hydra console script shares around its config: help, override checks, a quiet console.

* :func:`command_help`: ``--help`` as a description, examples (from the entry point's docstring),
  the config groups that script composes with their options, and its own settings: not Hydra's
  dump of the whole config.
* :func:`check_config`: before any weights load, every ``_target_`` node's keys must be
  parameters of what it builds and plain numbers must be numbers (``module.lr=abc``), and a
  ``+key`` override must be something that is read; each mistake names the key, with a "did you
  mean" from the config's own keys.
* :func:`did_you_mean`: the same suggestion for Hydra's own "Could not override" errors.
* :func:`quiet_console`: third-party tips and warnings that are not the user's concern are
  silenced unless ``--verbose`` (or ``BIONER_VERBOSE=1``).
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import os
import re
import textwrap
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bioner.config import CONFIG_DIR, compose_config
from bioner.errors import ConfigError

VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "BIONER_VERBOSE"
# Hydra's instantiate keys.
_NOT_PARAMETERS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}
# Groups of named `_target_` entries: `+callbacks.mine={_target_: ...}` adds one.
_NAMED_GROUPS = ("callbacks", "logger", "postprocess")
_NUMBERS = (int, float)


# ------------------------------------------------------------------------------------------- help


def _docstring_parts(doc: str) -> tuple[str, list[str]]:
    """The first paragraph of a module docstring, and the lines of its ``Examples::`` block."""
    # Sphinx roles (:func:`x`) read as plain `x` on a terminal.
    text = re.sub(r":\w+:`", "`", inspect.cleandoc(doc or "").replace("``", "`"))
    prose = [p for p in text.split("\n\n") if p.strip() and not p.startswith((" ", "\t"))]
    paragraphs = [
        textwrap.fill(" ".join(p.replace("Examples::", "").split()), 96, break_on_hyphens=False)
        for p in prose
    ]
    description = "\n\n".join(p for p in paragraphs if p)
    examples: list[str] = []
    match = re.search(r"Examples?::\n\n((?:[ \t]+.*\n?|\n)+)", text + "\n")
    if match:
        block = inspect.cleandoc(match.group(1)).replace("\\\\\n", "\\\n")
        examples = [line for line in block.splitlines() if line.strip()]
    return description, examples


def _options(group: str) -> list[str]:
    folder = CONFIG_DIR / group
    # `_base.yaml` and the like hold what a group's options share; they are not options.
    stems = (p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))
    return sorted(stems) if folder.is_dir() else []


def command_help(
    prog: str, config_name: str, doc: str, aliases: Mapping[str, str] | None = None
) -> str:
    """The ``--help`` text of a Hydra console script.

    Args:
        prog: the script's name.
        config_name: its config (``train`` for ``conf/train.yaml``).
        doc: its module docstring: the first paragraph is the description, the indented block
            after ``Examples::`` the examples.
        aliases: shorthand keys the script accepts, ``{"model": "tagger.folder"}``; shown in
            place of the key they stand for.
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, return_hydra_config=True)
    choices = {
        k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra") and k
    }
    description, examples = _docstring_parts(doc)
    lines = [f"usage: {prog} [group=option ...] [key=value ...] [--verbose] [--debug]", ""]
    lines += [description, ""]
    if examples:
        lines += ["examples:", *(f"  {e}" for e in examples), ""]
    if choices:
        lines.append("config groups (group=option; * marks the default):")
        width = max(len(g) for g in choices)
        for group in sorted(choices):
            options = [f"*{o}" if o == choices[group] else o for o in _options(group)]
            if choices[group] is None:
                options.append("*(none)")
            pad = " " * (width + 4)
            text = textwrap.fill(", ".join(options), 96, initial_indent=pad, subsequent_indent=pad)
            lines.append(f"  {group:<{width}}  {text.lstrip()}")
        lines.append("")
    settings = [f"{key}={value}" for key, value in _plain_items(cfg) if key not in choices]
    for key, alias in (aliases or {}).items():
        parent, _, last = alias.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        value = "???" if OmegaConf.is_missing(node, last) else _show(node[last])
        settings.append(f"{key}={value}  (shorthand of {alias}=)")
    if settings:
        lines.append("settings (key=value):")
        lines += [f"  {s}" for s in settings]
        lines.append("")
    nodes = [
        f"{key} ({', '.join(str(k) for k in cfg[key] if k != '_target_')})"
        for key in cfg
        if key not in choices and key != "hydra" and OmegaConf.is_dict(cfg._get_node(key))
    ]
    if nodes:
        lines.append("keys of nodes (node.key=value; also group.key=value for a group's option):")
        lines += textwrap.wrap("; ".join(nodes), 94, initial_indent="  ", subsequent_indent="  ")
        lines.append("")
    lines += [
        "More: `--cfg job` prints the whole composed config (`--resolve` resolved);",
        f"`{VERBOSE_FLAG}` keeps third-party tips and warnings; `--debug` shows tracebacks;",
        "`--hydra-help` lists Hydra's own options.",
    ]
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def _plain_items(cfg: DictConfig) -> Iterable[tuple[str, str]]:
    """Top-level keys whose value is a scalar or list (not a node), unresolved."""
    for key in cfg:
        node = cfg._get_node(key)
        if node is None or OmegaConf.is_dict(node):
            continue
        value = node._value()
        if OmegaConf.is_list(node):
            value = OmegaConf.to_container(node, resolve=False)
            value = "[" + ",".join(str(v) for v in value) + "]"
        yield str(key), _show(value)


# --------------------------------------------------------------------------- checks of overrides


def config_keys(cfg: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key of ``cfg`` (nodes and leaves), Hydra's own ``hydra`` node left out."""
    out = []
    for key, value in cfg.items():
        if not prefix and key == "hydra":
            continue
        dotted = f"{prefix}{key}"
        out.append(dotted)
        if isinstance(value, Mapping):
            out += config_keys(value, f"{dotted}.")
    return out


# Names that people coming from Hugging Face's TrainingArguments and run_ner.py type, and
# bioner's overrides for them: the first whose key the running script's config has is suggested.
OTHER_NAMES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("module.lr",),
    "epochs": ("trainer.max_epochs",),
    "num_train_epochs": ("trainer.max_epochs",),
    "per_device_train_batch_size": ("data.batch_size", "tagger.batch_size"),
    "per_device_eval_batch_size": ("data.eval_batch_size", "tagger.batch_size"),
    "gradient_accumulation_steps": ("trainer.accumulate_grad_batches",),
    "max_grad_norm": ("trainer.gradient_clip_val",),
    "logging_steps": ("trainer.log_every_n_steps",),
    "output_dir": ("run_dir", "output"),
    "overwrite_output_dir": ("overwrite",),
    "model_name_or_path": ("model.name_or_path",),
    "max_seq_length": ("alignment.max_length",),
    "resume_from_checkpoint": ("ckpt_path",),
    "checkpoint": ("ckpt_path",),
    "do_train": ("train",),
    "do_eval": ("test",),
    "do_predict": ("test",),
    "fp16": ("trainer.precision=16-mixed",),
    "bf16": ("trainer.precision=bf16-mixed", "tagger.precision=bf16"),
    "label_all_tokens": ("alignment.label_strategy=all",),
    "dataset_name": ("dataset=<name>",),
    "report_to": ("logger=<name>",),
}


def did_you_mean(key: str, candidates: Iterable[str]) -> str:
    """`` Did you mean X?`` for the closest of ``candidates`` to ``key``, or ``""``."""
    everything = [c for c in dict.fromkeys(candidates) if c != key]
    for other in OTHER_NAMES.get(key, ()):
        if other.split("=")[0] in everything:
            return f" Did you mean {other}? (bioner's name for {key})"
    # Keys as deep as `key` (module.lrr -> module.lr, not module), never `key` itself.
    depth = key.count(".")
    candidates = [c for c in everything if c.count(".") == depth]
    # A cut-off name (dataset=bc5) first, then spelling slips (atack).
    close = [c for c in candidates if c.startswith(key)][:2]
    close = close or difflib.get_close_matches(key, candidates, n=2, cutoff=0.7)
    if not close and "." in key:
        # The last part alone (module.lrr -> module.lr among keys with the same parent).
        parent, last = key.rsplit(".", 1)
        siblings = [c.rsplit(".", 1)[1] for c in candidates if c.startswith(f"{parent}.")]
        close = [f"{parent}.{m}" for m in difflib.get_close_matches(last, siblings, n=2)]
    if not close and "." not in key:
        # A key of that name one group down (lr -> module.lr, batch_size -> data.batch_size).
        close = [c for c in everything if c.count(".") == 1 and c.endswith(f".{key}")][:2]
    if not close:
        return ""
    return " Did you mean " + " or ".join(close) + "?"


def _groups() -> list[str]:
    return sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name != "hydra")


def _target(node: Mapping[str, Any]) -> Any:
    from hydra._internal.utils import _locate

    return _locate(str(node["_target_"]))


def _numeric_hint(fn: Any, name: str) -> tuple[str, bool] | None:
    """``("a number", takes_none)``/``("an integer", takes_none)`` when parameter ``name`` of
    ``fn`` takes only numbers (and ``None`` where ``takes_none``); else ``None`` (the value is
    not checked)."""
    init = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hint = typing.get_type_hints(init).get(name)
    except Exception:
        # A name imported only for type checking: read the annotation's text ("float | None").
        try:
            annotation = inspect.signature(init).parameters[name].annotation
        except (KeyError, TypeError, ValueError):
            return None
        if not isinstance(annotation, str):
            return None
        words = {w.strip() for w in annotation.replace("Optional[", "").strip("]").split("|")}
        names = tuple(sorted(words - {"None"}))
        if not names or not set(names) <= {"int", "float"}:
            return None
        return ("an integer" if names == ("int",) else "a number"), "None" in words
    if hint is None:
        return None
    members = typing.get_args(hint) if _is_union(hint) else (hint,)
    numbers = tuple(m for m in members if m is not type(None))
    if not numbers or not all(m in _NUMBERS for m in numbers):
        return None
    return ("an integer" if numbers == (int,) else "a number"), len(numbers) < len(members)


def _numeric_mismatch(value: Any, need: str, takes_none: bool) -> bool:
    """Whether ``value`` is not what :func:`_numeric_hint` asks for (``true`` is no number)."""
    if value is None:
        return not takes_none
    kinds = (int,) if need == "an integer" else _NUMBERS
    return isinstance(value, bool) or not isinstance(value, kinds)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _check_node(node: Mapping[str, Any], where: str) -> None:
    """Raise :class:`ConfigError` for a key of ``node`` that its ``_target_`` does not take or a
    non-number where it takes only numbers."""
    try:
        fn = _target(node)
    except Exception as err:
        target = node["_target_"]
        raise ConfigError(f"{where}._target_={target!r} cannot be imported ({err})") from err
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in node.items():
        if key in _NOT_PARAMETERS:
            continue
        if key not in params:
            if open_ended:
                continue
            names = [f"{where}.{p}" for p in params if p not in ("self", "args", "kwargs")]
            raise ConfigError(
                f"{where}.{key}: {node['_target_']} has no parameter {key!r}."
                f"{did_you_mean(f'{where}.{key}', names)}"
            )
        hint = _numeric_hint(fn, key)
        if hint and _numeric_mismatch(value, *hint):
            need, takes_none = hint
            # As an override writes it: null, true, 2.5, 'ten'.
            shown = json.dumps(value) if value is None or isinstance(value, bool) else repr(value)
            raise ConfigError(f"{where}.{key}={shown} must be {need}{' or null' * takes_none}")
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, Mapping) and "_target_" in item:
                _check_node(item, f"{where}.{key}" + (f".{i}" if isinstance(value, list) else ""))


def _walk(node: Any, where: str) -> None:
    if isinstance(node, Mapping):
        if "_target_" in node:
            _check_node(node, where)
            return
        for key, value in node.items():
            _walk(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{where}[{i}]")


def _task_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def check_config(
    cfg: DictConfig, resolved: Mapping[str, Any] | None = None, overrides: list[str] | None = None
) -> None:
    """Check a composed config before anything is built from it.

    Args:
        cfg: the composed config.
        resolved: ``cfg`` resolved to containers, if already at hand.
        overrides: the command-line overrides (default: those of the running Hydra app).

    Raises:
        ConfigError: a ``_target_`` node has a key its target does not take, or a non-number
            for a number; or a ``+key`` override that nothing reads.
    """
    if resolved is None:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    top = {k: v for k, v in resolved.items() if k != "hydra"}
    for override in _task_overrides() if overrides is None else overrides:
        _check_added(override, cfg, top)
    _walk(top, "")


def _check_added(override: str, cfg: DictConfig, top: Mapping[str, Any]) -> None:
    """A ``+key=value`` must add an option of a group, a key under a ``_target_`` node or a named
    group (checked against the target), or a key some interpolation reads."""
    if not override.startswith("+") or override.startswith("++") or "=" not in override:
        return
    key = override[1:].split("=", 1)[0].strip()
    if key.startswith("hydra") or (CONFIG_DIR / key.split("@")[0]).is_dir():
        return
    parts = key.split(".")
    if parts[0] in _NAMED_GROUPS and len(parts) > 1:
        return
    node: Any = top
    for part in parts[:-1]:
        if not isinstance(node, Mapping) or part not in node:
            break
        node = node[part]
        if isinstance(node, Mapping) and "_target_" in node:
            return  # its target's parameters are checked with the rest
    if re.search(r"\$\{[^}]*\b" + re.escape(key) + r"\b", OmegaConf.to_yaml(cfg)):
        return
    suggestion = did_you_mean(key, [*config_keys(top), *_groups()])
    raise ConfigError(
        f"+{key}: nothing reads this key, so the override would change nothing.{suggestion}"
        " (--help lists the groups and keys)"
    )


def suggest_for_hydra_error(message: str, config_name: str | None, argv: list[str]) -> str:
    """A "did you mean" for Hydra's "Could not override 'KEY'" or "Could not find 'GROUP/X'"
    error, from the keys of the config composed with the other overrides; ``""`` if none."""
    if config_name is None:
        return ""
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", message)
    if missing:
        group, option = missing.groups()
        return did_you_mean(option, _options(group))
    match = re.search(r"Could not override '([^']+)'", message)
    if not match:
        return ""
    key = match.group(1)
    others = [a for a in argv if "=" in a and not a.lstrip("+~").startswith(f"{key}=")]
    for overrides in (others, []):
        try:
            cfg = compose_config(config_name, overrides)
        except Exception:  # another override is broken too; try the plain config
            continue
        plain = OmegaConf.to_container(cfg, resolve=False)
        given = next((a for a in argv if a.lstrip("+~").startswith(f"{key}=")), key).lstrip("+~")
        hint = _unlisted_parameter(cfg, key, given) or _keyword_entry(cfg, key, given)
        hint = hint or _options_with_key(config_name, key, overrides, given)
        return hint or did_you_mean(key, [*config_keys(plain), *_groups()])
    return ""


def _unlisted_parameter(cfg: DictConfig, key: str, given: str) -> str:
    """For ``trainer.max_time=...``: a parameter of the node's ``_target_`` that its config does
    not list, which ``+`` adds (`` trainer.max_time is a parameter of ...; add it: +...``)."""
    if "." not in key:
        return ""
    parent, name = key.rsplit(".", 1)
    node = OmegaConf.select(cfg, parent, default=None)
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return ""
    try:
        params = inspect.signature(_target(node)).parameters
    except Exception:  # not importable, or no signature: say nothing rather than guess
        return ""
    if name not in params or name in _NOT_PARAMETERS or name in node:
        return ""  # listed: this is not the user's config (another override broke it too)
    return (
        f" {key} is a parameter of {node._target_} that the config does not list; add it: +{given}"
    )


def _keyword_entry(cfg: DictConfig, key: str, given: str) -> str:
    """For ``model.tokenizer_kwargs.add_prefix_space=false``: a ``*_kwargs`` node passes any
    keyword argument on, and ``+`` adds one it does not list."""
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(cfg, parent, default=None) if parent else None
    if not parent.endswith("_kwargs") or not (node is None or isinstance(node, DictConfig)):
        return ""
    return f" {parent} passes on any keyword argument; add one it does not list: +{given}"


def _has_key(cfg: DictConfig, key: str) -> bool:
    """Whether ``cfg`` lists ``key``, with a value or as required (``???``)."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    # Not `name in node`: that is False for a ??? value.
    return isinstance(node, DictConfig) and name in node.keys()  # noqa: SIM118


def _options_with_key(config_name: str, key: str, overrides: list[str], given: str) -> str:
    """For ``attack.epsilon=0.1`` under ``attack=none``: the options of the group whose config
    has the key (`` attack.epsilon is a key of attack=fgm,fgsm,...: choose one too, ...``), or
    ``""``."""
    group = key.split(".")[0]
    if group not in _groups() or "." not in key:
        return ""
    having = []
    for option in _options(group):
        try:
            cfg = compose_config(config_name, [*overrides, f"{group}={option}"])
        except Exception:  # an option that needs more than itself (or clashes with overrides)
            continue
        if _has_key(cfg, key):
            having.append(option)
    if not having:
        return ""
    choice = having[0] if len(having) == 1 else "<option>"
    return (
        f" {key} is a key of {group}={','.join(having)}, not of the {group} chosen: choose one "
        f"too, as in {group}={choice} {given}"
    )


# ------------------------------------------------------------------------------- the run folder


def with_run_dir(argv: list[str]) -> list[str]:
    """``argv`` with ``hydra.run.dir=<folder>`` added after ``run_dir=<folder>``, so that Hydra
    writes ``.hydra/`` and its log file into the one run folder (not ``logs/<task>/runs/...``).

    A multirun (``-m``) keeps Hydra's sweep folders; an explicit ``hydra.run.dir`` wins.
    """
    given = [a for a in argv if a.startswith("run_dir=")]
    if not given or "-m" in argv or "--multirun" in argv:
        return argv
    if any(a.startswith("hydra.run.dir=") for a in argv):
        return argv
    return [*argv, f"hydra.run.dir={given[-1][len('run_dir=') :]}"]


# What a finished (or killed) run leaves in its folder, per script: a new run there would
# overwrite it or, where it writes no such file, leave it beside its own results as if it were
# theirs. bioner-eval's list leaves out the checkpoints and model/ it may be scoring.
_SCORES = (
    "metrics.json",
    "predictions",
    *(
        f"{kind}_{split}.{ext}"
        for split in ("train", "devel", "test")
        for kind, ext in (("confusion", "png"), ("confidence", "png"), ("errors", "tsv"))
    ),
    "robustness_epsilon.png",
    "tensorboard",
    "csv",
)
_TRAINED = (*_SCORES, "checkpoints", "model", "encoder")
EARLIER_RESULTS = {"train": _TRAINED, "pretrain": _TRAINED, "eval": _SCORES}
# The scripts whose ckpt_path continues the run in its folder (bioner-eval's is what it scores).
_RESUMING = ("train", "pretrain")


def guards_run_dir(task: str, ckpt_path: Any) -> bool:
    """Whether a run of ``bioner-<task>`` must find its ``run_dir`` free of an earlier run's
    results: a training run that continues one (``ckpt_path``) need not."""
    resumes = task in _RESUMING and str(ckpt_path) not in ("None", "null", "")
    return task in EARLIER_RESULTS and not resumes


def earlier_results(run_dir: Path, task: str) -> list[Path]:
    """The entries of ``EARLIER_RESULTS[task]`` in ``run_dir`` (files, and folders not empty)."""
    paths = (run_dir / name for name in EARLIER_RESULTS[task])
    return [p for p in paths if p.is_file() or p.is_dir() and next(p.iterdir(), None) is not None]


def earlier_run_error(run_dir: Path, found: list[Path], task: str) -> ConfigError:
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found)
    how = "Continue it with ckpt_path=last, give" if task in _RESUMING else "Give"
    return ConfigError(
        f"run_dir={run_dir} holds an earlier run ({names}), which this run would overwrite. "
        f"{how} another run_dir, or replace those with overwrite=true"
    )


def check_run_dir(config: str, argv: list[str]) -> None:
    """Refuse ``run_dir=<folder>`` on the command line of bioner-train, -pretrain or -eval when
    the folder holds an earlier run, before Hydra writes the new run's ``.hydra/`` over the
    earlier one's. (``prepare_run_dir`` checks again, for runs composed in Python, and removes
    the results with ``overwrite=true``.)

    Raises:
        ConfigError: the folder holds an earlier run, and neither ``overwrite=true`` nor, for a
            training run, ``ckpt_path`` (continue it) is given.
    """
    if os.environ.get("LOCAL_RANK", "0") != "0" or "-m" in argv or "--multirun" in argv:
        return  # DDP children run the script again; a multirun's jobs have folders of their own
    given = {}
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        given[key] = value
    if "run_dir" not in given or not guards_run_dir(config, given.get("ckpt_path")):
        return
    if given.get("overwrite", "").lower() in ("true", "1", "yes"):
        return
    run_dir = Path(given["run_dir"]).expanduser()
    found = earlier_results(run_dir, config) if run_dir.is_dir() else []
    if found:
        raise earlier_run_error(run_dir, found, config)


# ---------------------------------------------------------------------------------- the console


# Messages that speak to Lightning's or a library's developers, not to someone training a tagger.
_QUIET_WARNINGS = (
    r".*is deprecated.*",
    r".*litlogger.*",
    r".*litmodels.*",
    r".*does not have many workers.*",
    r".*`isinstance\(treespec, LeafSpec\)`.*",
    r".*The number of training batches .* is smaller than the logging interval.*",
)
_QUIET_LOGGERS = {
    "lightning.pytorch.utilities.rank_zero": logging.WARNING,  # "💡 Tip", GPU/TPU available
    "lightning.fabric.utilities.rank_zero": logging.WARNING,
    "lightning.pytorch.callbacks.model_summary": logging.WARNING,  # Total FLOPs: 0
    "wandb": logging.WARNING,
    "transformers": logging.ERROR,
    "huggingface_hub": logging.ERROR,
}


def verbose_requested(argv: list[str]) -> bool:
    """Whether ``--verbose`` is among ``argv`` or ``BIONER_VERBOSE`` is set."""
    return VERBOSE_FLAG in argv or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def quiet_console() -> None:
    """Silence third-party tips, deprecation and performance warnings, and progress bars of
    saving; bioner's own messages and real warnings (a checkpoint mismatch) stay."""
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    # Read by the libraries at import or on first use; inherited by DDP children.
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Writing model shards"
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
