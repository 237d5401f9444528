"""Command-line parsing under inrkit's error policy: a bad argument is one line.

argparse prints the whole usage text and exits on a bad argument; every inrkit
command (``encode``/``decode``/``info``/``demo``, ``eval``, ``train``) raises an
:class:`~inrkit.errors.InputError` instead, which the CLI prints as one line
with exit code 2 (``--help`` still prints the usage).
"""

from __future__ import annotations

import argparse

from inrkit.errors import InputError


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
