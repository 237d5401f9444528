"""Distortion metrics for images, video and audio.

Images and video are compared the way CompressAI's evaluation does: both the
reference and the reconstruction are rounded to 8 bits per channel, and
PSNR / MS-SSIM are computed on RGB values in ``[0, 255]``.

* Gray images count as one channel; when one side is gray and the other RGB,
  the gray one is repeated to three channels (a gray picture *is* the RGB
  picture with equal channels), so a codec that returns RGB for a gray input
  is judged on what it shows.
* RGBA and gray+alpha: only the colour part is compared (alpha is not part of ``psnr-rgb``).
* MS-SSIM (Wang, Simoncelli & Bovik, Asilomar 2003) comes from
  pytorch-msssim with its defaults (11-tap Gaussian window, σ = 1.5, five
  scales with weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Five scales
  need a short side above 160 px; smaller images use as many scales as fit
  (short side > 10 · 2^(scales-1)) with the first weights renormalized to sum
  to one — not comparable with published five-scale numbers, and reported as
  ``ms_ssim_scales``. Below 11 px MS-SSIM is NaN.
* Video: metrics per frame, then the mean over frames (PSNR is the mean of the
  per-frame PSNRs, as in the NeRV/HNeRV evaluations).

Audio (values in ``[-1, 1]``, ``C×N``):

* ``psnr``: ``10·log10(1 / MSE)``, peak = full scale 1.0 (so a full-scale
  sine at 0 dB PSNR has an error as loud as itself); ``snr``:
  ``10·log10(Σx² / Σ(x-y)²)``.
* ``si-sdr``: scale-invariant SDR of Le Roux et al., "SDR – half-baked or
  well done?" (ICASSP 2019), with zero-mean signals as in the paper and in
  descript's audiotools ``SISDRLoss``; per channel, then averaged.
* ``mel-distance``: the multi-scale mel-spectrogram L1 distance of the
  Descript audio codec (Kumar et al., "High-Fidelity Audio Compression with
  Improved RVQGAN", NeurIPS 2023; ``dac/nn/loss.py`` ``MelSpectrogramLoss``
  with the settings of DAC's training config): windows 32…2048 with
  5…320 mels, hop = window/4, periodic Hann window, centred reflect-padded
  STFT, Slaney mel filterbank (librosa's default, re-implemented here in
  torch), magnitudes clamped at 1e-5, ``pow`` 1, ``log10``, log weight 1,
  magnitude weight 0; the per-scale mean absolute differences are summed.
* ``lsd``: log-spectral distance as in Kuleshov et al., "Audio
  super-resolution using neural networks" (ICLR workshop 2017): per frame the
  RMS over frequency of ``log10|X|² - log10|Y|²``, averaged over frames
  (2048-point Hann STFT, hop 512, power floor 1e-10).
"""

from __future__ import annotations

import functools
import math

import torch
from pytorch_msssim import ms_ssim as _ms_ssim
from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

from inrkit.datasets.signal import Signal
from inrkit.errors import InputError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WIN = 11

DAC_MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
DAC_MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)


# -- images and video ----------------------------------------------------------
def _pixels(x: Signal | torch.Tensor, what: str) -> torch.Tensor:
    """8-bit-rounded values in [0, 255] as ``[frames, C, H, W]`` float64 (C is 1 or 3)."""
    if isinstance(x, Signal):
        if x.modality == "audio":
            raise InputError(f"{what}: expected an image or video, got audio")
        data = x.data
    else:
        data = x
    if data.ndim == 3:
        data = data.unsqueeze(0)
    if data.ndim != 4:
        raise InputError(f"{what}: expected C×H×W or T×C×H×W, got shape {tuple(data.shape)}")
    channels = data.shape[1]
    if channels in (2, 4):  # gray or RGB with alpha: the colour channels are compared
        data = data[:, : channels - 1]
    elif channels not in (1, 3):
        raise InputError(f"{what}: expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels, got {channels}")
    return torch.round(data.detach().double().clamp(0, 1) * 255.0)


def _pair(ref, rec) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _pixels(ref, "reference"), _pixels(rec, "reconstruction")
    if a.shape[1] != b.shape[1]:  # gray against RGB: compare as RGB
        a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
    if a.shape != b.shape:
        raise InputError(
            f"reference and reconstruction differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}"
        )
    return a, b


def psnr_frames(ref, rec, peak: float = 255.0) -> list[float]:
    """PSNR in dB of each frame (one value for an image) on 8-bit RGB values."""
    a, b = _pair(ref, rec)
    mse = (a - b).pow(2).flatten(1).mean(1)
    return [math.inf if m == 0 else 10.0 * math.log10(peak**2 / float(m)) for m in mse]


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales an image of this size supports (0: too small)."""
    short = min(height, width)
    return max((k for k in range(1, 6) if short > (MS_SSIM_WIN - 1) * 2 ** (k - 1)), default=0)


def ms_ssim_frames(ref, rec) -> list[float]:
    """MS-SSIM of each frame on 8-bit RGB values (see the module notes for small images)."""
    a, b = _pair(ref, rec)
    scales = ms_ssim_scales(*a.shape[-2:])
    if scales == 0:
        return [math.nan] * a.shape[0]
    a, b = a.float(), b.float()
    if scales == 5:
        values = _ms_ssim(a, b, data_range=255, size_average=False)
    else:
        values = _ms_ssim_fewer_scales(a, b, scales)
    return [float(v) for v in values]


def _ms_ssim_fewer_scales(a: torch.Tensor, b: torch.Tensor, scales: int) -> torch.Tensor:
    # The same computation as pytorch_msssim.ms_ssim, whose size check is
    # hard-wired to five scales; built from its own window and SSIM kernels.
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    win = _fspecial_gauss_1d(MS_SSIM_WIN, 1.5).repeat([a.shape[1], 1, 1, 1])
    factors = []
    for level in range(scales):
        ssim, cs = _ssim(a, b, data_range=255, win=win, size_average=False, K=(0.01, 0.03))
        if level < scales - 1:
            factors.append(torch.relu(cs))
            pad = [s % 2 for s in a.shape[2:]]
            a = torch.nn.functional.avg_pool2d(a, kernel_size=2, padding=pad)
            b = torch.nn.functional.avg_pool2d(b, kernel_size=2, padding=pad)
    factors.append(torch.relu(ssim))
    stacked = torch.stack(factors)  # scales × frames × channels
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def image_metrics(ref, rec) -> dict:
    """``psnr-rgb`` and ``ms-ssim-rgb`` (frame means for video) plus per-frame lists.

    ``ref`` and ``rec`` are Signals or tensors (C×H×W or T×C×H×W in [0, 1]).
    """
    psnrs, ssims = psnr_frames(ref, rec), ms_ssim_frames(ref, rec)
    height, width = _pixels(ref, "reference").shape[-2:]
    out = {
        "psnr-rgb": _mean(psnrs),
        "ms-ssim-rgb": _mean(ssims),
        "ms_ssim_scales": ms_ssim_scales(height, width),
    }
    if len(psnrs) > 1:
        out["psnr-rgb-frames"] = psnrs
        out["ms-ssim-rgb-frames"] = ssims
    return out


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values))


# -- audio ---------------------------------------------------------------------
def _audio_pair(ref, rec) -> tuple[torch.Tensor, torch.Tensor, float | None]:
    rate = None
    tensors = []
    for x, what in ((ref, "reference"), (rec, "reconstruction")):
        if isinstance(x, Signal):
            if x.modality != "audio":
                raise InputError(f"{what}: expected audio, got {x.modality}")
            rate = rate or x.sample_rate
            x = x.data
        x = x.detach().double()
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2:
            raise InputError(f"{what}: expected audio as C×N, got shape {tuple(x.shape)}")
        tensors.append(x)
    a, b = tensors
    if a.shape != b.shape:
        raise InputError(
            f"reference and reconstruction differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}"
        )
    return a, b, rate


def audio_psnr(ref, rec) -> float:
    """``10·log10(1 / MSE)`` in dB with peak amplitude 1.0 (full scale)."""
    a, b, _ = _audio_pair(ref, rec)
    mse = float((a - b).pow(2).mean())
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def snr(ref, rec) -> float:
    """Signal-to-noise ratio ``10·log10(Σx² / Σ(x-y)²)`` in dB: +inf for an exact copy,
    nan (undefined) for a silent reference that is not reproduced exactly."""
    a, b, _ = _audio_pair(ref, rec)
    noise, power = float((a - b).pow(2).sum()), float(a.pow(2).sum())
    if noise == 0:
        return math.inf
    return math.nan if power == 0 else 10.0 * math.log10(power / noise)


def si_sdr(ref, rec, zero_mean: bool = True) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), mean over channels.

    ``s_target = (<ŝ, s> / ||s||²) s``, ``e = ŝ - s_target``,
    ``SI-SDR = 10·log10(||s_target||² / ||e||²)``; +inf for a scaled copy, −inf for an
    estimate with no component along the reference (a silent or constant one included,
    where the ratio is 0/0), nan where the reference channel itself is silent or constant
    (a one-sample clip, say): the measure is undefined there.
    """
    a, b, _ = _audio_pair(ref, rec)
    if zero_mean:
        a = a - a.mean(1, keepdim=True)
        b = b - b.mean(1, keepdim=True)
    values = []
    for s, s_hat in zip(a, b, strict=True):
        energy = float(s.pow(2).sum())
        if energy == 0:  # nothing to be invariant to: undefined, not an error in a sweep
            values.append(math.nan)
            continue
        target = (float(s_hat @ s) / energy) * s
        signal_energy = float(target.pow(2).sum())
        noise = float((s_hat - target).pow(2).sum())
        if signal_energy == 0:
            values.append(-math.inf)
            continue
        # a residual below float64 round-off (300 dB down) is an exact scaled copy
        exact = noise <= 1e-30 * signal_energy
        values.append(math.inf if exact else 10.0 * math.log10(signal_energy / noise))
    return _mean(values)


@functools.lru_cache(maxsize=64)
def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> torch.Tensor:
    """Slaney-style mel filterbank ``[n_mels, n_fft // 2 + 1]``, equal to librosa's
    ``librosa.filters.mel`` defaults (``htk=False``, ``norm="slaney"``)."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    edges = _mel_to_hz(torch.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2,
                                      dtype=torch.float64))
    bins = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    widths = edges.diff()
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # equal area per band
    return weights.float()


_F_SP = 200.0 / 3.0  # Slaney: linear below 1 kHz, 3 mels per 200 Hz
_LOG_HZ, _LOG_MEL, _LOG_STEP = 1000.0, 1000.0 / _F_SP, math.log(6.4) / 27.0


def _hz_to_mel(f: float) -> float:
    return f / _F_SP if f < _LOG_HZ else _LOG_MEL + math.log(f / _LOG_HZ) / _LOG_STEP


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return torch.where(m < _LOG_MEL, m * _F_SP, _LOG_HZ * torch.exp(_LOG_STEP * (m - _LOG_MEL)))


def _magnitude(x: torch.Tensor, window_length: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(window_length, periodic=True, dtype=x.dtype)
    spec = torch.stft(x, n_fft=window_length, hop_length=hop, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    return spec.abs()  # C × freq × frames


def mel_distance(ref, rec, sample_rate: float | None = None,
                 windows: tuple[int, ...] = DAC_MEL_WINDOWS,
                 bands: tuple[int, ...] = DAC_MEL_BANDS,
                 clamp_eps: float = 1e-5, mag_weight: float = 0.0, log_weight: float = 1.0,
                 pow: float = 1.0) -> float:
    """DAC's multi-scale mel-spectrogram distance (lower is better); see the module notes."""
    a, b, rate = _audio_pair(ref, rec)
    rate = sample_rate or rate
    if not rate:
        raise InputError("mel_distance needs a sample rate (pass Signals or sample_rate=)")
    a, b = a.float(), b.float()
    total = 0.0
    for window, n_mels in zip(windows, bands, strict=True):
        if a.shape[1] <= window // 2:
            raise InputError(f"audio too short for a {window}-sample mel window: {a.shape[1]} samples")
        fb = mel_filterbank(float(rate), window, n_mels)
        mel_a = fb @ _magnitude(a, window, window // 4)
        mel_b = fb @ _magnitude(b, window, window // 4)
        if log_weight:
            log_a = mel_a.clamp(min=clamp_eps).pow(pow).log10()
            log_b = mel_b.clamp(min=clamp_eps).pow(pow).log10()
            total += log_weight * float((log_a - log_b).abs().mean())
        if mag_weight:
            total += mag_weight * float((mel_a - mel_b).abs().mean())
    return total


def log_spectral_distance(ref, rec, n_fft: int = 2048, hop: int = 512, floor: float = 1e-10) -> float:
    """Log-spectral distance (Kuleshov et al. 2017), mean over frames and channels."""
    a, b, _ = _audio_pair(ref, rec)
    if a.shape[1] <= n_fft // 2:
        raise InputError(f"audio too short for LSD with n_fft={n_fft}: {a.shape[1]} samples")
    pa = _magnitude(a, n_fft, hop).pow(2).clamp(min=floor).log10()
    pb = _magnitude(b, n_fft, hop).pow(2).clamp(min=floor).log10()
    return float((pa - pb).pow(2).mean(dim=1).sqrt().mean())


def audio_metrics(ref: Signal, rec: Signal) -> dict:
    """``psnr``, ``snr``, ``si-sdr``, ``mel-distance`` and ``lsd`` of two audio Signals.

    Both are first rounded to their bit depth (:meth:`Signal.quantized`), as they
    would be written to a file: the audio analogue of the 8-bit rounding used for
    images.
    """
    for x, what in ((ref, "reference"), (rec, "reconstruction")):
        if not isinstance(x, Signal) or x.modality != "audio":
            raise InputError(f"{what}: expected an audio Signal")
    if ref.sample_rate != rec.sample_rate:
        raise InputError(
            f"sample rates differ: reference {ref.sample_rate:g} Hz, reconstruction {rec.sample_rate:g} Hz"
        )
    a, b = ref.quantized().data.double(), rec.quantized().data.double()
    n = a.shape[1]
    return {
        "psnr": audio_psnr(a, b),
        "snr": snr(a, b),
        "si-sdr": si_sdr(a, b),
        "mel-distance": mel_distance(a, b, sample_rate=ref.sample_rate) if n > 1024 else math.nan,
        "lsd": log_spectral_distance(a, b) if n > 1024 else math.nan,
    }


def signal_metrics(ref: Signal, rec: Signal) -> dict:
    """The metrics of the RD tools for a Signal of any modality."""
    if ref.modality == "audio":
        return audio_metrics(ref, rec)
    return image_metrics(ref, rec)
