"""One way for every console script to report a user's mistake: a message, not a traceback.

``@cli_main("bioner-train")`` on a ``main`` (outside ``@hydra.main``, where there is one) prints
a :class:`~bioner.errors.UserError`, a missing file, or a Hydra/OmegaConf config error as
``bioner-train: error: <message>`` and exits with status 2. The message of bioner's own errors
names the file, the line and the fix. ``--debug`` on the command line or ``BIONER_DEBUG=1``
shows the full traceback instead; any other exception is a bug and always keeps it.

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

from hydra.errors import CompactHydraException, InstantiationException
from omegaconf.errors import OmegaConfBaseException

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
    message = str(err).strip() or type(err).__name__
    # Where Hydra looked for configs: noise to someone who mistyped an option.
    message = message.split("\nConfig search path:")[0].rstrip()
    if isinstance(err, CompactHydraException) and isinstance(err.__cause__, OmegaConfBaseException):
        message += f"\n{str(err.__cause__).strip()}"  # the key and value it is about
    return message


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
            try:
                return main(*args, **kwargs)
            except Exception as err:
                message = user_message(err)
                if debug or message is None:
                    raise
                suggestion = app.suggest_for_hydra_error(message, config, sys.argv[1:])
                if suggestion:
                    # Hydra's advice to append with `+` would add a key that nothing reads.
                    message = re.sub(r"\nTo append to your config use \+\S+", "", message)
                    message += f"\n{suggestion.strip()}"
                print(f"{prog}: error: {message}", file=sys.stderr)
                print(f"({DEBUG_FLAG} or {DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
                raise SystemExit(2) from None
            finally:
                if previous is None:
                    os.environ.pop("HYDRA_FULL_ERROR", None)
                else:
                    os.environ["HYDRA_FULL_ERROR"] = previous

        return wrapper  # type: ignore[return-value]

    return decorate
