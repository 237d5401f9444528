"""Training loop for frame decoders (NeRV, HNeRV, NeRV++).

Follows the HNeRV reference training (github.com/haochen-rye/HNeRV,
``train_nerv_all.py`` and ``hnerv_utils.adjust_lr``): Adam (β = 0.9, 0.999,
no weight decay), learning rate 1e-3 with a per-step schedule ``cosine_0.1_1_0.1``
(linear warm-up from 0.1× to 1× over the first 10 % of steps, then a cosine
decay to 0), batch size 2 (the README's ``-b 2``), frames shuffled every epoch,
L2 loss (the README's ``--loss L2``; ``"l1+ssim"`` is the reference's
``Fusion6`` mix, 0.7·L1 + 0.3·(1 − SSIM)).

Departures: with a ``time_budget`` the number of epochs is cut to what fits,
measured after each epoch, and the schedule is rescaled to the new length so
that training still ends on a decayed learning rate. A divergence guard (not in
the reference, which trains at 1e-3): when an epoch's PSNR falls more than
``collapse_db`` below the best epoch so far, or is not finite, the network and
Adam's state go back to the end of that best epoch and the learning rate is
halved for the rest of training
(:class:`~inrkit.inr.divergence.DivergenceGuard`). The codecs train at 1e-2, which gains 3–5 dB
on CPU-sized clips, and at that rate HNeRV on 32 frames of 180×320 collapsed to
a constant frame (22.5 → 11.9 dB) at the peak of the schedule. Before training, the
activation memory of one step is estimated (:meth:`FrameDecoder.activation_elements`)
and a clip that would not fit is refused with an InputError.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from inrkit.errors import InputError
from inrkit.inr.divergence import DivergenceGuard

from .nerv import FrameDecoder

LOSSES = ("l2", "l1", "l1+ssim")


@dataclass
class VideoFitConfig:
    epochs: int = 300
    batch_size: int = 2
    lr: float = 1e-3
    warmup: float = 0.1  # fraction of all steps
    warmup_start: float = 0.1  # learning-rate multiplier at step 0
    loss: str = "l2"
    seed: int = 0
    time_budget: float | None = None  # seconds
    progress: bool = False
    memory_limit: int | None = None  # bytes; None: the machine's available memory
    collapse_db: float | None = 3.0  # divergence guard threshold (None: no guard)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"epochs and batch size must be ≥ 1, got {self.epochs} and {self.batch_size}")
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0.0 <= self.warmup < 1.0:
            raise InputError(f"warmup is a fraction of training in [0, 1), got {self.warmup}")
        if self.collapse_db is not None:
            DivergenceGuard(self.collapse_db)  # checks the threshold


@dataclass
class VideoFitResult:
    epochs: int
    seconds: float
    psnr: list[float] = field(default_factory=list)  # mean training PSNR per epoch, dB
    recoveries: int = 0  # times the divergence guard restored the best epoch and halved the rate


def lr_multiplier(progress: float, warmup: float, warmup_start: float) -> float:
    """HNeRV's ``cosine`` schedule at ``progress`` ∈ [0, 1] of training."""
    if progress < warmup:
        return warmup_start + (1.0 - warmup_start) * progress / warmup
    return 0.5 * (math.cos(math.pi * (progress - warmup) / (1.0 - warmup)) + 1.0)


def available_memory() -> int:
    """Bytes of memory the OS reports as available (physical memory if unknown)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def training_memory(model: FrameDecoder, frames_shape: tuple[int, ...], batch_size: int) -> int:
    """Estimated peak bytes of one training run: the clip, the weights with their gradients
    and Adam moments, and one step's activations kept for the backward pass (×2 for
    their gradients)."""
    params = sum(p.numel() for p in model.parameters())
    activations = model.activation_elements(batch_size)
    return 4 * (math.prod(frames_shape) + 4 * params + 2 * activations)


def check_memory(model: FrameDecoder, frames_shape: tuple[int, ...], batch_size: int, limit: int | None) -> None:
    need = training_memory(model, frames_shape, batch_size)
    limit = available_memory() if limit is None else limit
    if need > limit:
        t, c, h, w = frames_shape
        raise InputError(
            f"a {t}-frame {w}×{h} clip needs about {need / 2**30:.1f} GiB to train {model.name} "
            f"with batch size {batch_size}, more than the {limit / 2**30:.1f} GiB available; "
            f"use fewer frames, a smaller frame size or a smaller model"
        )


def _loss(kind: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "l2":
        return F.mse_loss(out, target)
    if kind == "l1":
        return F.l1_loss(out, target)
    from pytorch_msssim import ssim

    win = min(11, *out.shape[-2:])
    win -= 1 - win % 2  # odd, as SSIM's Gaussian window must be
    return 0.7 * F.l1_loss(out, target) + 0.3 * (1 - ssim(out, target, data_range=1.0, win_size=win))


def fit_frames(
    model: FrameDecoder,
    frames: torch.Tensor,
    config: VideoFitConfig | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> VideoFitResult:
    """Fit ``model`` to ``frames`` (``T × C × H × W`` in ``[0, 1]``) in place.

    ``on_epoch(epoch, psnr)`` is called after every epoch. Returns the number of
    epochs run, the wall time and the per-epoch training PSNR.
    """
    config = config or VideoFitConfig()
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise InputError(f"expected frames T×C×H×W with T ≥ 1, got shape {tuple(frames.shape)}")
    if tuple(frames.shape[1:]) != (model.out_channels, *model.frame_size):
        raise InputError(
            f"{model.name} was built for {model.out_channels}×{model.frame_size[0]}×{model.frame_size[1]} "
            f"frames, got {tuple(frames.shape[1:])}"
        )
    num_frames = frames.shape[0]
    batch = min(config.batch_size, num_frames)
    check_memory(model, tuple(frames.shape), batch, config.memory_limit)

    device = next(model.parameters()).device
    frames = frames.to(device, torch.float32)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999), weight_decay=0.0)
    steps_per_epoch = math.ceil(num_frames / batch)
    total_epochs = config.epochs
    result = VideoFitResult(epochs=0, seconds=0.0)
    guard = None if config.collapse_db is None else DivergenceGuard(config.collapse_db)

    bar = None
    if config.progress:
        from tqdm import tqdm

        bar = tqdm(total=total_epochs, desc=f"fit {model.name}", unit="epoch", file=sys.stderr)
    start = time.perf_counter()
    model.train()
    try:
        epoch = 0
        while epoch < total_epochs:
            order = torch.randperm(num_frames, generator=generator)
            sq_err, count = 0.0, 0
            for step, idx in enumerate(order.split(batch)):
                progress = (epoch * steps_per_epoch + step) / (total_epochs * steps_per_epoch)
                lr_scale = 1.0 if guard is None else guard.lr_scale
                lr = config.lr * lr_scale * lr_multiplier(progress, config.warmup, config.warmup_start)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                target = frames[idx.to(device)]
                out = model(model.frame_inputs(target, idx.to(device), num_frames))
                loss = _loss(config.loss, out, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sq_err += F.mse_loss(out.detach(), target, reduction="sum").item()
                count += target.numel()
            epoch += 1
            mse = sq_err / count
            psnr = -10.0 * math.log10(max(mse, 1e-12)) if math.isfinite(mse) else -math.inf
            result.psnr.append(psnr)
            if guard is not None and guard.update(psnr, model, optimizer):
                if bar is not None:
                    bar.write(f"fit {model.name}: epoch {epoch} fell to {psnr:.2f} dB from "
                              f"{guard.best_psnr:.2f}; back to that epoch's state, learning rate halved",
                              file=sys.stderr)
            elapsed = time.perf_counter() - start
            if config.time_budget is not None:
                fits = int(config.time_budget / (elapsed / epoch))
                total_epochs = max(epoch, min(config.epochs, fits))
            if bar is not None:
                bar.total = total_epochs
                bar.update(1)
                bar.set_postfix(psnr=f"{psnr:.2f}", lr=f"{lr:.1e}")
            if on_epoch is not None:
                on_epoch(epoch, psnr)
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    result.epochs = epoch
    result.recoveries = 0 if guard is None else guard.recoveries
    result.seconds = time.perf_counter() - start
    return result
