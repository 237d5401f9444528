"""Training M-AdaCode in two stages: base codebooks, then weights, masking and filler.

Jiang, Wang and Chen, "Neural Image Compression Using Masked Sparse Visual
Representation", WACV 2024 (arXiv:2309.11661); AdaCode (Liu et al., ICCV 2023),
reference code github.com/kechunl/AdaCode (``options/`` training configs and
``basicsr/models``). AdaCode's stage 1 trains one VQGAN per semantic category
(a category-specific codebook each); its stage 2 freezes the codebooks and learns
the weight predictor (and the rest of the network) on all images. M-AdaCode trains
with masked weights so that one model serves every masking rate.

What this trainer does, and where it departs:

- *Stage 1, codebooks.* With a handful of training photos there are no semantic
  categories, so training crops are clustered instead: a pool of random crops is
  described by colour mean and spread and gradient energy, and k-means (k-means++
  seeding) splits it into K groups. Every stage-1 batch holds the K groups in turn,
  and a crop of group k passes through codebook k alone (weight 1), with an encoder
  and decoder shared by all groups — K "VQGANs" that share their convolutions. The
  codebooks stay distinct because each codebook's VQ loss and reconstruction
  gradients come from its own group only.
- *Dead codewords* (unused during the last ``--refresh-every`` steps of stage 1) are
  re-seeded from the group's current pre-quantization vectors, a common VQ-training
  remedy (Jukebox; lucidrains' ``threshold_ema_dead_code``) that AdaCode's long GPU
  runs do without; on a CPU budget most of a ``U(-1/N, 1/N)`` codebook would
  otherwise never be used.
- *Stage 2, weights.* Codebooks are frozen; everything else trains (encoder,
  projections, weight predictor, mask tokens, weight filler, decoder), each step with
  a random number of kept codebooks ``m ∈ 1..K`` and the kept weights rounded as the
  bitstream rounds them (straight-through).
- *Losses*: ``0.16·L1 + 0.84·(1 − SSIM)`` (the mix of Zhao et al., "Loss Functions
  for Image Restoration with Neural Networks", 2017) plus the VQ loss (codebook +
  0.25·commitment). MS-SSIM needs crops above 160 px for its five scales
  (pytorch-msssim's window of 11); smaller crops use single-scale SSIM. No
  perceptual or adversarial terms (AdaCode's LPIPS and GAN losses): they would
  cost most of a CPU budget and work against PSNR.
- Adam (β = 0.9, 0.99 as AdaCode) at a higher learning rate (5e-4, cosine-decayed to
  a tenth over each stage) than AdaCode's 1e-4, because the budget is minutes.
- Random crops with horizontal flips; gray images are replicated to RGB and an
  alpha channel is dropped.

Run ``inrkit train adacode --data DIR --out model.safetensors`` (or :func:`main`);
multi-process: ``torchrun --nproc-per-node 2 -m inrkit.inr.train.adacode ...``.
Checkpoints (model file plus ``*.train.safetensors`` with optimizer state, stage,
step counters and the k-means centroids) make ``--resume`` continue where it left.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from inrkit.arguments import ArgumentParser, seed_type
from inrkit.errors import InputError
from inrkit.inr.learned.adacode import AdaCode, AdaCodeConfig, load_model, save_model

from .common import (
    check_output,
    distributed,
    optimizer_from_tensors,
    optimizer_to_tensors,
    require_positive,
    resume_weights,
    write_training_state,
)

STATE_FORMAT = "inrkit-adacode-train"
L1_WEIGHT, SSIM_WEIGHT = 0.16, 0.84

# -- data ------------------------------------------------------------------------


def load_images(data_dir: str | os.PathLike, crop: int) -> list[torch.Tensor]:
    """Every image under ``data_dir`` at least ``crop`` pixels on each side, as RGB
    ``[3, H, W]`` in [0, 1] (gray replicated, alpha dropped)."""
    from inrkit.datasets import load
    from inrkit.datasets.folders import list_media

    images, small = [], []
    for path in list_media(data_dir, modality="image"):  # InputError when there are none
        x = load(path).data
        if x.shape[0] in (1, 2):
            x = x[:1].expand(3, -1, -1)
        x = x[:3].contiguous()
        if min(x.shape[1:]) < crop:
            small.append(path.name)
            continue
        images.append(x)
    if not images:
        raise InputError(
            f"no image under {str(data_dir)!r} is at least {crop}×{crop} pixels "
            f"(too small: {', '.join(small) or 'none'}); use a smaller --crop"
        )
    return images


def crop_features(x: torch.Tensor) -> torch.Tensor:
    """What k-means groups crops by: per-channel mean and spread, and gradient energy."""
    grad = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((-3, -2, -1)) + (
        x[..., 1:] - x[..., :-1]
    ).abs().mean((-3, -2, -1))
    return torch.cat([x.mean((-2, -1)), x.std((-2, -1)), grad[..., None]], dim=-1)


def kmeans(points: torch.Tensor, k: int, gen: torch.Generator, iters: int = 25) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; an empty cluster is re-seeded with the
    point farthest from its centre. Returns the centres ``[k, d]``."""
    n = points.shape[0]
    if n < k:
        raise InputError(f"k-means needs at least {k} crops, got {n}")
    centres = points[torch.randint(n, (1,), generator=gen)]
    while centres.shape[0] < k:
        d2 = torch.cdist(points, centres).amin(1).square()
        pick = torch.multinomial(d2 + 1e-12, 1, generator=gen)
        centres = torch.cat([centres, points[pick]])
    for _ in range(iters):
        dist_ = torch.cdist(points, centres)
        label = dist_.argmin(1)
        for j in range(k):
            members = points[label == j]
            if members.shape[0]:
                centres[j] = members.mean(0)
            else:
                centres[j] = points[dist_.amin(1).argmax()]
    return centres


class CropSampler:
    """Random crops (with horizontal flips) from in-memory images, each labelled with
    its k-means group."""

    def __init__(self, images: list[torch.Tensor], crop: int):
        self.images, self.crop = images, crop

    def random_crop(self, rng: random.Random) -> torch.Tensor:
        img = self.images[rng.randrange(len(self.images))]
        top = rng.randrange(img.shape[1] - self.crop + 1)
        left = rng.randrange(img.shape[2] - self.crop + 1)
        x = img[:, top : top + self.crop, left : left + self.crop]
        return x.flip(-1) if rng.random() < 0.5 else x

    def fit_groups(self, k: int, seed: int, pool: int = 2048) -> dict:
        """k-means over the features of ``pool`` random crops; the JSON-able model."""
        rng = random.Random(f"groups/{seed}")
        feats = torch.stack([crop_features(self.random_crop(rng)) for _ in range(pool)])
        mean, std = feats.mean(0), feats.std(0).clamp(min=1e-6)
        gen = torch.Generator().manual_seed(seed)
        centres = kmeans((feats - mean) / std, k, gen)
        return {"mean": mean.tolist(), "std": std.tolist(), "centres": centres.tolist()}

    def group_batch(self, groups: dict, labels: list[int], rng: random.Random) -> torch.Tensor:
        """One crop per wanted label (rejection sampling, nearest group after 64 tries)."""
        mean, std = torch.tensor(groups["mean"]), torch.tensor(groups["std"])
        centres = torch.tensor(groups["centres"])
        out = []
        for want in labels:
            for _ in range(64):
                x = self.random_crop(rng)
                d = torch.cdist(((crop_features(x) - mean) / std)[None], centres)[0]
                if int(d.argmin()) == want:
                    break
            out.append(x)
        return torch.stack(out)

    def batch(self, size: int, rng: random.Random) -> torch.Tensor:
        return torch.stack([self.random_crop(rng) for _ in range(size)])


def image_loss(rec: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L1, 1 − (MS-)SSIM)``: MS-SSIM when the crop allows five scales, else SSIM."""
    from pytorch_msssim import ms_ssim, ssim

    l1 = (rec - ref).abs().mean()
    if min(ref.shape[-2:]) > 160:
        sim = ms_ssim(rec, ref, data_range=1.0)
    else:
        sim = ssim(rec, ref, data_range=1.0)
    return l1, 1 - sim


@torch.no_grad()
def refresh_dead_codes(
    model: AdaCode, x: torch.Tensor, labels: torch.Tensor, usage: torch.Tensor, rng
) -> int:
    """Re-seed codewords of codebook k unused since the last refresh (``usage[k] == 0``)
    with pre-quantization vectors of group-k crops in ``x``; returns how many."""
    z = model.encoder(x)
    replaced = 0
    for k, (proj, vq) in enumerate(zip(model.before_quant, model.quantizers, strict=True)):
        dead = torch.nonzero(usage[k] == 0).flatten()
        members = labels == k
        if dead.numel() == 0 or not members.any():
            continue
        vecs = proj(z[members]).permute(0, 2, 3, 1).reshape(-1, vq.embedding.weight.shape[1])
        pick = torch.randint(vecs.shape[0], (dead.numel(),), generator=rng)
        noise = 0.01 * vecs.std() * torch.randn(dead.numel(), vecs.shape[1], generator=rng)
        vq.embedding.weight[dead] = vecs[pick] + noise
        replaced += dead.numel()
    return replaced


# -- checkpoints -------------------------------------------------------------------


@dataclass
class TrainState:
    stage: int = 1
    step: int = 0  # within the current stage
    stage1_steps: int = 0
    seconds: float = 0.0  # total
    stage1_seconds: float = 0.0
    losses: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)


def save_checkpoint(out, model: AdaCode, opt, state: TrainState, args: dict) -> None:
    info = {
        "stage1_steps": state.stage1_steps if state.stage == 2 else state.step,
        "stage2_steps": state.step if state.stage == 2 else 0,
        "stage1_seconds": round(state.stage1_seconds if state.stage == 2 else state.seconds, 1),
        "seconds": round(state.seconds, 1),
        "losses": state.losses,
        "args": args,
    }
    save_model(model, out, {"training": json.dumps(info, sort_keys=True, default=str)})
    tensors, opt_meta = optimizer_to_tensors("opt", opt)
    write_training_state(
        out,
        STATE_FORMAT,
        tensors,
        {"state": json.dumps(asdict(state)), "optimizer": json.dumps(opt_meta)},
    )


def load_checkpoint(out, model: AdaCode) -> tuple[TrainState, dict, dict]:
    """``(state, optimizer tensors, optimizer metadata)``; loads weights into ``model``."""
    meta, tensors = resume_weights(
        out, model, load_model, STATE_FORMAT, "an inrkit M-AdaCode training state"
    )
    return TrainState(**json.loads(meta["state"])), tensors, json.loads(meta["optimizer"])


# -- the loop ----------------------------------------------------------------------


def _parse(argv) -> argparse.Namespace:
    p = ArgumentParser(
        prog="inrkit train adacode", description="Train an M-AdaCode image codec (two stages)."
    )
    p.add_argument("--data", required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument(
        "--crop", type=int, default=128, help="training crop size in pixels (default 128)"
    )
    p.add_argument(
        "--batch-size", type=int, default=8, help="crops per step and process (default 8)"
    )
    p.add_argument("--stage1-steps", type=int, default=4000, help="codebook-learning steps")
    p.add_argument("--stage2-steps", type=int, default=4000, help="weight/filler-learning steps")
    p.add_argument(
        "--time",
        type=float,
        default=None,
        help="total seconds; split between the stages in proportion to their steps",
    )
    p.add_argument("--seed", type=seed_type, default=0)
    p.add_argument(
        "--resume", action="store_true", help="continue from --out and its .train.safetensors"
    )
    p.add_argument("--codebooks", type=int, default=4, help="K base codebooks (default 4)")
    p.add_argument(
        "--codebook-size", type=int, default=256, help="codewords per codebook (default 256)"
    )
    p.add_argument("--code-dim", type=int, default=16)
    p.add_argument(
        "--widths", default="16,32,64,96", help="channels per level; 2**(n-1) downsampling"
    )
    p.add_argument("--res-blocks", type=int, default=1)
    p.add_argument("--weight-bits", type=int, default=4, help="bits per kept weight (default 4)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--refresh-every", type=int, default=50, help="stage-1 dead-codeword refresh period"
    )
    p.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
    p.add_argument("--log-every", type=int, default=100, help="print a progress line every N steps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar (progress lines stay)")
    args = p.parse_args(argv)
    for name in ("crop", "batch_size", "save_every", "log_every", "refresh_every", "codebooks"):
        if getattr(args, name) < 1:
            raise InputError(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    for name in ("stage1_steps", "stage2_steps"):
        if getattr(args, name) < 0:
            raise InputError(
                f"--{name.replace('_', '-')} must be non-negative, got {getattr(args, name)}"
            )
    if args.stage1_steps + args.stage2_steps == 0:
        raise InputError("--stage1-steps and --stage2-steps are both 0: nothing would be trained")
    require_positive(args, "lr", "time")
    try:
        args.widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise InputError(f"--widths takes comma-separated integers, got {args.widths!r}") from None
    return args


def _config(args) -> AdaCodeConfig:
    try:
        config = AdaCodeConfig(
            widths=args.widths,
            res_blocks=args.res_blocks,
            codebooks=args.codebooks,
            codebook_size=args.codebook_size,
            code_dim=args.code_dim,
            weight_bits=args.weight_bits,
        )
    except ValueError as exc:
        raise InputError(f"inrkit train adacode: {exc}") from None
    if args.crop % config.downsample:
        raise InputError(
            f"--crop {args.crop} must be a multiple of the downsampling {config.downsample}"
        )
    return config


def _checkpoint(rank: int, out, model: AdaCode, opt, state: TrainState, args: dict) -> None:
    if rank == 0:
        save_checkpoint(out, model, opt, state, args)


def train(args: argparse.Namespace) -> TrainState:
    with distributed() as (rank, world, device):
        return _train(args, rank, world, device)


def _optimizer(model: AdaCode, stage: int, lr: float) -> torch.optim.Optimizer:
    for vq in model.quantizers:
        vq.embedding.weight.requires_grad_(stage == 1)
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))


def _train(args, rank: int, world: int, device: torch.device) -> TrainState:
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    config = _config(args)
    config.extra = {"data": Path(args.data).name, "crop": args.crop}
    torch.manual_seed(args.seed)  # identical initial weights on every rank
    model = AdaCode(config).to(device)
    sampler = CropSampler(load_images(args.data, args.crop), args.crop)
    state = TrainState()
    opt_tensors = opt_meta = None
    if args.resume:
        state, opt_tensors, opt_meta = load_checkpoint(args.out, model)
    if not state.groups:
        state.groups = sampler.fit_groups(config.codebooks, args.seed)
    saved_args = {
        k: v for k, v in vars(args).items() if k not in ("resume", "no_progress", "threads")
    }
    saved_args["world_size"] = world
    started = time.monotonic() - state.seconds
    k = config.codebooks

    while state.stage <= 2:
        stage = state.stage
        steps = args.stage1_steps if stage == 1 else args.stage2_steps
        if args.time is None:
            budget = None
        elif stage == 1:
            total = args.stage1_steps + args.stage2_steps
            budget = args.time * (args.stage1_steps / total if total else 0.0)
        else:
            budget = args.time - state.stage1_seconds
        opt = _optimizer(model, stage, args.lr)
        if opt_tensors is not None:
            opt.load_state_dict(optimizer_from_tensors("opt", opt_tensors, opt_meta))
            opt_tensors = None
        net = model
        if world > 1:
            ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
            # Not every parameter gets a gradient every step (stage 2 draws m per
            # rank; stage 1 skips parts too: without this DDP fails at step 2), so
            # torch's first-step warning that none went unused is a false alarm.
            net = DistributedDataParallel(model, find_unused_parameters=True, **ddp_kwargs)
        net.train()
        usage = torch.zeros(k, config.codebook_size, dtype=torch.int64)
        stage_start = state.stage1_seconds if stage == 2 else 0.0
        bar = tqdm(
            total=steps,
            initial=state.step,
            disable=rank != 0 or args.no_progress,
            desc=f"adacode stage {stage}",
            unit="step",
        )
        last_saved = state.step
        try:
            while state.step < steps:
                step = state.step
                elapsed = time.monotonic() - started - stage_start
                progress = max(step / steps, elapsed / budget if budget else 0.0)
                for group in opt.param_groups:
                    group["lr"] = args.lr * (
                        0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0)))
                    )
                rng = random.Random(f"{args.seed}/{rank}/{stage}/{step}")
                torch.manual_seed(
                    args.seed * 1_000_003 + (stage * 10_000_000 + step) * world + rank
                )
                if stage == 1:
                    labels = [
                        (step * args.batch_size + i + rank) % k for i in range(args.batch_size)
                    ]
                    x = sampler.group_batch(state.groups, labels, rng).to(device)
                    groups = torch.tensor(labels, device=device)
                    out = net(x, groups=groups)
                    m = k
                else:
                    x = sampler.batch(args.batch_size, rng).to(device)
                    m = rng.randint(1, k)
                    out = net(x, m=m)
                l1, dssim = image_loss(out.image, x)
                vq = out.vq_loss.mean()
                loss = L1_WEIGHT * l1 + SSIM_WEIGHT * dssim + vq
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

                if stage == 1:
                    for j in range(k):
                        sel = out.indices[groups == j, j].flatten().cpu()
                        usage[j] += torch.bincount(sel, minlength=config.codebook_size)
                    if (step + 1) % args.refresh_every == 0 and step + 1 < steps:
                        if world > 1:
                            dist.all_reduce(usage)
                        gen = torch.Generator().manual_seed(args.seed * 7919 + step)
                        refresh_dead_codes(model, x, groups, usage, gen)
                        if world > 1:  # identical codebooks everywhere
                            for vq_ in model.quantizers:
                                dist.broadcast(vq_.embedding.weight.data, 0)
                        usage.zero_()
                mse = F.mse_loss(out.image.detach().clamp(0, 1), x).item()
                logs = {
                    "l1": l1.item(),
                    "dssim": dssim.item(),
                    "vq": vq.item(),
                    "psnr": -10 * math.log10(max(mse, 1e-10)),
                    "m": m,
                }
                seconds = time.monotonic() - started
                state.step, state.seconds, state.losses = step + 1, seconds, logs
                bar.update(1)
                bar.set_postfix({k_: f"{v:.3f}" for k_, v in logs.items()}, refresh=False)
                if rank == 0 and state.step % args.log_every == 0:
                    bar.write(
                        f"stage {stage} step {state.step}/{steps} {seconds:.0f}s "
                        + " ".join(f"{k_} {v:.4g}" for k_, v in logs.items())
                    )
                stop = budget is not None and seconds - stage_start >= budget
                if world > 1:
                    flag = torch.tensor([float(stop)], device=device)
                    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                    stop = bool(flag.item())
                if state.step - last_saved >= args.save_every:
                    _checkpoint(rank, args.out, model, opt, state, saved_args)
                    last_saved = state.step
                if stop:
                    break
        except KeyboardInterrupt:
            bar.close()
            if rank == 0:
                print(
                    f"\ninterrupted in stage {stage} at step {state.step}; saving {args.out}",
                    file=sys.stderr,
                )
            _checkpoint(rank, args.out, model, opt, state, saved_args)
            raise
        bar.close()
        if stage == 1:
            state = TrainState(
                2, 0, state.step, state.seconds, state.seconds, state.losses, state.groups
            )
            _checkpoint(rank, args.out, model, _optimizer(model, 2, args.lr), state, saved_args)
        else:
            _checkpoint(rank, args.out, model, opt, state, saved_args)
            break
    return state


def main(argv: list[str] | None = None) -> int:
    """``inrkit train adacode ...``; returns the exit code."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    check_output(args.out, args.data)
    try:
        state = train(args)
    except KeyboardInterrupt:
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in state.losses.items())
        print(
            f"trained {state.stage1_steps} + {state.step} steps in {state.seconds:.0f} s "
            f"(stage 1: {state.stage1_seconds:.0f} s); wrote {args.out} ({losses})"
        )
    return 0


if __name__ == "__main__":  # torchrun -m inrkit.inr.train.adacode: errors as `inrkit train` prints them
    from inrkit.arguments import run_command

    sys.exit(run_command(main, sys.argv[1:]))
