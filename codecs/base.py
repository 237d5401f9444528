"""The Codec contract (docs/design.md), in the spirit of CompressAI's compress/decompress split.

A codec turns a :class:`~inrkit.datasets.Signal` into bytes and back.
``encode(signal, rate)`` returns the complete file (for inrkit's own codecs a
``.inrk`` container; for classical codecs the native bitstream, e.g. JPEG
bytes), so the measured rate is simply ``8 * len(bytes)``.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import torch

from inrkit.arguments import check_seed
from inrkit.codecs.bitstream.container import Container, unpack
from inrkit.datasets.limits import max_pixels
from inrkit.datasets.signal import Signal
from inrkit.devices import check_device
from inrkit.errors import BitstreamError, InputError, ModelError


def single_threaded(decode: Callable) -> Callable:
    """Run a decoder on one torch thread, then restore the caller's thread count.

    A file must decode to the same bytes whatever the thread count (docs/bitstream.md),
    but PyTorch's CPU convolutions and matrix products split their sums differently
    with more threads, and the last bit of a float can then round a sample the other
    way (seen in rvqgan, vcinr audio and nervpp decodes with 1 against 2 threads).
    """

    @functools.wraps(decode)
    def wrapper(*args: Any, **kwargs: Any):
        threads = torch.get_num_threads()
        if threads == 1:
            return decode(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return decode(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


@dataclass(frozen=True)
class Rate:
    """What the user asked for. Exactly one of the fields is set.

    ``bpp`` bits per pixel (images, video: per pixel per frame), ``kbps``
    kilobits per second (audio), ``quality`` a codec's preset ladder
    (1 = smallest file), ``lmbda`` a codec-specific rate–distortion trade-off.
    """

    bpp: float | None = None
    kbps: float | None = None
    quality: int | None = None
    lmbda: float | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("bpp", "kbps", "quality", "lmbda") if getattr(self, k) is not None]
        if len(given) != 1:
            raise InputError(f"give exactly one rate (bpp, kbps, quality or lambda), got {given or 'none'}")
        value = getattr(self, given[0])
        if not value > 0:
            raise InputError(f"{given[0]} must be positive, got {value}")

    @property
    def kind(self) -> str:
        return next(k for k in ("bpp", "kbps", "quality", "lmbda") if getattr(self, k) is not None)

    @property
    def value(self) -> float:
        return getattr(self, self.kind)

    def __str__(self) -> str:
        return f"{self.kind}={self.value:g}"


@dataclass
class EncodeOptions:
    """Budgets and settings common to the encoders that fit or train something."""

    steps: int | None = None
    time_budget: float | None = None  # seconds
    seed: int = 0
    device: str = "cpu"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, Integral)):
            raise InputError(f"steps must be a whole number, got {self.steps!r}")
        if self.time_budget is not None and (
            isinstance(self.time_budget, bool) or not isinstance(self.time_budget, Real)
        ):
            raise InputError(f"the time budget must be a number of seconds, got {self.time_budget!r}")
        if self.steps is not None and self.steps < 0:
            raise InputError(f"steps must be >= 0, got {self.steps}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise InputError(f"the time budget must be a positive number of seconds, got {self.time_budget}")
        check_device(self.device)
        check_seed(self.seed)

    def steps_or(self, default: int, codec: str) -> int:
        """The step (or epoch) budget of an encoder that fits its signal: ``steps``, or
        ``default`` when none was given. Zero steps would fit nothing, so they are refused
        here rather than read as "the default" (VC-INR alone gives 0 a meaning)."""
        if self.steps == 0:
            raise InputError(f"{codec} fits the signal, so it needs at least 1 step, got steps=0")
        return default if self.steps is None else self.steps


def check_whole_option(codec: str, name: str, value: Any, least: int) -> None:
    """A codec constructor's integer option: an ``int`` (not a bool) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InputError(f"{codec}: {name} must be a whole number of at least {least}, got {value!r}")


def check_positive_option(codec: str, name: str, value: Any) -> None:
    """A codec constructor's real option (a rate, a length): positive and finite."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise InputError(f"{codec}: {name} must be a positive number, got {value!r}")


def check_rate_below_raw(signal: Signal, rate: Rate) -> None:
    """Refuse a ``bpp`` or ``kbps`` target above the signal's uncompressed rate: there is
    nothing to compress, and the fitting codecs would size a network for it. Applied to
    what users ask for (``inrkit.encode``); sweeps keep the codecs' own ladders."""
    raw_bits = signal.channels * signal.bit_depth  # per pixel, or per sample and second
    raw = {"bpp": raw_bits, "kbps": raw_bits * (signal.sample_rate or 0) / 1000}.get(rate.kind)
    if raw is not None and rate.value > raw:
        raise InputError(
            f"a target of {rate.value:g} {rate.kind} is above the uncompressed rate of this "
            f"{signal.modality} ({raw:g} {rate.kind}: {signal.channels} × {signal.bit_depth}-bit); "
            "there is nothing to compress"
        )


def quality_ladder(n: int) -> list[Rate]:
    """``n`` presets spread over the whole ``--quality`` range 1..8, smallest file first
    (quality 5 alone for ``n = 1``), for codecs whose presets are their sweep ladder.

    Raises:
        InputError: ``n < 1``.
    """
    if n < 1:
        raise InputError(f"the number of rate points must be at least 1, got {n}")
    if n == 1:
        return [Rate(quality=5)]
    return [Rate(quality=round(1 + 7 * i / (n - 1))) for i in range(n)]


class Codec:
    """Base class. Subclasses set ``name``, ``version`` and ``modalities`` and
    implement :meth:`encode` and :meth:`decode`; learned codecs take their model
    file as a constructor argument."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    older_versions: ClassVar[tuple[int, ...]] = ()  # earlier versions this decoder still reads
    modalities: ClassVar[tuple[str, ...]] = ()
    rate_kinds: ClassVar[tuple[str, ...]] = ("bpp", "quality")
    # keywords decode takes, per modality of the file: "scale", "frames"
    decode_options: ClassVar[dict[str, tuple[str, ...]]] = {}

    def check(self, signal: Signal, rate: Rate) -> None:
        if signal.modality not in self.modalities:
            raise InputError(
                f"codec {self.name!r} handles {', '.join(self.modalities)}, not {signal.modality}"
            )
        if rate.kind not in self.rate_kinds:
            raise InputError(
                f"codec {self.name!r} takes a rate as {' or '.join(self.rate_kinds)}, not {rate.kind}"
            )

    def default_quality(self) -> int:
        """The quality preset an encode without a rate uses: the middle of 1..8."""
        return 4

    def ladder(self, n: int) -> list[Rate]:
        """``n`` rate points, smallest first, for a rate–distortion sweep.

        The default spreads targets geometrically over the range where published
        curves live: 0.05–2 bpp for codecs that take ``bpp`` (images, video),
        6–256 kbps for ``kbps`` (audio), else qualities 1…n. Codecs override it
        with their own useful range.
        """
        if n < 1:
            raise InputError(f"the number of rate points must be at least 1, got {n}")
        if "bpp" in self.rate_kinds or "kbps" in self.rate_kinds:
            kind, lo, hi = ("bpp", 0.05, 2.0) if "bpp" in self.rate_kinds else ("kbps", 6.0, 256.0)
            if n == 1:
                return [Rate(**{kind: round((lo * hi) ** 0.5, 4)})]
            return [Rate(**{kind: round(lo * (hi / lo) ** (i / (n - 1)), 4)}) for i in range(n)]
        return [Rate(quality=q) for q in range(1, n + 1)]

    @staticmethod
    def measured_rate(signal: Signal, data: bytes) -> float:
        """The rate of an encoded file, from its size: kbps for audio, bits per pixel
        (per frame pixel for video) otherwise."""
        bits = 8 * len(data)
        if signal.modality == "audio":
            return bits / signal.duration / 1000.0
        return bits / signal.num_samples

    @classmethod
    def open(cls, data: bytes) -> Container:
        """Parse ``data`` as a file of this codec and version, else BitstreamError."""
        container = unpack(data)
        if container.codec != cls.name:
            raise BitstreamError(f"this is a {container.codec!r} file, not {cls.name!r}")
        if container.codec_version != cls.version and container.codec_version not in cls.older_versions:
            readable = ", ".join(str(v) for v in sorted({cls.version, *cls.older_versions}))
            raise BitstreamError(
                f"{cls.name} file of codec version {container.codec_version}; "
                f"this inrkit reads version {readable}"
            )
        return container

    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes, **options) -> Signal:
        raise NotImplementedError


MAX_SCALE = 16.0
"""The largest ``scale`` a coordinate-field image decoder renders at."""


def scaled_image_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """The grid a coordinate-field image is rendered on for ``decode(..., scale=s)``:
    each side times ``s``, rounded, at least one pixel, within ``INRKIT_MAX_PIXELS``."""
    if not 0 < scale <= MAX_SCALE:
        raise InputError(f"--scale must be in (0, {MAX_SCALE}], got {scale}")
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    if shape[0] * shape[1] > max_pixels():
        raise InputError(f"rendering {shape[0]}×{shape[1]} pixels exceeds the limit of "
                         f"{max_pixels()} (INRKIT_MAX_PIXELS); use a smaller --scale")
    return shape


class LearnedCodec(Codec):
    """A codec whose encoder and decoder share a trained model file (``model=PATH``,
    CLI ``--model``), loaded once, on first use; subclasses implement :meth:`load_model`."""

    def __init__(self, model: str | os.PathLike | None = None):
        if model is not None and not isinstance(model, str | os.PathLike):
            raise InputError(f"{self.name}: model takes the path of a model file, got {type(model).__name__}")
        self.model_path = None if model is None else Path(model)
        self._loaded: tuple[Any, str] | None = None

    def load_model(self, path: Path) -> tuple[Any, str]:
        """``(model, digest)`` from the file at ``path``; ModelError if it is not one."""
        raise NotImplementedError

    def _model(self) -> tuple[Any, str]:
        if self.model_path is None:
            raise ModelError(
                f"codec {self.name!r} needs a trained model file: pass model=PATH "
                f"(CLI: --model PATH; train one with `inrkit train {self.name}`)"
            )
        if self._loaded is None:
            self._loaded = self.load_model(self.model_path)
        return self._loaded
