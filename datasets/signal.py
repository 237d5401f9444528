"""The Signal type: a tensor plus everything needed to write it back.

Layouts (docs/design.md): images ``C×H×W``, video ``T×C×H×W``, audio ``C×N``.
Values are float32: images and video in ``[0, 1]``, audio in ``[-1, 1]``;
NaN and infinite values are refused when a Signal is made (values outside the
range are kept, and clamped when written to a file).
``bit_depth`` and ``channels`` describe the source file so that saving can
restore them; ``sample_rate`` is samples per second (audio) and
``frame_rate`` frames per second (video).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from inrkit.errors import InputError

from .modalities import MODALITIES

MIN_FRAME_RATE, MAX_FRAME_RATE = 1e-3, 1e4
"""Frame rates a video Signal may have: writers store the rate as a fraction with a
denominator of at most 1001, which a rate below 1/1000 would round to zero."""
_NDIM = {"image": 3, "video": 4, "audio": 2}
_GRID_AXES = {"image": "H, W", "video": "T, H, W", "audio": "N"}


@dataclass
class Signal:
    data: torch.Tensor
    modality: str
    bit_depth: int = 8
    sample_rate: float | None = None
    frame_rate: float | None = None
    source: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise InputError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if not isinstance(self.data, torch.Tensor):
            raise InputError(f"Signal data must be a torch.Tensor, got {type(self.data).__name__}")
        if self.data.ndim != _NDIM[self.modality]:
            raise InputError(
                f"{self.modality} data must have {_NDIM[self.modality]} dimensions "
                f"({self.layout}), got shape {tuple(self.data.shape)}"
            )
        if self.data.numel() == 0:
            raise InputError(f"{self.modality} signal is empty: shape {tuple(self.data.shape)}")
        if self.modality == "audio" and not self.sample_rate:
            raise InputError("an audio Signal needs a sample_rate")
        if self.frame_rate is not None and not MIN_FRAME_RATE <= self.frame_rate <= MAX_FRAME_RATE:
            raise InputError(f"frame_rate must be in {MIN_FRAME_RATE:g}..{MAX_FRAME_RATE:g} frames per second, "
                             f"got {self.frame_rate!r}")
        self.data = self.data.to(torch.float32)
        if not torch.isfinite(self.data).all():
            raise InputError(f"{self.modality} signal holds NaN or infinite values")

    # -- description -------------------------------------------------------
    @property
    def layout(self) -> str:
        return {"image": "C×H×W", "video": "T×C×H×W", "audio": "C×N"}[self.modality]

    @property
    def value_range(self) -> tuple[float, float]:
        return (-1.0, 1.0) if self.modality == "audio" else (0.0, 1.0)

    @property
    def channels(self) -> int:
        return int(self.data.shape[1] if self.modality == "video" else self.data.shape[0])

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The sampling grid a coordinate field covers: (H, W), (T, H, W) or (N,)."""
        s = tuple(int(v) for v in self.data.shape)
        if self.modality == "image":
            return s[1:]
        if self.modality == "video":
            return (s[0], s[2], s[3])
        return (s[1],)

    @property
    def num_samples(self) -> int:
        """Pixels (image), pixels × frames (video) or samples per channel (audio): the bpp/kbps denominator."""
        return math.prod(self.grid_shape)

    @property
    def duration(self) -> float:
        """Seconds of audio or video (0 for images)."""
        if self.modality == "audio":
            return self.grid_shape[0] / float(self.sample_rate)
        if self.modality == "video":
            return self.grid_shape[0] / float(self.frame_rate or 25.0)
        return 0.0

    # -- conversion to and from the values a coordinate field is fitted on ---
    def to_values(self) -> torch.Tensor:
        """Samples as ``[*grid_shape, C]`` in ``[-1, 1]``, the range fields are fitted in."""
        if self.modality == "image":
            v = self.data.permute(1, 2, 0)
        elif self.modality == "video":
            v = self.data.permute(0, 2, 3, 1)
        else:
            v = self.data.t()
        lo, hi = self.value_range
        return (v - lo) * (2.0 / (hi - lo)) - 1.0

    def with_values(self, values: torch.Tensor) -> Signal:
        """A Signal like this one whose samples are ``values`` (``[*grid, C]`` in ``[-1, 1]``),
        clamped to the value range. The grid may differ (super-resolution)."""
        grid_dims = len(self.grid_shape)
        if values.ndim != grid_dims + 1 or values.shape[-1] != self.channels:
            raise InputError(
                f"values for this {self.modality} must be "
                f"[{_GRID_AXES[self.modality]}, {self.channels}], got shape {tuple(values.shape)}"
            )
        lo, hi = self.value_range
        v = ((values.detach().float() + 1.0) * ((hi - lo) / 2.0) + lo).clamp(lo, hi)
        if self.modality == "image":
            data = v.permute(2, 0, 1)
        elif self.modality == "video":
            data = v.permute(0, 3, 1, 2)
        else:
            data = v.t()
        return replace(self, data=data.contiguous().cpu(), meta=dict(self.meta))

    def quantized(self) -> Signal:
        """The signal rounded to its bit depth, as it would be written to a file
        (float audio, from a float WAV, is written as float32 and only clamped)."""
        lo, hi = self.value_range
        levels = (1 << self.bit_depth) - 1
        if self.modality == "audio" and self.meta.get("subtype") in ("FLOAT", "DOUBLE"):
            data = self.data.to(torch.float32).clamp(-1.0, 1.0)
        elif self.modality == "audio":  # one copy, rounded in place: clips and videos are long
            scale = float(1 << (self.bit_depth - 1))
            data = (self.data * scale).round_().clamp_(-scale, scale - 1).div_(scale)
        else:
            data = (self.data - lo).div_(hi - lo).mul_(levels).round_().div_(levels).mul_(hi - lo).add_(lo)
        return replace(self, data=data, meta=dict(self.meta))

    def __repr__(self) -> str:
        extra = ""
        if self.sample_rate:
            extra += f", sample_rate={self.sample_rate:g}"
        if self.frame_rate:
            extra += f", frame_rate={self.frame_rate:g}"
        return (
            f"Signal({self.modality}, shape={tuple(self.data.shape)} [{self.layout}], "
            f"bit_depth={self.bit_depth}{extra}, source={self.source!r})"
        )
