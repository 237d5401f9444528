"""NeRV: neural representations for videos, and the frame-decoder base class.

Paper: Hao Chen, Bo He, Hanyu Wang, Yixuan Ren, Ser-Nam Lim, Abhinav Shrivastava,
"NeRV: Neural Representations for Videos", NeurIPS 2021. Reference code:
github.com/haochen-rye/NeRV and its successor github.com/haochen-rye/HNeRV
(``model_all.py``), which re-implements NeRV as the baseline of the HNeRV paper.

A NeRV maps a frame index ``t`` to a whole frame. ``t / T`` is lifted by the
positional encoding ``[sin(b^l π t), cos(b^l π t)]`` for ``l < L`` (b = 1.25,
L = 80), a fully connected layer turns it into a small ``fc_dim × h × w``
feature map, and NeRV blocks (k×k conv → PixelShuffle(s) → GELU) upsample it
to the frame; a 3×3 head conv gives RGB through ``tanh(x)/2 + 1/2``.

We follow the HNeRV repository's NeRV baseline (``--embed pe_1.25_80 --ks 0_3_3
--reduce 2 --lower_width 12``), which is what the HNeRV paper's NeRV numbers come
from: the stem is a single linear layer (the NeRV paper's stem MLP had a
512-wide hidden layer), every block uses a 3×3 kernel, widths halve per stage
down to ``lower_width``. Departures: the upsampling strides are chosen from the
frame size (:func:`choose_strides`) instead of being hand-written per video, and
the width ``fc_dim`` is solved from a parameter budget (:func:`width_for_budget`)
by bisection on the exact parameter count, where the reference solves an
approximate quadratic.

The module also holds :class:`FrameDecoder`, the base class that NeRV, HNeRV
(:mod:`inrkit.inr.frames.hnerv`) and NeRV++ (:mod:`inrkit.inr.frames.nervpp`) share: frames
are ``B × C × H × W`` tensors in ``[0, 1]`` (the Signal range), not the
``[-1, 1]`` fitting range of coordinate fields, because the reference output
activation ``tanh(x)/2 + 1/2`` produces them directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from inrkit.errors import InputError
from inrkit.inr.field import Field
from inrkit.registry import register_field

# -- geometry -----------------------------------------------------------------

MAX_PADDING = 0.125
"""Most extra pixels (as a fraction of the frame) that padding may add to shrink the base grid."""


def _smooth_numbers(limit: int) -> list[int]:
    """The numbers up to ``limit`` (at least 1) whose prime factors are all 2, 3 or 5."""
    numbers = {1}
    for p in (2, 3, 5):
        grown = set(numbers)
        for n in numbers:
            while n * p <= limit:
                n *= p
                grown.add(n)
        numbers = grown
    return sorted(numbers)


def choose_strides(height: int, width: int, min_grid: int) -> tuple[int, ...]:
    """Upsampling strides from a ``min_grid``-high (or wide) grid up to ``height × width``.

    The total stride ``P`` is the largest divisor of ``gcd(height, width)``
    made of the factors 2, 3 and 5 that leaves at least ``min_grid`` rows and
    columns; it is split into strides of 5, 3, 4 and 2, largest first, keeping
    two final ×2 stages as the HNeRV configurations do (640×1280 → 5, 4, 4, 2, 2).
    """
    if height < 1 or width < 1:
        raise InputError(f"frame size must be positive, got {height}×{width}")
    short = min(height, width)
    common = math.gcd(height, width)
    total = max(d for d in _smooth_numbers(short // min_grid) if common % d == 0)
    strides: list[int] = []
    for p in (5, 3):
        while total % p == 0:
            strides.append(p)
            total //= p
    twos = int(math.log2(total))
    fours = max(twos - 2, 0) // 2
    strides += [4] * fours + [2] * (twos - 2 * fours)
    return tuple(sorted(strides, reverse=True))


def padded_size(height: int, width: int, min_grid: int, strides: tuple[int, ...] | None = None) -> tuple[int, int]:
    """The frame size a ``height × width`` clip is padded to (bottom and right) before fitting.

    With ``strides`` given: the next multiples of their product. Otherwise the
    total stride ``P`` (a product of 2, 3 and 5 leaving at least ``min_grid``
    rows and columns) whose padded frame, the next multiples of ``P``, has the
    fewest base-grid cells while adding at most :data:`MAX_PADDING` of the
    frame's pixels (ties: the less padding). The base grid is what NeRV's stem
    and HNeRV's embeddings cost per frame, so this keeps the papers' 2×4
    (HNeRV) and 8×16 (NeRV) grids for sizes whose divisors do not allow them:
    180×320 becomes 180×360 with a 2×4 grid for HNeRV, where padding to a
    multiple of 8 (184×320) left a 23×40 grid whose embeddings cost 470k
    parameters on 32 frames. :func:`choose_strides` then splits the stride.
    """
    if height < 1 or width < 1:
        raise InputError(f"frame size must be positive, got {height}×{width}")

    def next_multiples(total: int) -> tuple[int, int]:
        return -(-height // total) * total, -(-width // total) * total

    if strides is not None:
        return next_multiples(math.prod(strides))
    best_key, best = None, (height, width)
    for total in _smooth_numbers(min(height, width) // min_grid):
        size = next_multiples(total)
        area = size[0] * size[1]
        if area > (1 + MAX_PADDING) * height * width:
            continue
        key = ((size[0] // total) * (size[1] // total), area)
        if best_key is None or key < best_key:
            best_key, best = key, size
    return best


def positional_encoding(t: torch.Tensor, base: float, levels: int) -> torch.Tensor:
    """NeRV's frequency encoding of normalised frame times ``t`` (shape ``[B]``) → ``[B, 2L]``:
    all sines, then all cosines, at frequencies ``base**l * π``."""
    freqs = base ** torch.arange(levels, dtype=torch.float64) * math.pi
    angles = t.to(torch.float64)[:, None] * freqs.to(t.device)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).to(torch.float32)


# -- building blocks --------------------------------------------------------


class UpBlock(nn.Module):
    """NeRV/HNeRV block: k×k conv to ``out · s²`` channels → PixelShuffle(s) → GELU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * stride * stride, kernel, 1, (kernel - 1) // 2)
        self.shuffle = nn.PixelShuffle(stride) if stride > 1 else nn.Identity()
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


def stage_widths(fc_dim: int, stages: int, reduce: float, lower_width: int) -> list[int]:
    """Channel widths ``[fc_dim, w1, ..., w_stages]``: each stage divides by ``reduce``,
    never going below ``lower_width`` (reference: ``max(round(ngf / r), lower_width)``)."""
    widths = [int(fc_dim)]
    for _ in range(stages):
        widths.append(int(max(round(widths[-1] / reduce), lower_width)))
    return widths


def output_activation(x: torch.Tensor) -> torch.Tensor:
    """The reference ``out_bias='tanh'`` head: ``tanh(x) / 2 + 1/2`` ∈ (0, 1)."""
    return torch.tanh(x) * 0.5 + 0.5


# -- the frame-decoder contract ----------------------------------------------


class FrameDecoder(Field):
    """A network from a per-frame input (encoded index or embedding) to a whole frame.

    Subclasses define ``frame_inputs`` (what the decoder consumes for a batch of
    frames at training time) and ``forward`` (decoder inputs → ``B × C × H × W``
    frames in ``[0, 1]``). Those with ``uses_embeddings`` carry a per-frame
    embedding that is part of the bitstream; the others need only the index.
    """

    uses_embeddings: ClassVar[bool] = False
    min_grid: ClassVar[int] = 8  # fewest rows (or columns) of the base grid when strides are chosen

    @dataclass
    class Config:
        """What every frame decoder has: frame size, stem width, upsampling plan."""

        height: int
        width: int
        fc_dim: int = 64
        channels: int = 3
        strides: tuple[int, ...] | None = None  # None: choose_strides(height, width, min_grid)
        reduce: float = 2.0
        lower_width: int = 12

    @property
    def in_dim(self) -> int:
        return 1

    @property
    def out_channels(self) -> int:
        return int(self.config.channels)

    @property
    def frame_size(self) -> tuple[int, int]:
        return int(self.config.height), int(self.config.width)

    def frame_inputs(self, frames: torch.Tensor, index: torch.Tensor, num_frames: int) -> torch.Tensor:
        raise NotImplementedError

    def index_inputs(self, index: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Decoder inputs from frame indices alone (models without embeddings)."""
        raise InputError(f"{self.name} decodes from stored embeddings, not from frame indices")

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The parameters that go into the bitstream (an encoder, if any, does not)."""
        return list(self.parameters())

    def embedding_shape(self) -> tuple[int, ...]:
        """Shape of one frame's embedding (empty for index-driven models)."""
        return ()

    def parameter_count(self, num_frames: int) -> int:
        """Bitstream parameters: decoder weights plus ``num_frames`` embeddings (HNeRV's model size)."""
        per_frame = math.prod(self.embedding_shape()) if self.uses_embeddings else 0
        return sum(p.numel() for p in self.decoder_parameters()) + num_frames * per_frame

    @torch.no_grad()
    def activation_elements(self, batch: int = 1) -> int:
        """Floats of activations one training step keeps for ``batch`` frames: the outputs
        of every leaf module, counted with hooks during one forward pass on a single blank frame
        (the meta device would avoid the compute but costs seconds of lazy imports)."""
        device = next(self.parameters()).device
        frames = torch.zeros(1, self.out_channels, *self.frame_size, device=device)
        counts: list[int] = [frames.numel()]

        def hook(_module, _inputs, output):
            counts.append(output.numel())

        handles = [m.register_forward_hook(hook) for m in self.modules() if not list(m.children())]
        try:
            self(self.frame_inputs(frames, torch.zeros(1, device=device), 1))
        finally:
            for h in handles:
                h.remove()
        return batch * sum(counts)

    @torch.no_grad()
    def render(self, shape: tuple[int, ...], batch_size: int = 4) -> torch.Tensor:
        """Frames at ``T`` evenly spaced times as ``[T, H, W, C]`` in the fitting range ``[-1, 1]``
        (Field contract); ``H × W`` must be the architecture's frame size."""
        if len(shape) != 3 or tuple(shape[1:]) != self.frame_size:
            raise InputError(
                f"{self.name} renders T×{self.frame_size[0]}×{self.frame_size[1]} frames, got shape {tuple(shape)}"
            )
        device = next(self.parameters()).device
        index = torch.arange(shape[0], device=device, dtype=torch.float32)
        frames = [self(self.index_inputs(i, shape[0])) for i in index.split(batch_size)]
        return torch.cat(frames).permute(0, 2, 3, 1) * 2 - 1


def parameter_count(
    cls: type[FrameDecoder], fc_dim: int, height: int, width: int, num_frames: int, **config
) -> int:
    """Bitstream parameters (decoder plus embeddings) of ``cls`` at ``fc_dim``, counted on
    the meta device, so without allocating the weights."""
    with torch.device("meta"):
        model = cls(cls.Config(height=height, width=width, fc_dim=fc_dim, **config))
        return model.parameter_count(num_frames)


def width_for_budget(
    cls: type[FrameDecoder], budget: int, height: int, width: int, num_frames: int, **config
) -> int:
    """The largest ``fc_dim`` for which ``cls`` (NeRV, HNeRV, NeRV++) on ``num_frames`` frames of
    ``height × width`` has at most ``budget`` bitstream parameters (decoder plus embeddings).

    Bisection on the exact count; the models are built on the meta device, so a
    solve takes milliseconds. Raises InputError when even ``fc_dim = 1`` does not fit.
    """

    def count(fc_dim: int) -> int:
        return parameter_count(cls, fc_dim, height, width, num_frames, **config)

    smallest = count(1)
    if smallest > budget:
        raise InputError(
            f"a budget of {budget} parameters is too small for {cls.name} on {num_frames} frames "
            f"of {height}×{width}: the narrowest model takes {smallest}"
        )
    lo, hi = 1, 2
    while count(hi) <= budget:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= budget else (lo, mid)
    return lo


# -- NeRV ---------------------------------------------------------------------


def with_strides(config, min_grid: int):
    """``config`` with its upsampling strides chosen (when unset) and made a tuple of ints."""
    if config.strides is None:
        config = replace(config, strides=choose_strides(config.height, config.width, min_grid))
    return replace(config, strides=tuple(int(s) for s in config.strides))


def base_grid(config) -> tuple[int, int]:
    """The feature-map size the blocks start from: the frame size over the total stride."""
    stride = math.prod(config.strides)
    if config.height % stride or config.width % stride:
        raise InputError(
            f"frame size {config.height}×{config.width} is not a multiple of the total stride {stride}"
        )
    return config.height // stride, config.width // stride


@register_field("nerv")
class NeRV(FrameDecoder):
    """Frame index → positional encoding → linear stem → NeRV blocks → RGB."""

    name = "nerv"

    @dataclass
    class Config(FrameDecoder.Config):
        pe_base: float = 1.25
        pe_levels: int = 80
        kernel: int = 3

    def __init__(self, config: Config):
        config = with_strides(config, self.min_grid)
        super().__init__(config)
        self.grid = base_grid(config)
        widths = stage_widths(config.fc_dim, len(config.strides), config.reduce, config.lower_width)
        self.stem = nn.Sequential(
            nn.Linear(2 * config.pe_levels, config.fc_dim * math.prod(self.grid)), nn.GELU()
        )
        self.blocks = nn.ModuleList(
            self.make_block(cin, cout, s)
            for cin, cout, s in zip(widths[:-1], widths[1:], config.strides, strict=True)
        )
        self.head = nn.Conv2d(widths[-1], config.channels, 3, 1, 1)

    def make_block(self, in_channels: int, out_channels: int, stride: int) -> nn.Module:
        return UpBlock(in_channels, out_channels, stride, self.config.kernel)

    def index_inputs(self, index: torch.Tensor, num_frames: int) -> torch.Tensor:
        t = index.to(torch.float32) / float(num_frames)
        return positional_encoding(t, self.config.pe_base, self.config.pe_levels).to(index.device)

    def frame_inputs(self, frames: torch.Tensor, index: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.index_inputs(index, num_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).view(x.shape[0], self.config.fc_dim, *self.grid)
        for block in self.blocks:
            x = block(x)
        return output_activation(self.head(x))
