"""Size limits that keep a bad or huge input from exhausting memory.

Two limits, each set by an argument, else an environment variable, else a default:

- ``max_pixels``: pixels in one image or one video frame
  (``INRKIT_MAX_PIXELS``, default 64 Mpx). Checked from the file's header,
  before any pixel is decoded.
- ``max_bytes``: memory of the decoded float32 signal, ``T×C×H×W×4`` bytes for
  video, ``C×N×4`` for audio (``INRKIT_MAX_BYTES``, default 4 GiB). Checked
  before allocating when the length is known, and again while decoding.

Environment values accept an optional K/M/G suffix (powers of 1024 for bytes,
of 1000 for pixels): ``INRKIT_MAX_PIXELS=100M``, ``INRKIT_MAX_BYTES=16G``.
"""

from __future__ import annotations

import math
import os
import re

from inrkit.errors import InputError

DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_MAX_BYTES = 4 << 30

_NUMBER = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def parse_amount(text: str, *, base: int, what: str) -> int:
    """``"64M"`` → 64·base², ``"2.5G"`` → 2.5·base³, ``"1000"`` → 1000."""
    match = _NUMBER.match(str(text))
    if not match:
        raise InputError(f"{what}: expected a number with an optional K/M/G suffix, found {text!r}")
    value = float(match.group(1)) * base ** " kmg".index((match.group(2) or " ").lower())
    if value < 1:
        raise InputError(f"{what}: expected a positive amount, found {text!r}")
    return int(value)


def _resolve(value, env: str, default: int, base: int) -> int:
    if value is not None:
        if isinstance(value, str):
            return parse_amount(value, base=base, what=env.lower().removeprefix("inrkit_"))
        if not value >= 1:
            raise InputError(f"{env.lower().removeprefix('inrkit_')} must be positive, got {value}")
        return int(value)
    if os.environ.get(env):
        return parse_amount(os.environ[env], base=base, what=f"environment variable {env}")
    return default


def max_pixels(value: int | str | None = None) -> int:
    """The pixel limit for one image or frame: ``value``, else ``$INRKIT_MAX_PIXELS``, else 64 Mpx."""
    return _resolve(value, "INRKIT_MAX_PIXELS", DEFAULT_MAX_PIXELS, 1000)


def max_bytes(value: int | str | None = None) -> int:
    """The memory limit for one decoded signal: ``value``, else ``$INRKIT_MAX_BYTES``, else 4 GiB."""
    return _resolve(value, "INRKIT_MAX_BYTES", DEFAULT_MAX_BYTES, 1024)


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_pixels(path, height: int, width: int, limit: int | str | None = None) -> None:
    """Raise :class:`InputError` if a ``height×width`` picture is over the pixel limit."""
    allowed = max_pixels(limit)
    if height * width > allowed:
        raise InputError(
            f"{path}: image of {width}×{height} = {height * width / 1e6:.1f} Mpx is over the limit of "
            f"{allowed / 1e6:.1f} Mpx; raise it with max_pixels=... or INRKIT_MAX_PIXELS, or pass resize=..."
        )


def check_memory(path, shape: tuple[int, ...], limit: int | str | None = None, *, hint: str = "") -> None:
    """Raise :class:`InputError` if a float32 tensor of ``shape`` would exceed the memory limit."""
    allowed = max_bytes(limit)
    needed = 4 * math.prod(shape)
    if needed > allowed:
        dims = "×".join(str(s) for s in shape)
        raise InputError(
            f"{path}: decoding needs {_human(needed)} ({dims} float32 samples), over the limit of "
            f"{_human(allowed)}; {hint + ', or ' if hint else ''}raise it with max_bytes=... or INRKIT_MAX_BYTES"
        )
