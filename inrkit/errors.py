"""The three errors a user of inrkit can meet.

The CLI turns each into one line on stderr and a non-zero exit code; anything
else is a bug and keeps its traceback.
"""


class InrkitError(Exception):
    """Base class of every error inrkit raises on purpose."""

    exit_code = 1


class InputError(InrkitError, ValueError):
    """Bad media or bad arguments: the message names the file or option, what was
    expected and what was found."""

    exit_code = 2


class BitstreamError(InrkitError, ValueError):
    """A `.inrk` file that is malformed, truncated, corrupted or of an unknown version."""

    exit_code = 3


class ModelError(InrkitError, RuntimeError):
    """A trained model file is missing, unreadable, or not the one a bitstream was made with."""

    exit_code = 4
