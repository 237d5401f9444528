"""Command-line parsing under inrkit's error policy: a bad argument is one line.

argparse prints the whole usage text and exits on a bad argument; every inrkit
command (``encode``/``decode``/``info``/``demo``, ``eval``, ``train``) raises an
:class:`~inrkit.errors.InputError` instead, which the CLI prints as one line
with exit code 2 (``--help`` still prints the usage).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable

from inrkit.errors import InputError, InrkitError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises InputError instead of printing usage and exiting;
    its subcommand parsers are of the same class."""

    def error(self, message: str):
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def positive(kind):
    """An argparse ``type`` for a positive ``int`` or ``float`` (nan refused)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


MAX_SEED = (1 << 63) - 1
"""The largest seed: ``torch.manual_seed`` takes a signed 64-bit integer."""


def check_seed(seed) -> int:
    """A seed for ``torch.manual_seed``: a whole number in ``0..MAX_SEED``.

    Raises:
        InputError: anything else.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"a seed must be a whole number in 0..{MAX_SEED}, got {seed!r}")
    return seed


def seed_type(text: str) -> int:
    """An argparse ``type`` for ``--seed`` (:func:`check_seed`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_SEED}, got {text}")
    return value


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def run_command(command: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run ``command(argv)`` under the error policy and return the exit code.

    An :class:`~inrkit.errors.InrkitError` becomes one line on stderr and its exit
    code (``--debug`` anywhere in ``argv`` keeps the traceback instead); Ctrl-C exits
    130; a closed stdout pipe (``inrkit info x.inrk | head``) stops quietly with 141.
    SIGTERM exits 143 through the same clean-up as Ctrl-C (temporary files are removed,
    nothing half-written replaces an output). The root CLI and the trainers run under
    ``torchrun`` share it.
    """
    argv = list(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        code = command(argv)
        sys.stdout.flush()  # a closed pipe is reported here, not at interpreter exit
        return code
    except InrkitError as err:
        if debug:
            raise
        # One line, whatever the message carries (a library's multi-line text included).
        print(f"inrkit: error: {' '.join(str(err).split())}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("inrkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Later writes to the closed pipe, e.g. at interpreter exit, go to /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer
