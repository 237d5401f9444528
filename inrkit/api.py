"""The Python API: ``load``, ``fit``, ``encode``, ``decode``, ``save``.

Thin glue over the subpackages, so that a script reads like the CLI::

    import inrkit
    image = inrkit.load("photo.png")
    data = inrkit.encode(image, codec="siren", bpp=0.5)
    inrkit.save(data, "photo.inrk")
    restored = inrkit.decode("photo.inrk")
    inrkit.save(restored, "restored.png")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inrkit.codecs import specs
from inrkit.codecs.base import EncodeOptions, Rate, check_rate_below_raw
from inrkit.codecs.bitstream.container import read_file_bytes, write_file
from inrkit.codecs.specs import codec_from_spec, make_codec
from inrkit.datasets import io as media
from inrkit.datasets.signal import Signal
from inrkit.errors import InputError

__all__ = ["decode", "encode", "fit", "load", "make_codec", "save"]


def _as_path(path: Any, what: str, takes: str = "a path (str or os.PathLike)") -> Path:
    if not isinstance(path, str | os.PathLike):
        raise InputError(f"{what} takes {takes}, got {type(path).__name__}")
    return Path(path)


def load(path: str | os.PathLike, **options: Any) -> Signal:
    """Read an image, video or audio file (or a folder of frames) into a :class:`Signal`."""
    return media.load(_as_path(path, "load()"), **options)


def save(obj: Signal | bytes, path: str | os.PathLike, **options: Any) -> Path:
    """Write a Signal as a media file (format from the extension) or encoded bytes as they are.

    Writes atomically: a failure never leaves a partial file.
    """
    path = _as_path(path, "save()")
    if isinstance(obj, bytes | bytearray):
        write_file(path, bytes(obj))
    elif isinstance(obj, Signal):
        media.save(obj, path, **options)
    else:
        raise InputError(f"save() takes a Signal or bytes, got {type(obj).__name__}")
    return path


def fit(signal: Signal, model: str = "siren", **config: Any):
    """Fit a coordinate field to a signal; see :func:`inrkit.inr.fit.fit`."""
    from inrkit.inr.fit import fit as _fit

    return _fit(signal, model=model, **config)


def encode(
    signal: Signal,
    codec: str = "siren",
    *,
    bpp: float | None = None,
    kbps: float | None = None,
    quality: int | None = None,
    lmbda: float | None = None,
    steps: int | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    **codec_kwargs: Any,
) -> bytes:
    """Compress a signal with a registered codec; returns the complete file's bytes.

    ``codec`` is a codec spec (:mod:`inrkit.codecs.specs`: a name, optionally with
    ``:key=value`` options, which win over ``codec_kwargs``). Exactly one of ``bpp``,
    ``kbps``, ``quality`` and ``lmbda`` may be given; with none, the codec's default
    quality preset is used (codecs without presets, such as ``siren-audio``, need a
    rate).

    Raises:
        InputError: a bad signal, codec, option or rate.
        ModelError: a learned codec without a usable model file.
    """
    if not isinstance(signal, Signal):
        raise InputError(f"encode() takes an inrkit Signal (inrkit.load(path)), got {type(signal).__name__}")
    coder = codec_from_spec(codec, **codec_kwargs)
    if bpp is None and kbps is None and quality is None and lmbda is None:
        if "quality" not in coder.rate_kinds and signal.modality in coder.modalities:
            raise InputError(
                f"codec {codec!r} has no quality presets; give a rate as {' or '.join(coder.rate_kinds)}"
            )
        quality = coder.default_quality()
    rate = Rate(bpp=bpp, kbps=kbps, quality=quality, lmbda=lmbda)
    options = EncodeOptions(
        steps=steps, time_budget=time_budget, seed=seed, device=device, progress=progress
    )
    coder.check(signal, rate)
    check_rate_below_raw(signal, rate)
    return coder.encode(signal, rate, options)


def decode(data: bytes | str | os.PathLike, *, model: str | None = None,
           max_pixels: int | str | None = None, max_samples: int | str | None = None,
           **options: Any) -> Signal:
    """Decode a ``.inrk`` file (path or bytes); the codec is named in its header.

    ``options`` are codec-specific (``scale=2.0`` renders a coordinate field on a
    finer grid; ``frames=(start, stop)`` decodes part of a video); see
    :func:`inrkit.codecs.specs.decode` for the errors.
    """
    if isinstance(data, bytes | bytearray):
        data = bytes(data)
    else:
        data, _ = read_file_bytes(_as_path(data, "decode()", "the file's bytes or its path"))
    return specs.decode(data, model=model, max_pixels=max_pixels, max_samples=max_samples, **options)
