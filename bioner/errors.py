"""The base of the errors that mean "what you gave is wrong", not "bioner is broken".

Console scripts (:func:`bioner.cli.errors.cli_main`) print such an error as one message and exit
with status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's files, config or input; the message says where and what to do."""


class ConfigError(UserError, ValueError):
    """A config value, or a record file (``bioner.json``, a checkpoint's config), is wrong."""


class FormatError(UserError, ValueError):
    """A file format cannot hold what it is given (a PubTator id with ``|``, a character that XML
    1.0 forbids, overlapping spans in CoNLL), or a file is not in the format it should be in (a
    predictions file). The message names the document or the file and line, and the way out."""
