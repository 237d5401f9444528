"""Codecs by name, with options, and decoding a file by the codec its header names.

A *codec spec* is a registered codec's name, optionally followed by constructor options,
each ``:key=value``::

    siren
    shacira:log2_hashmap_size=14
    adacode:model=adacode.safetensors
    nerv:lower_width=6:lr=0.005

Values are text until the codec is known: an option whose constructor default is a
string stays text (``x264:chroma=444``), any other is read as a JSON scalar where it
parses as one (``14``, ``5e-3``, ``true``, ``null``) and kept as text otherwise (paths). The same spec works in ``inrkit encode
--codec``, ``inrkit eval rd --codecs`` (comma-separated) and the benchmarks, so every
codec, learned ones included, can be swept with the options it needs.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from typing import Any

from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.registry import CODECS

from .base import Codec
from .bitstream.container import unpack

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"name:key=value:..."`` → ``(name, {key: value text})``.

    Raises:
        InputError: an empty name, an option without ``=``, a malformed or repeated key.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"a codec spec is a name with optional :key=value options, got {spec!r}")
    name, *parts = spec.strip().split(":")
    options: dict[str, Any] = {}
    for part in parts:
        key, sep, text = part.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise InputError(f"codec spec {spec!r}: options are :key=value, got {part!r}")
        if key in options:
            raise InputError(f"codec spec {spec!r}: option {key!r} is given twice")
        options[key] = text
    return name, options


def _value(cls: type, key: str, text: str) -> Any:
    """An option's text as the constructor of ``cls`` takes it (see the module docstring)."""
    parameter = inspect.signature(cls).parameters.get(key)
    if parameter is not None and isinstance(parameter.default, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, bool | int | float) else text


def make_codec(name: str, **options: Any) -> Codec:
    """The registered codec ``name`` built with constructor ``options``.

    Raises:
        InputError: an unknown codec, or options its constructor does not take (codecs
            whose constructor takes ``**options`` check them themselves).
    """
    cls = CODECS.get(name)
    takes = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in takes.values()):
        unknown = sorted(key for key in options if key not in takes)
        if unknown == ["model"]:
            learned = [n for n in CODECS.names() if "model" in inspect.signature(CODECS.get(n)).parameters]
            raise InputError(
                f"codec {name!r} takes no model file; only the learned codecs do ({', '.join(learned)})"
            )
        if unknown:
            known = ", ".join(k for k in takes if k != "self") or "none"
            raise InputError(f"codec {name!r} takes no option(s) {', '.join(unknown)} (it takes: {known})")
    return cls(**options)


def codec_from_spec(spec: str, **defaults: Any) -> Codec:
    """The codec a spec names; ``defaults`` (e.g. ``model=``) apply where the spec is silent."""
    name, texts = parse_spec(spec)
    cls = CODECS.get(name)
    options = {key: _value(cls, key, text) for key, text in texts.items()}
    return make_codec(name, **{**defaults, **options})


def inrk_codec_names() -> list[str]:
    """The codecs that write ``.inrk`` files (every registered one but the classical references)."""
    from .classical import ClassicalCodec

    return [n for n in CODECS.names() if not issubclass(CODECS.get(n), ClassicalCodec)]


def check_inrk_codec(name: str, modality: str | None = None) -> None:
    """Refuse, before any work, a codec that does not write ``.inrk`` files (the classical
    codecs are registered only as references for rate–distortion sweeps) or that does
    not handle ``modality``.

    Raises:
        InputError: an unknown, classical or wrong-modality codec.
    """
    from .classical import ClassicalCodec

    inrk = inrk_codec_names()
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


def check_decode_cost(container, options: dict[str, Any], max_pixels: int | str | None = None,
                      max_samples: int | str | None = None) -> None:
    """Refuse, before any work, a file whose decode would make more than ``max_pixels``
    pixels per image or frame (default ``$INRKIT_MAX_PIXELS``, 64 Mpx) or more than
    ``max_samples`` samples in all (default: ``$INRKIT_MAX_BYTES`` of float32, 1 Gi
    samples), as its header declares them (``scale`` and ``frames`` included).

    Raises:
        InputError: a file over a limit (a service can cap the work a file asks for), or
            a limit that is not a positive amount.
    """
    from inrkit.datasets import limits

    shape = [int(n) for n in container.shape]
    if container.modality in ("image", "video") and len(shape) >= 2:
        scale = float(options.get("scale", 1.0))
        shape[-2:] = [max(1, round(n * scale)) for n in shape[-2:]]
        frames = options.get("frames")
        if container.modality == "video" and frames:
            start, stop = frames
            shape[0] = max(0, min(shape[0], stop if stop is not None else shape[0]) - start)
        pixels, allowed = shape[-1] * shape[-2], limits.max_pixels(max_pixels)
        if pixels > allowed:
            raise InputError(f"the file decodes to {shape[-1]}×{shape[-2]} pixels per picture, over "
                                 f"the limit of {allowed} (--max-pixels, INRKIT_MAX_PIXELS)")
    samples = math.prod(shape)
    allowed = limits.max_bytes() // 4 if max_samples is None else limits.parse_amount(
        str(max_samples), base=1000, what="max_samples")
    if samples > allowed:
        raise InputError(f"the file decodes to {samples} samples, over the limit of {allowed} "
                             "(--max-samples, INRKIT_MAX_BYTES / 4)")


def decode(data: bytes, model: str | None = None, *, max_pixels: int | str | None = None,
           max_samples: int | str | None = None, **options: Any) -> Signal:
    """Decode a ``.inrk`` file's bytes with the codec its header names.

    Args:
        data: the whole file.
        model: the trained model file of a learned codec (ignored by no codec: the others
            refuse it).
        max_pixels, max_samples: caps on the work the file may ask for
            (:func:`check_decode_cost`).
        options: the decode options that codec takes for the file's modality (``scale``,
            ``frames``).

    Raises:
        BitstreamError: a malformed file, or one naming a codec this inrkit does not have.
        InputError: an option the codec does not take for this modality.
        ModelError: a learned codec without its model, or with another model.
    """
    container = unpack(data)
    if container.codec not in CODECS:
        raise BitstreamError(
            f"the file was written by codec {container.codec!r}, which this inrkit does not have "
            f"(known: {', '.join(inrk_codec_names())})"
        )
    if container.codec not in inrk_codec_names():
        raise BitstreamError(
            f"the file names {container.codec!r}, a classical codec whose files are its own "
            "format, never .inrk content"
        )
    coder = make_codec(container.codec, **({"model": model} if model is not None else {}))
    allowed = coder.decode_options.get(container.modality, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(
            f"{container.codec} {container.modality} files decode with "
            f"{', '.join(allowed) or 'no options'}, not {', '.join(unknown)}"
        )
    check_decode_cost(container, options, max_pixels, max_samples)
    return coder.decode(data, **options)
