"""One way for every console script to report a user's mistake: a message, not a traceback.

``@cli_main("bioner-train")`` on a ``main`` (outside ``@hydra.main``, where there is one) prints
a :class:`~bioner.errors.UserError`, a missing file, or a Hydra/OmegaConf config error as
``bioner-train: error: <message>`` and exits with status 2. The message of bioner's own errors
names the file, the line and the fix. ``--debug`` on the command line or ``BIONER_DEBUG=1``
shows the full traceback instead; any other exception is a bug and always keeps it.
"""

from __future__ import annotations

import functools
import os
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
    if isinstance(err, CompactHydraException) and isinstance(err.__cause__, OmegaConfBaseException):
        message += f"\n{str(err.__cause__).strip()}"  # the key and value it is about
    return message


def cli_main(prog: str) -> Callable[[F], F]:
    """Decorate a console script's ``main`` so that user errors exit 2 with one message.

    Args:
        prog: the script's name, the prefix of the message.
    """

    def decorate(main: F) -> F:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            debug = DEBUG_FLAG in sys.argv[1:] or os.environ.get(DEBUG_ENV, "") not in ("", "0")
            if DEBUG_FLAG in sys.argv[1:]:
                sys.argv.remove(DEBUG_FLAG)  # Hydra's parser would reject it
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
