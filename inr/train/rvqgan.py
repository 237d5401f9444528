"""Training the RVQGAN codec: discriminators, losses and a resumable DDP training loop.

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN", NeurIPS 2023
(arXiv:2306.06546); reference code github.com/descriptinc/descript-audio-codec,
``dac/model/discriminator.py``, ``dac/nn/loss.py``, ``scripts/train.py`` and
``conf/final/44khz.yml``. Followed:

- multi-period discriminator (periods 2, 3, 5, 7, 11; HiFi-GAN's MPD) and multi-band
  complex-STFT discriminator (windows 2048, 1024, 512, hop ¼ window, bands
  0–0.1–0.25–0.5–0.75–1 of the spectrum, 32 channels), weight norm, LeakyReLU(0.1),
  input DC removal and peak normalisation to 0.8;
- least-squares GAN losses and L1 feature matching over every layer but the last;
- multi-scale log-mel L1 loss (windows 32…2048, 5…320 mels, hop ¼ window,
  clamp 1e-5, power 1, Slaney mel filters as librosa makes them);
- loss weights mel 15, feature matching 2, adversarial 1, commitment 0.25,
  codebook 1; AdamW (lr 1e-4, betas 0.8/0.99) and ExponentialLR (γ = 0.999996) for
  both networks; gradient-norm clipping at 1000 (generator) and 10 (discriminator);
  0.38 s segments, discriminator updated first on each batch.

Departures, all to let a small model train on a CPU: the discriminator width is a
``disc_width`` fraction of DAC's (1.0 = DAC); ``gan_start`` optionally trains on the
mel and VQ losses alone for the first steps (0 = DAC); fake and real audio go through
the discriminator in one concatenated batch (one forward per backward, as
DistributedDataParallel wants). STFTs are ``torch.stft`` with ``center=True`` instead
of audiotools' stride-matched padding. Data augmentation is DAC's postprocess chain
simplified: RMS (not LUFS) normalisation to -16 dB, peak rescaling, and random
polarity (a sign flip, audiotools' ``InvertPhase``) in place of DAC's ``ShiftPhase``,
a uniform random phase rotation of the STFT.
Files are mixed down per channel (each channel is a mono example) and resampled to
the model rate. Checkpoints are safetensors (weights, optimizer and scheduler
state), never pickle.

Run ``inrkit train rvqgan --data DIR --out model.safetensors`` (or this module's
:func:`main`); multi-process: ``torchrun --nproc-per-node 2 -m inrkit.inr.train.rvqgan``.
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
from typing import cast

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.parametrizations import weight_norm

from inrkit.arguments import ArgumentParser, seed_type
from inrkit.errors import InputError, ModelError
from inrkit.inr.learned.rvqgan import (
    LEVEL_DB,
    RVQGAN,
    RVQGANConfig,
    load_model,
    resample,
    save_model,
)

from .common import (
    check_output,
    distributed,
    optimizer_from_tensors,
    optimizers_to_tensors,
    require_positive,
    resume_weights,
    training_state_path,
    write_training_state,
)

STATE_FORMAT = "inrkit-rvqgan-train"

# -- discriminators -------------------------------------------------------------


def _wn_conv2d(*args, act: bool = True, **kwargs) -> nn.Module:
    conv = weight_norm(nn.Conv2d(*args, **kwargs))
    return nn.Sequential(conv, nn.LeakyReLU(0.1)) if act else conv


def _width(channels: int, scale: float) -> int:
    return max(1, round(channels * scale))


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's MPD sub-discriminator: the waveform folded into ``[N/p, p]`` frames."""

    def __init__(self, period: int, width: float = 1.0):
        super().__init__()
        self.period = period
        chans = [1] + [_width(c, width) for c in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            _wn_conv2d(cin, cout, (5, 1), (3, 1) if i < 4 else 1, padding=(2, 0))
            for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:], strict=True))
        )
        self.conv_post = _wn_conv2d(chans[-1], 1, (3, 1), padding=(1, 0), act=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.pad(x, (0, self.period - x.shape[-1] % self.period), mode="reflect")
        x = x.reshape(x.shape[0], 1, -1, self.period)
        fmap = []
        for layer in self.convs:
            x = layer(x)
            fmap.append(x)
        fmap.append(self.conv_post(x))
        return fmap


BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


class BandDiscriminator(nn.Module):
    """DAC's multi-band complex-STFT sub-discriminator (``MRD``) at one window length."""

    def __init__(self, window_length: int, width: float = 1.0, bands=BANDS):
        super().__init__()
        self.window_length = window_length
        self.hop_length = window_length // 4
        n_bins = window_length // 2 + 1
        self.bands = [(int(lo * n_bins), int(hi * n_bins)) for lo, hi in bands]
        ch = _width(32, width)

        def stack() -> nn.ModuleList:
            return nn.ModuleList(
                [
                    _wn_conv2d(2, ch, (3, 9), (1, 1), padding=(1, 4)),
                    _wn_conv2d(ch, ch, (3, 9), (1, 2), padding=(1, 4)),
                    _wn_conv2d(ch, ch, (3, 9), (1, 2), padding=(1, 4)),
                    _wn_conv2d(ch, ch, (3, 9), (1, 2), padding=(1, 4)),
                    _wn_conv2d(ch, ch, (3, 3), (1, 1), padding=(1, 1)),
                ]
            )

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = _wn_conv2d(ch, 1, (3, 3), (1, 1), padding=(1, 1), act=False)
        self.register_buffer("window", torch.hann_window(window_length), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        spec = torch.stft(
            x.squeeze(1),
            self.window_length,
            self.hop_length,
            window=self.window,
            return_complex=True,
        )
        spec = torch.view_as_real(spec).permute(0, 3, 2, 1)  # B, 2 (re/im), T, F
        fmap, outs = [], []
        for (lo, hi), stack in zip(self.bands, self.band_convs, strict=True):
            band = spec[..., lo:hi]
            for layer in stack:  # type: ignore[attr-defined]  # an nn.ModuleList
                band = layer(band)
                fmap.append(band)
            outs.append(band)
        fmap.append(self.conv_post(torch.cat(outs, dim=-1)))
        return fmap


class Discriminator(nn.Module):
    """MPD + multi-band STFT discriminators; returns one feature-map list per sub-discriminator."""

    def __init__(
        self,
        periods: tuple[int, ...] = (2, 3, 5, 7, 11),
        fft_sizes: tuple[int, ...] = (2048, 1024, 512),
        width: float = 1.0,
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(p, width) for p in periods]
            + [BandDiscriminator(n, width) for n in fft_sizes]
        )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        x = x - x.mean(dim=-1, keepdim=True)
        x = 0.8 * x / (x.abs().amax(dim=-1, keepdim=True) + 1e-9)
        return [d(x) for d in self.discriminators]


# -- losses ----------------------------------------------------------------------


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    mel = f / f_sp
    log_region = f >= min_log_hz
    mel[log_region] = min_log_hz / f_sp + np.log(f[log_region] / min_log_hz) / logstep
    return mel


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    f = f_sp * m
    min_log_mel = min_log_hz / f_sp
    log_region = m >= min_log_mel
    f[log_region] = min_log_hz * np.exp(logstep * (m[log_region] - min_log_mel))
    return f


def mel_filters(
    sample_rate: float, n_fft: int, n_mels: int, fmin: float = 0.0, fmax=None
) -> torch.Tensor:
    """Slaney-normalised triangular mel filters ``[n_mels, n_fft // 2 + 1]`` (= librosa.filters.mel)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([fmax]))[0], n_mels + 2)
    )
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


class MelLoss(nn.Module):
    """DAC's multi-scale mel loss: sum over scales of ``L1(log10 mel(x), log10 mel(y))``."""

    def __init__(
        self,
        sample_rate: int,
        n_mels: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320),
        window_lengths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048),
        clamp_eps: float = 1e-5,
    ):
        super().__init__()
        self.window_lengths = window_lengths
        self.clamp_eps = clamp_eps
        for w, m in zip(window_lengths, n_mels, strict=True):
            self.register_buffer(f"mel_{w}", mel_filters(sample_rate, w, m), persistent=False)
            self.register_buffer(f"window_{w}", torch.hann_window(w), persistent=False)

    def log_mel(self, x: torch.Tensor, w: int) -> torch.Tensor:
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]),
            w,
            w // 4,
            window=getattr(self, f"window_{w}"),
            return_complex=True,
        )
        mel = getattr(self, f"mel_{w}") @ spec.abs()
        return mel.clamp(min=self.clamp_eps).log10()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, sum(F.l1_loss(self.log_mel(x, w), self.log_mel(y, w)) for w in self.window_lengths))


def discriminator_loss(d_fake, d_real) -> torch.Tensor:
    """Least-squares GAN loss of the discriminator (fakes → 0, reals → 1)."""
    return cast(torch.Tensor, sum(
        torch.mean(f[-1] ** 2) + torch.mean((1 - r[-1]) ** 2)
        for f, r in zip(d_fake, d_real, strict=True)
    ))


def generator_losses(d_fake, d_real) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares adversarial loss and L1 feature matching (all layers but the output)."""
    adv = sum(torch.mean((1 - f[-1]) ** 2) for f in d_fake)
    feat = sum(
        F.l1_loss(ff, rr.detach())
        for f, r in zip(d_fake, d_real, strict=True)
        for ff, rr in zip(f[:-1], r[:-1], strict=True)
    )
    return cast(torch.Tensor, adv), cast(torch.Tensor, feat)


def _split(maps, n: int):
    """Feature maps of a concatenated ``[fake; real]`` batch → (fake maps, real maps)."""
    return [[m[:n] for m in d] for d in maps], [[m[n:] for m in d] for d in maps]


# -- data ------------------------------------------------------------------------


def load_clips(data_dir: str | os.PathLike, sample_rate: int) -> list[torch.Tensor]:
    """Every channel of every audio file under ``data_dir``, resampled, as 1-D tensors."""
    from inrkit.datasets import load
    from inrkit.datasets.folders import list_media

    clips = []
    for path in list_media(data_dir, modality="audio"):  # InputError when there are none
        sig = load(path)
        if sig.modality != "audio":
            continue
        audio = resample(sig.data, int(sig.sample_rate), sample_rate)
        clips += [channel for channel in audio if channel.abs().max() > 0]
    if not clips:
        raise InputError(f"all audio files under {str(data_dir)!r} are silent")
    return clips


class SegmentSampler:
    """Random fixed-length segments, after DAC's ``AudioDataset`` and postprocess chain:
    a file drawn uniformly, a random offset (retrying a few times to avoid silence),
    RMS normalised to -16 dBFS, rescaled to avoid clipping, random polarity."""

    def __init__(self, clips: list[torch.Tensor], segment: int, target_db: float = LEVEL_DB):
        self.clips = clips
        self.segment = segment
        self.target_rms = 10 ** (target_db / 20)

    def segment_from(self, rng: random.Random) -> torch.Tensor:
        for _ in range(8):
            clip = self.clips[rng.randrange(len(self.clips))]
            start = rng.randrange(max(1, clip.shape[0] - self.segment + 1))
            x = F.pad(clip[start : start + self.segment], (0, max(0, self.segment - clip.shape[0])))
            rms = x.square().mean().sqrt()
            if rms > 1e-4:
                break
        x = x * (self.target_rms / rms.clamp(min=1e-4))
        x = x / x.abs().max().clamp(min=1.0)
        return -x if rng.random() < 0.5 else x

    def batch(self, size: int, rng: random.Random) -> torch.Tensor:
        return torch.stack([self.segment_from(rng) for _ in range(size)])[:, None]


# -- checkpoints -------------------------------------------------------------------


@dataclass
class TrainState:
    step: int = 0
    seconds: float = 0.0
    losses: dict = field(default_factory=dict)


def save_checkpoint(
    out, generator, discriminator, opt_g, opt_d, sched_g, sched_d, state: TrainState, args
) -> None:
    """Model file (weights + config, what the codec loads) and training state beside it."""
    info = {
        "steps": state.step,
        "seconds": round(state.seconds, 1),
        "losses": state.losses,
        "args": args,
    }
    save_model(generator, out, {"training": json.dumps(info, sort_keys=True, default=str)})
    tensors = {
        f"disc.{k}": v.detach().cpu().contiguous() for k, v in discriminator.state_dict().items()
    }
    opt_tensors, opt_meta = optimizers_to_tensors({"opt_g": opt_g, "opt_d": opt_d})
    tensors.update(opt_tensors)
    meta = {
        "state": json.dumps(asdict(state)),
        "optimizers": json.dumps(opt_meta),
        "schedulers": json.dumps(
            {"sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict()}
        ),
        "discriminator": json.dumps(args["discriminator"]),
    }
    write_training_state(out, STATE_FORMAT, tensors, meta)


def load_checkpoint(out, generator, discriminator, opt_g, opt_d, sched_g, sched_d) -> TrainState:
    meta, tensors = resume_weights(
        out, generator, load_model, STATE_FORMAT, "an inrkit RVQGAN training state"
    )
    disc = {k[5:]: v for k, v in tensors.items() if k.startswith("disc.")}
    try:
        discriminator.load_state_dict(disc)
    except RuntimeError:  # torch lists every mismatched tensor: hundreds of lines
        raise ModelError(
            f"cannot resume: the discriminator in {str(training_state_path(out))!r} was built with "
            f"{meta.get('discriminator', 'another configuration')}, not what these flags build "
            "(--disc-width and the other discriminator options must match)"
        ) from None
    opt_meta = json.loads(meta["optimizers"])
    opt_g.load_state_dict(optimizer_from_tensors("opt_g", tensors, opt_meta["opt_g"]))
    opt_d.load_state_dict(optimizer_from_tensors("opt_d", tensors, opt_meta["opt_d"]))
    sched = json.loads(meta["schedulers"])
    sched_g.load_state_dict(sched["sched_g"])
    sched_d.load_state_dict(sched["sched_d"])
    return TrainState(**json.loads(meta["state"]))


# -- the loop ----------------------------------------------------------------------

LAMBDAS = {"mel": 15.0, "feat": 2.0, "adv": 1.0, "commitment": 0.25, "codebook": 1.0}


def _parse(argv) -> argparse.Namespace:
    p = ArgumentParser(
        prog="inrkit train rvqgan", description="Train an RVQGAN (DAC) audio codec."
    )
    p.add_argument("--data", required=True, help="folder of audio files (searched recursively)")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--steps", type=int, default=10000, help="total training steps (default 10000)")
    p.add_argument(
        "--batch-size", type=int, default=8, help="segments per step and process (default 8)"
    )
    p.add_argument("--segment-seconds", type=float, default=0.38, help="segment length (DAC: 0.38)")
    p.add_argument(
        "--resume", action="store_true", help="continue from --out and its .train.safetensors"
    )
    p.add_argument("--seed", type=seed_type, default=0)
    p.add_argument(
        "--time", "--time-budget", dest="time", type=float, default=None,
        help="stop (and save) after this many seconds"
    )
    p.add_argument(
        "--save-every", type=int, default=500, help="checkpoint every N steps (default 500)"
    )
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--encoder-dim", type=int, default=64)
    p.add_argument("--encoder-rates", default="2,4,8,8")
    p.add_argument("--decoder-dim", type=int, default=1536)
    p.add_argument("--decoder-rates", default="8,8,4,2")
    p.add_argument("--n-codebooks", type=int, default=9)
    p.add_argument("--codebook-size", type=int, default=1024)
    p.add_argument("--codebook-dim", type=int, default=8)
    p.add_argument("--quantizer-dropout", type=float, default=0.5)
    p.add_argument(
        "--disc-width", type=float, default=1.0, help="discriminator width as a fraction of DAC's"
    )
    p.add_argument(
        "--gan-start", type=int, default=0, help="train on mel + VQ losses alone before this step"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for name in ("steps", "batch_size", "save_every"):
        if getattr(args, name) < 1:
            raise InputError(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    if not args.segment_seconds > 0:
        raise InputError(f"--segment-seconds must be positive, got {args.segment_seconds}")
    require_positive(args, "lr", "time")
    if not 0 <= args.disc_width < math.inf:
        raise InputError(f"--disc-width must be >= 0, got {args.disc_width}")
    _config(args)  # every architecture flag, before any process group or data
    return args


def _config(args: argparse.Namespace) -> RVQGANConfig:
    try:
        config = RVQGANConfig(
            sample_rate=args.sample_rate,
            encoder_dim=args.encoder_dim,
            encoder_rates=_rates(args.encoder_rates, "--encoder-rates"),
            decoder_dim=args.decoder_dim,
            decoder_rates=_rates(args.decoder_rates, "--decoder-rates"),
            n_codebooks=args.n_codebooks,
            codebook_size=args.codebook_size,
            codebook_dim=args.codebook_dim,
            quantizer_dropout=args.quantizer_dropout,
        )
    except ValueError as exc:
        raise InputError(f"inrkit train rvqgan: {exc}") from None
    return config


def _rates(text: str, option: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{option} takes comma-separated integers, got {text!r}") from None
    if not rates or min(rates) < 1:
        raise InputError(f"{option} takes positive integers, got {text!r}")
    return rates


def train(args: argparse.Namespace) -> TrainState:
    with distributed() as (rank, world, device):
        return _train(args, rank, world, device)


def _train(args, rank: int, world: int, device: torch.device) -> TrainState:
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    config = _config(args)
    torch.manual_seed(args.seed)  # identical initial weights on every rank
    generator = RVQGAN(config).to(device)
    disc_config = {"width": args.disc_width}
    discriminator = Discriminator(width=args.disc_width).to(device)
    opt_g = torch.optim.AdamW(generator.parameters(), lr=args.lr, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(discriminator.parameters(), lr=args.lr, betas=(0.8, 0.99))
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, gamma=0.999996)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, gamma=0.999996)
    state = TrainState()
    if args.resume:
        state = load_checkpoint(args.out, generator, discriminator, opt_g, opt_d, sched_g, sched_d)
    mel_loss = MelLoss(config.sample_rate).to(device)

    segment = (
        max(1, round(args.segment_seconds * config.sample_rate / config.hop_length))
        * config.hop_length
    )
    sampler = SegmentSampler(load_clips(args.data, config.sample_rate), segment)
    if world > 1:
        ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        gen, disc = (
            DistributedDataParallel(generator, **ddp_kwargs),
            DistributedDataParallel(discriminator, **ddp_kwargs),
        )
    else:
        gen, disc = generator, discriminator
    gen.train()
    disc.train()
    saved_args = {
        k: v for k, v in vars(args).items() if k not in ("resume", "no_progress", "threads")
    }
    saved_args.update(world_size=world, discriminator=disc_config)

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(
                args.out,
                generator,
                discriminator,
                opt_g,
                opt_d,
                sched_g,
                sched_d,
                state,
                saved_args,
            )

    bar = tqdm(
        total=args.steps,
        initial=state.step,
        disable=rank != 0 or args.no_progress,
        desc="rvqgan",
        unit="step",
    )
    started = time.monotonic() - state.seconds
    last_saved = state.step
    try:
        while state.step < args.steps:
            step = state.step
            # Seeded per step and rank, so a resumed run sees the data an unbroken one would.
            rng = random.Random(f"{args.seed}/{rank}/{step}")
            torch.manual_seed(args.seed * 1_000_003 + step * world + rank)
            real = sampler.batch(args.batch_size, rng).to(device)
            fake, vq = gen(real)
            adversarial = step >= args.gan_start
            logs = {}

            if adversarial:
                d_fake, d_real = _split(disc(torch.cat([fake.detach(), real])), real.shape[0])
                loss_d = discriminator_loss(d_fake, d_real)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                torch.nn.utils.clip_grad_norm_(discriminator.parameters(), 10.0)
                opt_d.step()
                sched_d.step()
                logs["disc"] = loss_d.item()

            losses = {
                "mel": mel_loss(fake, real),
                "commitment": vq.commitment_loss,
                "codebook": vq.codebook_loss,
            }
            if adversarial:
                d_fake, d_real = _split(disc(torch.cat([fake, real])), real.shape[0])
                losses["adv"], losses["feat"] = generator_losses(d_fake, d_real)
            loss_g = sum(LAMBDAS[k] * v for k, v in losses.items())
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            torch.nn.utils.clip_grad_norm_(generator.parameters(), 1000.0)
            opt_g.step()
            sched_g.step()

            logs.update({k: v.item() for k, v in losses.items()})
            state = TrainState(step + 1, time.monotonic() - started, logs)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
            stop = args.time is not None and state.seconds >= args.time
            if world > 1:
                flag = torch.tensor([float(stop)], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop = bool(flag.item())
            if state.step - last_saved >= args.save_every:
                checkpoint()
                last_saved = state.step
            if stop:
                break
    except KeyboardInterrupt:
        if rank == 0:
            print(f"\ninterrupted at step {state.step}; saving {args.out}", file=sys.stderr)
    finally:
        bar.close()
    checkpoint()
    return state


def main(argv: list[str] | None = None) -> int:
    """``inrkit train rvqgan ...``; returns the exit code."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    check_output(args.out, args.data)
    state = train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        losses = ", ".join(f"{k} {v:.3f}" for k, v in state.losses.items())
        print(f"trained {state.step} steps in {state.seconds:.0f} s; wrote {args.out} ({losses})")
    return 0


if __name__ == "__main__":  # torchrun -m inrkit.inr.train.rvqgan: errors as `inrkit train` prints them
    from inrkit.arguments import run_command

    sys.exit(run_command(main, sys.argv[1:]))
