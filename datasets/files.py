"""Files on disk: input checks that explain themselves, and atomic output.

Every reader starts with :func:`check_input_file`, so a missing path, a folder
or an empty file is reported the same way for every format. Every writer goes
through :func:`atomic_output` (or :func:`atomic_folder`): the data is written to
a hidden temporary file beside the target and renamed over it only once
complete, so an error or Ctrl-C never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from inrkit.errors import InputError

_TEMP_PREFIX = ".inrkit-tmp-"


def check_input_file(path, expected: str) -> Path:
    """``path`` as a :class:`Path` if it names a non-empty regular file; ``expected``
    (e.g. ``"a PNG image"``) words the error otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; expected {expected}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected {expected}")
    if not path.is_file():
        raise InputError(f"{path}: is not a regular file; expected {expected}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: is an empty file (0 bytes); expected {expected}")
    return path


def describe_content(path) -> str:
    """A short account of what a file holds, for error messages:
    ``"12 bytes of text starting 'hello world'"`` or ``"1234 bytes starting 00 01 ..."``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        return f"an unreadable file ({err.strerror or err})"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"{size} bytes of text starting {text.strip()[:16]!r}"
    return f"{size} bytes starting {head[:8].hex(' ')}"


def natural_key(path: Path) -> list:
    """Sort key putting ``frame2.png`` before ``frame10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _prepare_target(path: Path) -> Path:
    """Where an atomic write to ``path`` goes: a symlink is followed (the link stays and
    its target is replaced); a folder, a device, FIFO or socket, or a read-only file is
    refused, never replaced."""
    if path.is_symlink():
        path = path.resolve()
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a file name to write to")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: is not a regular file (a device, FIFO or socket); "
                         "inrkit writes only regular files and does not replace it")
    if path.is_file() and not path.stat().st_mode & 0o222:
        raise InputError(f"{path}: is read-only; inrkit does not replace it")
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{path}: cannot write ({parent} is a file, not a folder)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _temporary_beside(path: Path, suffix: str) -> Path:
    """A hidden name beside ``path`` that says whose it is: the target's name and the
    writing process, so a later write can tell a stale one from a live one."""
    return path.with_name(f"{_TEMP_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def _remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed writer (SIGKILL: no cleanup ran) left beside ``path``: its
    temporaries whose process is gone. Those of a live process are left alone."""
    prefix = f"{_TEMP_PREFIX}{path.name}."
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            if not entry.name.startswith(prefix):
                continue
            pid = entry.name[len(prefix):].split(".", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        entry.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _os_errors_as_input_errors(path: Path) -> Iterator[None]:
    """An output the system refuses (no such place, no permission, disk full) is the
    user's to fix: one line naming the path, not a traceback."""
    try:
        yield
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror or err})") from None


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` with the same suffix (libraries pick the
    format from it); on success it replaces ``path``, on any error it is removed.
    OS failures, the writer's included, become InputErrors."""
    path = Path(path)
    with _os_errors_as_input_errors(path):
        path = _prepare_target(path)
        _remove_stale_temporaries(path)
        temp = _temporary_beside(path, path.suffix)
        mode = path.stat().st_mode & 0o7777 if path.is_file() else None
        try:
            yield temp
            if not temp.is_file():
                raise RuntimeError(f"writer produced no file for {path}")
            if mode is not None:
                os.chmod(temp, mode)  # the replaced file's permissions, not the umask's
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    path = Path(path)
    with atomic_output(path) as temp:
        temp.write_bytes(data)
    return path


def atomic_write_text(path, text: str) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def output_folder(path) -> Path:
    """Make the folder ``path`` (and its parents) for a command's outputs; an existing
    file there, or a place the system refuses, is an :class:`InputError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file; expected a folder for the outputs")
    with _os_errors_as_input_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_folder(path, replaceable=lambda p: False) -> Iterator[Path]:
    """Like :func:`atomic_output` for a folder of files. An existing folder is replaced
    only if it is empty or every entry in it satisfies ``replaceable`` (e.g. frames of an
    earlier save), so a user's unrelated files are never deleted."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path}: is a file; expected a folder to write frames into")
        foreign = [p.name for p in path.iterdir() if not replaceable(p)]
        if foreign:
            raise InputError(
                f"{path}: folder already holds other files ({', '.join(sorted(foreign)[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); expected an empty or new folder"
            )
    with _os_errors_as_input_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        temp = _temporary_beside(path, "")
        temp.mkdir()
        old = None
        try:
            yield temp
            if path.exists():
                old = _temporary_beside(path, "-old")
                os.replace(path, old)
            os.replace(temp, path)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
