"""Training VC-INR: meta-learning the gated SIREN, then one latent prior per λ.

Schwarz et al., "Modality-Agnostic Variational Compression of Implicit Neural
Representations", ICML 2023 (arXiv:2301.09479); meta-learning as in COIN++ (Dupont et
al. 2022, github.com/EmilienDupont/coinpp, ``coinpp/metalearning.py``). Two stages:

1. **Meta-learning** (``--steps`` outer steps): a batch of random patches of the training
   files, the Meta-SGD inner loop (``--inner-steps``, second order through the unrolled
   steps), and Adam (``--lr``) on the mean squared error after the inner loop, updating
   the base network, the gate network, ``φ0`` and the per-dimension rates ``α``.
2. **Latent priors**: the inner loop fits latents to ``--crops`` random crops of
   ``--crop`` patches per side (per process), the paper's "dataset of latent
   representations"; then for each λ of ``--lambdas`` a :class:`~inrkit.inr.learned.vcinr.LatentPrior`
   trains for ``--prior-steps`` on ``R + λ·255²·MSE`` (CompressAI's convention, with
   the MSE on ``[0, 1]``; audio's ``[-1, 1]`` samples count as the same scale), ``R`` in
   bits per sample of the grid, the distortion measured in data space by decoding
   ``φ̂ = g_s(ŷ)`` through the frozen base network; the entropy bottleneck's quantiles
   learn from CompressAI's auxiliary loss. Each finished prior is frozen to integer
   tables (:meth:`~inrkit.inr.learned.vcinr.LatentPrior.freeze`).

``--retrain-priors`` keeps the meta-learned networks of ``--out`` and runs stage 2 again
(the λs may change); ``--time`` then budgets stage 2 alone. ``--continue-meta`` keeps
them and their outer Adam moments, meta-learns ``--steps`` more steps on patches the
earlier run did not draw, and then runs stage 2 anew; ``--time`` budgets both.

Departures, for CPU budgets: the distortion of stage 2 is estimated on ``--points``
random points per patch, not all of them; before the first λ, ``g_a``/``g_s`` are warmed
up for ``--prior-warmup`` cheap latent-space steps (``g_s(g_a(φ) + U(-½, ½)) ≈ φ``),
and each later λ starts from the previous λ's prior — with a few hundred data-space
steps per λ, transforms trained from scratch lost 6 dB of the 25.5 dB the latents
themselves reach on kodim07; ``--time`` splits a wall-clock budget 70/30
between the stages (after the warm-up, each λ gets an equal share of the rest;
collecting the latents and the warm-up are fixed costs, so a budget shorter than
they are overshoots, and it is checked between steps).
Multi-process training (torchrun) averages gradients with ``all_reduce`` after each
backward pass instead of wrapping the model in DistributedDataParallel, whose hooks
expect one forward per backward, not a MAML inner loop; each process draws its own
patches and crops.
Files are mixed down per channel for audio (each channel is a mono item) and resampled
to ``--sample-rate``; grayscale images are repeated to RGB and alpha is dropped.

Run ``inrkit train vcinr --modality image --data DIR --out model.safetensors``;
multi-process: ``torchrun --nproc-per-node 2 -m inrkit.inr.train.vcinr ...``. The
training state (optimizer moments, counters) is saved beside the model in
safetensors, so ``--resume`` continues where a run stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from inrkit.arguments import ArgumentParser, seed_type
from inrkit.errors import InputError, ModelError
from inrkit.inr.learned.vcinr import TRANSFORMS, VCINR, VCINRConfig, load_model, save_model
from inrkit.inr.model_files import read_metadata

from .common import (
    check_output,
    distributed,
    optimizer_from_tensors,
    optimizers_to_tensors,
    read_training_state,
    require_positive,
    resume_weights,
    training_state_path,
    write_training_state,
)

STATE_FORMAT = "inrkit-vcinr-train"
META_SHARE = 0.7  # of --time for stage 1

# -- data ------------------------------------------------------------------------------------


def load_items(data_dir, modality: str, sample_rate: int = 0) -> list[torch.Tensor]:
    """Every training item under ``data_dir`` as values ``[*grid, C]`` in ``[-1, 1]``:
    RGB images (grayscale repeated, alpha dropped), or mono audio channels ``[N, 1]``
    at ``sample_rate``."""
    from inrkit.datasets import load
    from inrkit.datasets.folders import list_media
    from inrkit.inr.learned.rvqgan import resample

    items = []
    for path in list_media(data_dir, modality=modality):  # InputError when there are none
        signal = load(path)
        if modality == "image":
            v = signal.to_values()
            v = v[..., :1].expand(*v.shape[:-1], 3) if v.shape[-1] < 3 else v[..., :3]
            items.append(v.contiguous())
        else:
            audio = resample(signal.data, int(signal.sample_rate), sample_rate)
            items += [ch[:, None].clamp(-1, 1) for ch in audio if ch.abs().max() > 0]
    if not items:
        raise InputError(f"no usable {modality} files under {str(data_dir)!r}")
    return items


def random_crop(
    items: list[torch.Tensor], shape: tuple[int, ...], rng: random.Random
) -> torch.Tensor:
    """A crop ``[*shape, C]`` of an item drawn with probability ∝ its size, replicate-padded
    where the item is smaller than ``shape``."""
    sizes = [math.prod(v.shape[:-1]) for v in items]
    item = items[rng.choices(range(len(items)), weights=sizes)[0]]
    for axis, n in enumerate(shape):
        start = rng.randrange(max(1, item.shape[axis] - n + 1))
        index = torch.arange(start, start + n).clamp(max=item.shape[axis] - 1)
        item = item.index_select(axis, index)
    return item


# -- checkpoints -----------------------------------------------------------------------------


@dataclass
class TrainState:
    stage: str = "meta"  # "meta", "prior" or "done"
    step: int = 0  # within the stage (meta) or the current prior
    prior: int = 0  # index of the prior being trained
    seconds: float = 0.0
    meta_seconds: float = 0.0  # how long the meta-learning stage took
    budget_start: float = 0.0  # where --time counts from (the earlier run's end, if any)
    meta_round: int = 0  # 1 + the number of --continue-meta runs that built on this model
    losses: dict = field(default_factory=dict)


def save_checkpoint(out, model: VCINR, optimizers: dict, state: TrainState, args: dict) -> None:
    info = {"state": asdict(state), "args": args}
    save_model(model, out, {"training": json.dumps(info, sort_keys=True, default=str)})
    tensors, meta = optimizers_to_tensors(optimizers)
    write_training_state(
        out,
        STATE_FORMAT,
        tensors,
        {"state": json.dumps(asdict(state)), "optimizers": json.dumps(meta)},
    )


def load_checkpoint(out, model: VCINR) -> tuple[TrainState, dict, dict]:
    """Weights into ``model``; returns the state and the optimizer tensors and metadata."""
    meta, tensors = resume_weights(out, model, load_model, STATE_FORMAT, "a VC-INR training state")
    return TrainState(**json.loads(meta["state"])), tensors, json.loads(meta["optimizers"])


# -- arguments -------------------------------------------------------------------------------


def _parse(argv) -> argparse.Namespace:
    p = ArgumentParser(prog="inrkit train vcinr", description="Train a VC-INR model.")
    p.add_argument("--modality", required=True, choices=("image", "audio"))
    p.add_argument("--data", required=True, help="folder of training files (searched recursively)")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument(
        "--patch", type=int, default=None, help="patch side (image 32) or length (audio 256)"
    )
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=3, help="gated hidden layers")
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--w0", type=float, default=30.0)
    p.add_argument("--sample-rate", type=int, default=44100, help="audio models only")
    p.add_argument("--steps", type=int, default=20000, help="meta-learning steps")
    p.add_argument("--batch-size", type=int, default=16, help="patches per meta step and process")
    p.add_argument("--lr", type=float, default=1e-4, help="outer Adam learning rate")
    p.add_argument("--inner-steps", type=int, default=3)
    p.add_argument("--inner-lr", type=float, default=0.1, help="initial Meta-SGD rate")
    p.add_argument("--lambdas", default="0.002,0.008,0.032")
    p.add_argument("--prior-steps", type=int, default=2000, help="steps per λ")
    p.add_argument("--prior-lr", type=float, default=1e-3)
    p.add_argument(
        "--prior-warmup", type=int, default=1000, help="latent-space steps before the first λ"
    )
    p.add_argument("--prior-batch", type=int, default=8, help="crops per prior step and process")
    p.add_argument(
        "--transform",
        choices=TRANSFORMS,
        default="residual",
        help="g_a/g_s of the priors: a linear skip plus a conv body, or the plain conv stacks",
    )
    p.add_argument(
        "--crop", type=int, default=None, help="patches per side of a crop (image 8, audio 32)"
    )
    p.add_argument("--crops", type=int, default=64, help="crops whose latents train the priors")
    p.add_argument(
        "--points", type=int, default=128, help="points per patch for the prior's distortion"
    )
    p.add_argument(
        "--time", type=float, default=None,
        help="wall-clock seconds for both stages: meta-learning stops at 70 %%; collecting the "
        "latents and warming up the transforms are fixed costs taken from the rest, so a short "
        "budget overshoots (checked between steps)",
    )  # fmt: skip
    p.add_argument("--seed", type=seed_type, default=0)
    p.add_argument(
        "--retrain-priors",
        action="store_true",
        help="keep the meta-learned networks of --out and train its priors anew "
        "(--lambdas and --transform may change)",
    )
    p.add_argument(
        "--continue-meta",
        action="store_true",
        help="keep the meta-learned networks of --out and their Adam state, meta-learn "
        "--steps more steps on new patches, then train the priors anew",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from --out and its .train.safetensors"
    )
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for name in (
        "steps",
        "batch_size",
        "prior_steps",
        "prior_batch",
        "crops",
        "points",
        "save_every",
    ):
        if getattr(args, name) < 1:
            raise InputError(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    try:
        args.lambda_values = tuple(sorted(float(v) for v in args.lambdas.split(",")))
    except ValueError:
        raise InputError(f"--lambdas takes comma-separated numbers, got {args.lambdas!r}") from None
    if args.prior_warmup < 0:
        raise InputError(f"--prior-warmup must be >= 0, got {args.prior_warmup}")
    chosen = [f for f in ("resume", "retrain_priors", "continue_meta") if getattr(args, f)]
    if len(chosen) > 1:
        flags = " and ".join("--" + f.replace("_", "-") for f in chosen)
        raise InputError(f"{flags} exclude each other")
    require_positive(args, "lr", "inner_lr", "prior_lr", "w0", "time")
    image = args.modality == "image"
    args.patch = args.patch or (32 if image else 256)
    args.crop = args.crop or (8 if image else 32)
    return args


def _config(args) -> VCINRConfig:
    image = args.modality == "image"
    return VCINRConfig(
        modality=args.modality,
        channels=3 if image else 1,
        patch=(args.patch, args.patch) if image else (args.patch,),
        width=args.width,
        depth=args.depth,
        latent_dim=args.latent_dim,
        rank=args.rank,
        gate_hidden=args.width,
        w0=args.w0,
        inner_steps=args.inner_steps,
        inner_lr=args.inner_lr,
        sample_rate=0 if image else args.sample_rate,
        lambdas=args.lambda_values,
        transform=args.transform,
    )


# -- the loops -------------------------------------------------------------------------------


def _average_gradients(params, world: int) -> None:
    if world == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


def _agree(flag: bool, world: int) -> bool:
    if world == 1:
        return flag
    t = torch.tensor([float(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def train(args: argparse.Namespace) -> TrainState:
    with distributed() as (rank, world, _):
        return _train(args, rank, world)


def _train(args, rank: int, world: int) -> TrainState:
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    config = _config(args)
    torch.manual_seed(args.seed)  # identical initial weights on every rank
    model = VCINR(config)
    meta_params = [p for n, p in model.named_parameters() if not n.startswith("priors.")]
    optimizers = {"meta": torch.optim.Adam(meta_params, lr=args.lr)}
    state = TrainState()
    opt_tensors: dict[str, torch.Tensor] = {}
    opt_meta: dict[str, Any] = {}
    if args.resume:
        state, opt_tensors, opt_meta = load_checkpoint(args.out, model)
        if "meta" in opt_meta:
            optimizers["meta"].load_state_dict(
                optimizer_from_tensors("meta", opt_tensors, opt_meta["meta"])
            )
    elif args.retrain_priors:
        meta_seconds, saved = _load_meta_learned(args.out, model)
        # carried into the new training state, so --continue-meta can build on this run
        if training_state_path(args.out).is_file():
            _load_meta_moments(args.out, optimizers["meta"])
        state = TrainState(
            stage="prior",
            seconds=meta_seconds,
            meta_seconds=meta_seconds,
            budget_start=meta_seconds,
            meta_round=int(saved.get("meta_round", 0)),
        )
    elif args.continue_meta:
        meta_seconds, saved = _load_meta_learned(args.out, model)
        if saved.get("stage", "done") == "meta":
            raise InputError(f"{str(args.out)!r} is still in its meta-learning stage: use --resume")
        if not _load_meta_moments(args.out, optimizers["meta"]) and rank == 0:
            print(
                f"note: the training state of {str(args.out)!r} holds no meta-learning Adam "
                "moments; the outer Adam starts anew",
                file=sys.stderr,
            )
        state = TrainState(
            stage="meta",
            seconds=meta_seconds,
            budget_start=meta_seconds,
            meta_round=int(saved.get("meta_round", 0)) + 1,
        )
    items = load_items(args.data, args.modality, config.sample_rate)
    if not any(all(n >= p for n, p in zip(v.shape[:-1], config.patch, strict=True)) for v in items):
        largest = max(items, key=lambda v: v.shape[:-1].numel()).shape[:-1]
        raise InputError(
            f"--patch {'×'.join(map(str, config.patch))} is larger than every training item "
            f"(the largest is {'×'.join(map(str, largest))}): every patch would be mostly padding"
        )
    saved_args = {
        k: v
        for k, v in vars(args).items()
        if k not in ("resume", "retrain_priors", "no_progress", "threads")
    }
    saved_args["world_size"] = world
    started = time.monotonic() - state.seconds
    quiet = rank != 0 or args.no_progress

    def elapsed() -> float:
        return time.monotonic() - started

    def checkpoint() -> None:
        state.seconds = elapsed()
        if rank == 0:
            save_checkpoint(args.out, model, optimizers, state, saved_args)

    try:
        if state.stage == "meta":
            _meta_stage(args, model, meta_params, optimizers["meta"], items, state, rank, world,
                        elapsed, checkpoint, tqdm, quiet)  # fmt: skip
            state.stage, state.step, state.meta_seconds = "prior", 0, elapsed()
            checkpoint()
        if state.stage == "prior":
            _prior_stage(args, model, optimizers, opt_tensors, opt_meta, items, state, rank, world,
                         elapsed, checkpoint, tqdm, quiet)  # fmt: skip
            state.stage = "done"
    except KeyboardInterrupt:
        if rank == 0:
            print(
                f"\ninterrupted in stage {state.stage} at step {state.step}; saving {args.out}",
                file=sys.stderr,
            )
    checkpoint()
    return state


class _StepLog:
    """The end of every step in both stages: count it, show its losses on the progress
    bar, write a checkpoint every ``--save-every`` steps, and agree across processes on
    whether the stage's deadline has passed."""

    def __init__(self, bar, state: TrainState, save_every: int, checkpoint, elapsed,
                 deadline: float | None, world: int):  # fmt: skip
        self.bar, self.state, self.save_every = bar, state, save_every
        self.checkpoint, self.elapsed = checkpoint, elapsed
        self.deadline, self.world = deadline, world
        self.last_saved = state.step

    def __enter__(self) -> _StepLog:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def step_done(self, losses: dict[str, float]) -> bool:
        """Record a finished step; True when the stage should stop for its deadline."""
        state = self.state
        state.step += 1
        state.losses = losses
        self.bar.update(1)
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if state.step - self.last_saved >= self.save_every:
            self.checkpoint()
            self.last_saved = state.step
        return _agree(self.deadline is not None and self.elapsed() >= self.deadline, self.world)


def _meta_stage(
    args, model, params, opt, items, state, rank, world, elapsed, checkpoint, tqdm, quiet
):
    cfg = model.config
    deadline = None if args.time is None else state.budget_start + META_SHARE * args.time
    bar = tqdm(total=args.steps, initial=state.step, disable=quiet, desc="vcinr meta", unit="step")
    with _StepLog(bar, state, args.save_every, checkpoint, elapsed, deadline, world) as log:
        while state.step < args.steps:
            # Seeded per step and rank, so a resumed run sees the data an unbroken one would.
            # Each --continue-meta round draws patches of its own.
            stream = "meta" if state.meta_round == 0 else f"meta{state.meta_round}"
            rng = random.Random(f"{args.seed}/{rank}/{stream}/{state.step}")
            target = torch.stack(
                [random_crop(items, cfg.patch, rng) for _ in range(args.batch_size)]
            )
            target = target.reshape(args.batch_size, cfg.patch_points, cfg.channels)
            phi = model.inner_loop(target, create_graph=True)
            loss = model.patch_mse(phi, target).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            _average_gradients(params, world)
            opt.step()
            mse = loss.item()
            if log.step_done({"mse": mse, "psnr": 10 * math.log10(4 / max(mse, 1e-12))}):
                break


@torch.no_grad()
def collect_latents(args, model, items, rank) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent grids ``[K, d, *crop_grid]`` and target patches ``[K, P, n, C]`` of ``--crops``
    random crops of ``--crop`` patches per side."""
    cfg = model.config
    rng = random.Random(f"{args.seed}/{rank}/crops")
    shape = tuple(p * args.crop for p in cfg.patch)
    crops = torch.stack([random_crop(items, shape, rng) for _ in range(args.crops)])
    latents = torch.cat([model.fit(part) for part in crops.split(4)])
    return latents, model.to_patches(crops)


def _warm_up_transforms(args, prior, latents: torch.Tensor, rank: int, world: int) -> None:
    """``--prior-warmup`` steps of ``g_s(g_a(φ) + U(-½, ½)) ≈ φ`` in latent space (no rate,
    no rendering: cheap), so the rate–distortion steps start from transforms that already
    pass the latents through."""
    params = [*prior.g_a.parameters(), *prior.g_s.parameters()]
    opt = torch.optim.Adam(params, lr=args.prior_lr)
    g = torch.Generator().manual_seed(args.seed * 7919 + rank)
    for _ in range(args.prior_warmup):
        phi = latents[torch.randint(len(latents), (args.prior_batch,), generator=g)]
        y = prior.g_a(phi)
        noise = torch.rand(y.shape, generator=g) - 0.5
        loss = (prior.g_s(y + noise) - phi).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        _average_gradients(params, world)
        opt.step()


def _load_meta_learned(out, model: VCINR) -> tuple[float, dict]:
    """The meta-learned networks of ``out`` into ``model`` (whose λs and transforms may
    differ); returns the seconds their training took (that run's total if it did not
    record them) and the training state saved in the model file."""
    saved, _ = load_model(out)
    mine = model.config
    if dataclasses.replace(saved.config, lambdas=mine.lambdas, transform=mine.transform) != mine:
        raise ModelError(f"{str(out)!r} was trained with a different config: {saved.config}")
    shared = {k: v for k, v in saved.state_dict().items() if not k.startswith("priors.")}
    model.load_state_dict(shared, strict=False)  # only the priors' entries are missing
    info = json.loads(read_metadata(out).get("training", "{}")).get("state", {})
    return float(info.get("meta_seconds") or info.get("seconds", 0.0)), info


def _load_meta_moments(out, opt: torch.optim.Optimizer) -> bool:
    """The outer Adam state of ``out``'s training state into ``opt``; False when that state
    holds none (a run whose meta stage never stepped)."""
    training, tensors = read_training_state(out, STATE_FORMAT, "a VC-INR training state")
    meta = json.loads(training.get("optimizers", "{}")).get("meta")
    if meta is None or not any(k.startswith("meta.") for k in tensors):
        return False
    opt.load_state_dict(optimizer_from_tensors("meta", tensors, meta))
    return True


def prior_deadline(start: float, end: float | None, first: int, i: int, n: int) -> float | None:
    """When prior ``i`` of ``n`` must stop: the priors ``first..n-1`` still to train share
    the time from ``start`` to ``end`` equally (None: no budget)."""
    if end is None:
        return None
    return start + max(0.0, end - start) * (i + 1 - first) / (n - first)


def _prior_stage(args, model, optimizers, opt_tensors, opt_meta, items, state, rank, world,
                 elapsed, checkpoint, tqdm, quiet):  # fmt: skip
    cfg = model.config
    model.requires_grad_(False)
    latents, targets = collect_latents(args, model, items, rank)
    n_points = min(args.points, cfg.patch_points)
    start_time, lambdas, first = elapsed(), cfg.lambdas, state.prior
    # --time counts from the start of training; with --retrain-priors (and when such a run
    # is resumed) from the end of the meta stage.
    end = None if args.time is None else args.time + state.budget_start
    while state.prior < len(lambdas):
        i, lam = state.prior, lambdas[state.prior]
        prior = model.priors[i]
        if i > 0 and state.step == 0:  # warm start from the previous λ's prior
            for mine, previous in zip(
                prior.parameters(), model.priors[i - 1].parameters(), strict=True
            ):
                mine.data.copy_(previous.data)
        prior.requires_grad_(True)
        main = [p for n, p in prior.named_parameters() if not n.endswith("quantiles")]
        opt = torch.optim.Adam(main, lr=args.prior_lr)
        aux = torch.optim.Adam([prior.entropy_bottleneck.quantiles], lr=1e-3)
        if state.step > 0 and f"prior{i}" in opt_meta:  # resuming inside this prior
            opt.load_state_dict(
                optimizer_from_tensors(f"prior{i}", opt_tensors, opt_meta[f"prior{i}"])
            )
            aux.load_state_dict(optimizer_from_tensors(f"aux{i}", opt_tensors, opt_meta[f"aux{i}"]))
        optimizers.update({f"prior{i}": opt, f"aux{i}": aux})
        if i == 0 and state.step == 0:
            _warm_up_transforms(args, prior, latents, rank, world)
            start_time = elapsed()  # the warm-up is nobody's share
        deadline = prior_deadline(start_time, end, first, i, len(lambdas))
        bar = tqdm(
            total=args.prior_steps, initial=state.step, disable=quiet, desc=f"vcinr prior λ={lam:g}"
        )
        prior.train()
        with _StepLog(bar, state, args.save_every, checkpoint, elapsed, deadline, world) as log:
            while state.step < args.prior_steps:
                g = torch.Generator().manual_seed(
                    hash((args.seed, rank, i, state.step)) % (1 << 62)
                )
                idx = torch.randint(len(latents), (args.prior_batch,), generator=g)
                points = torch.randperm(cfg.patch_points, generator=g)[:n_points]
                phi_hat, bits = prior(latents[idx])
                rec = model.render(model.latent_list(phi_hat), model.coords[points])
                target = targets[idx][:, :, points].reshape(rec.shape)
                mse = (rec - target).square().mean() / 4  # on the [0, 1] scale
                bpp = bits.mean() / targets[0, :, :, 0].numel()
                loss = bpp + lam * 255**2 * mse
                opt.zero_grad(set_to_none=True)
                loss.backward()
                aux.zero_grad(set_to_none=True)
                prior.aux_loss().backward()
                _average_gradients(list(prior.parameters()), world)
                opt.step()
                aux.step()
                psnr = 10 * math.log10(1 / max(mse.item(), 1e-12))
                if log.step_done({"bpp": bpp.item(), "psnr": psnr}):
                    break
        prior.eval()
        prior.requires_grad_(False)
        prior.freeze()
        state.prior, state.step = i + 1, 0
        checkpoint()


def main(argv: list[str] | None = None) -> int:
    """``inrkit train vcinr ...``; returns the exit code."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    check_output(args.out, args.data)
    state = train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        losses = ", ".join(f"{k} {v:.3f}" for k, v in state.losses.items())
        print(
            f"trained VC-INR ({state.stage}) in {state.seconds:.0f} s; wrote {args.out} ({losses})"
        )
    return 0


if __name__ == "__main__":  # torchrun -m inrkit.inr.train.vcinr: errors as `inrkit train` prints them
    from inrkit.arguments import run_command

    sys.exit(run_command(main, sys.argv[1:]))
