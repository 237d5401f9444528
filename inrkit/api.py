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

import inspect
import os
from pathlib import Path
from typing import Any

from inrkit.codecs.base import EncodeOptions, Rate, check_rate_below_raw
from inrkit.codecs.bitstream.container import read_file_bytes, unpack, write_file
from inrkit.datasets import io as media
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.registry import CODECS


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


def check_inrk_codec(name: str, modality: str | None = None) -> None:
    """Refuse, before any work, a codec that does not write ``.inrk`` files (the classical
    codecs are registered only as references for rate–distortion sweeps) or that does
    not handle ``modality``."""
    from inrkit.codecs.classical import ClassicalCodec

    inrk = [n for n in CODECS.names() if not issubclass(CODECS.get(n), ClassicalCodec)]
    if name not in CODECS:
        raise InputError(f"unknown codec {name!r}; encode takes: {', '.join(inrk)}")
    cls = CODECS.get(name)
    if issubclass(cls, ClassicalCodec):
        raise InputError(
            f"codec {name!r} is a classical reference for `inrkit eval rd`; it writes its own "
            f"format, not .inrk. encode takes: {', '.join(inrk)}"
        )
    if modality is not None and modality not in cls.modalities:
        raise InputError(f"codec {name!r} handles {', '.join(cls.modalities)}, not {modality}")


def make_codec(name: str, **codec_kwargs: Any):
    """Instantiate a registered codec (learned codecs take ``model=PATH``)."""
    cls = CODECS.get(name)
    takes = inspect.signature(cls).parameters
    unknown = [key for key in codec_kwargs if key not in takes]
    if unknown == ["model"]:
        learned = [n for n in CODECS.names() if "model" in inspect.signature(CODECS.get(n)).parameters]
        raise InputError(
            f"codec {name!r} takes no model file; only the learned codecs do ({', '.join(learned)})"
        )
    if unknown:
        raise InputError(f"codec {name!r} takes no option(s) {', '.join(sorted(unknown))}")
    return cls(**codec_kwargs)


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

    Exactly one of ``bpp``, ``kbps``, ``quality`` and ``lmbda`` may be given;
    with none, the codec's middle quality preset is used (codecs without presets,
    such as ``siren-audio``, need a rate).
    """
    if not isinstance(signal, Signal):
        raise InputError(f"encode() takes an inrkit Signal (inrkit.load(path)), got {type(signal).__name__}")
    coder = make_codec(codec, **codec_kwargs)
    if bpp is None and kbps is None and quality is None and lmbda is None:
        if "quality" not in coder.rate_kinds and signal.modality in coder.modalities:
            raise InputError(
                f"codec {codec!r} has no quality presets; give a rate as {' or '.join(coder.rate_kinds)}"
            )
        quality = 4
    rate = Rate(bpp=bpp, kbps=kbps, quality=quality, lmbda=lmbda)
    options = EncodeOptions(
        steps=steps, time_budget=time_budget, seed=seed, device=device, progress=progress
    )
    coder.check(signal, rate)
    check_rate_below_raw(signal, rate)
    return coder.encode(signal, rate, options)


def decode(data: bytes | str | os.PathLike, *, model: str | None = None, **options: Any) -> Signal:
    """Decode a ``.inrk`` file (path or bytes); the codec is named in its header.

    ``options`` are codec-specific (``scale=2.0`` renders a coordinate field on a
    finer grid; ``frames=(start, stop)`` decodes part of a video).
    """
    if isinstance(data, bytes | bytearray):
        data = bytes(data)
        container = unpack(data)
    else:
        data, container = read_file_bytes(_as_path(data, "decode()", "the file's bytes or its path"))
    if container.codec not in CODECS:
        raise BitstreamError(
            f"the file was written by codec {container.codec!r}, which this inrkit does not have "
            f"(known: {', '.join(CODECS.names())})"
        )
    codec_kwargs = {"model": model} if model is not None else {}
    coder = make_codec(container.codec, **codec_kwargs)
    allowed = coder.decode_options.get(container.modality, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(
            f"{container.codec} {container.modality} files decode with "
            f"{', '.join(allowed) or 'no options'}, not {', '.join(unknown)}"
        )
    return coder.decode(data, **options)
