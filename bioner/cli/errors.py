"""One way for every console script to report a user's mistake: a message, not a traceback.

``@cli_main("bioner-train")`` on a ``main`` (outside ``@hydra.main``, where there is one) prints
a :class:`~bioner.errors.UserError`, a missing file, or a Hydra/OmegaConf config error as
``bioner-train: error: <message>`` and exits with status 2. The message of bioner's own errors
names the file, the line and the fix. ``--debug`` on the command line or ``BIONER_DEBUG=1``
shows the full traceback instead; any other exception is a bug and always keeps it.

A Hydra script is one decorator, :func:`hydra_entry_point`, on its task function ``main(cfg)``: it
composes the config with ``@hydra.main`` and applies :func:`cli_main` around it. It also catches
user errors *inside* the task function, where Hydra would first print "Error executing job with
overrides: [...]" before re-raising, so that a user error is exactly one message.

Given its Hydra ``config``, the wrapper also answers ``--help`` itself
(:func:`bioner.cli.app.command_help`), adds a "did you mean" to Hydra's errors about unknown
keys and options, makes ``run_dir=<folder>`` Hydra's output folder too (so ``.hydra/`` and the
log file join the rest of the run), and quiets the console unless ``--verbose``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import hydra
from hydra.errors import CompactHydraException, InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from bioner.config import CONFIG_DIR
from bioner.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])

DEBUG_FLAG = "--debug"
DEBUG_ENV = "BIONER_DEBUG"
# FileNotFoundError names its file: a missing model, data or input folder the user gave.
USER_ERRORS = (UserError, FileNotFoundError, CompactHydraException, OmegaConfBaseException)


def user_message(err: BaseException) -> str | None:
    """The message to print for ``err``, or ``None`` when it is not a user error (a bug)."""
    # instantiate wraps whatever a constructor raised; a user error inside is the message.
    if isinstance(err, InstantiationException) and isinstance(err.__cause__, USER_ERRORS):
        return user_message(err.__cause__)
    if not isinstance(err, USER_ERRORS):
        return None
    if isinstance(err, MissingMandatoryValue) and getattr(err, "full_key", None):
        return missing_value_message(str(err.full_key))
    message = str(err).strip() or type(err).__name__
    # Where Hydra looked for configs: noise to someone who mistyped an option.
    message = message.split("\nConfig search path:")[0].rstrip()
    if isinstance(err, CompactHydraException) and isinstance(err.__cause__, OmegaConfBaseException):
        message += f"\n{str(err.__cause__).strip()}"  # the key and value it is about
    return message


# What a required key (``???`` in a config) takes, for the message that it is missing.
REQUIRED = {
    "ckpt_path": "ckpt_path=<run folder or .ckpt file>",
    "input": "input=<file, folder or - for standard input>",
    "output": "output=<file, or - for standard output>",
    "tagger.folder": "model=<run folder or exported model folder>",
    "model.name_or_path": "model.name_or_path=<hub id or model folder>",
    "postprocess.dictionary.path": "postprocess.dictionary.path=<surface<TAB>id TSV file>",
}


def missing_value_message(key: str) -> str:
    """``ckpt_path needs a value: give it, as in ckpt_path=<run folder or .ckpt file>``."""
    example = REQUIRED.get(key, f"{key}=...")
    return f"{example.split('=')[0]} needs a value: give it, as in {example}"


# Whether the running console script shows tracebacks (--debug or BIONER_DEBUG=1); set by
# cli_main for the task function that Hydra calls inside it.
_debug = False


def exit_on_user_error(prog: str, config: str | None, err: BaseException) -> None:
    """Print a user error as ``<prog>: error: <message>`` and exit 2; return for a bug, or with
    ``--debug``, so that the caller re-raises it."""
    from bioner.cli import app

    message = user_message(err)
    if _debug or message is None:
        return
    suggestion = app.suggest_for_hydra_error(message, config, sys.argv[1:])
    if suggestion:
        # Hydra's advice to append with `+` would add a key that nothing reads.
        message = re.sub(r"\nTo append to your config use \+\S+", "", message)
        message += f"\n{suggestion.strip()}"
    print(f"{prog}: error: {message}", file=sys.stderr)
    print(f"({DEBUG_FLAG} or {DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
    raise SystemExit(2) from None


def cli_main(
    prog: str,
    config: str | None = None,
    help: bool = True,
    aliases: dict[str, str] | None = None,
) -> Callable[[F], F]:
    """Decorate a console script's ``main`` so that user errors exit 2 with one message.

    Args:
        prog: the script's name, the prefix of the message.
        config: the Hydra config the script composes (``train``), for help and suggestions.
        help: answer ``-h``/``--help`` with :func:`~bioner.cli.app.command_help` (needs
            ``config``); scripts with their own help pass ``False``.
        aliases: shorthand keys the script rewrites itself (``{"model": "tagger.folder"}``),
            shown in the help.
    """

    def decorate(main: F) -> F:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from bioner.cli import app

            debug = DEBUG_FLAG in sys.argv[1:] or os.environ.get(DEBUG_ENV, "") not in ("", "0")
            if DEBUG_FLAG in sys.argv[1:]:
                sys.argv.remove(DEBUG_FLAG)  # Hydra's parser would reject it
            if app.verbose_requested(sys.argv[1:]):
                os.environ[app.VERBOSE_ENV] = "1"  # DDP children run the script again
                while app.VERBOSE_FLAG in sys.argv:
                    sys.argv.remove(app.VERBOSE_FLAG)
            else:
                app.quiet_console()
            if config is not None and help and {"-h", "--help"} & set(sys.argv[1:]):
                doc = sys.modules[main.__module__].__doc__ or ""
                try:
                    print(app.command_help(prog, config, doc, aliases), flush=True)
                except BrokenPipeError:  # `--help | head` closed the pipe: nothing more to say
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise SystemExit(0)
            if config is not None:
                sys.argv[1:] = app.with_run_dir(sys.argv[1:])
            # Hydra prints exceptions itself, with a trimmed traceback, unless this is set; then
            # they reach this wrapper. (Inherited by DDP children, which run the same script.)
            previous = os.environ.get("HYDRA_FULL_ERROR")
            os.environ["HYDRA_FULL_ERROR"] = "1"
            global _debug
            outer_debug, _debug = _debug, debug
            try:
                if config is not None:
                    app.check_run_dir(config, sys.argv[1:])
                return main(*args, **kwargs)
            except Exception as err:
                exit_on_user_error(prog, config, err)
                raise
            except KeyboardInterrupt:
                if debug:
                    raise
                # Ctrl-C outside training (which says how to continue): no traceback, and the
                # status a shell gives a process that SIGINT stopped.
                print(f"{prog}: interrupted (Ctrl-C)", file=sys.stderr)
                raise SystemExit(130) from None
            finally:
                _debug = outer_debug
                if previous is None:
                    os.environ.pop("HYDRA_FULL_ERROR", None)
                else:
                    os.environ["HYDRA_FULL_ERROR"] = previous

        return wrapper  # type: ignore[return-value]

    return decorate


def hydra_entry_point(
    prog: str,
    config: str,
    aliases: dict[str, str] | None = None,
    rewrite_argv: Callable[[list[str]], list[str]] | None = None,
) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """Make a task function ``main(cfg)`` the console script ``prog`` that composes ``config``.

    Hydra composes the config (``@hydra.main``) and calls the task function; :func:`cli_main`
    wraps the whole. A user error raised by the task function is printed and exits 2 right there:
    past it, Hydra would print "Error executing job with overrides: [...]" before our message.
    What the task function returns reaches Hydra's sweepers (the objective of a search).

    Args:
        prog: the script's name.
        config: its config (``train`` for ``conf/train.yaml``).
        aliases: shorthand keys that ``rewrite_argv`` turns into overrides, shown in the help.
        rewrite_argv: rewrites the command line before Hydra parses it (shorthands).
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @functools.wraps(task)  # Hydra names the job and finds the caller from the unwrapped task
        def guarded(cfg: DictConfig) -> Any:
            try:
                return task(cfg)
            except Exception as err:
                exit_on_user_error(prog, config, err)
                raise

        composed = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config)(
            guarded
        )

        @cli_main(prog, config=config, aliases=aliases)
        @functools.wraps(task)
        def main() -> Any:
            if rewrite_argv is not None:
                sys.argv[1:] = rewrite_argv(sys.argv[1:])
            return composed()

        return main

    return decorate
