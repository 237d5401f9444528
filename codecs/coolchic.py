"""Cool-chic / C3: an overfitted latent-pyramid image codec with a context-adaptive entropy model.

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023.
    Leguay et al., "Low-complexity Overfitted Neural Image Codec", MMSP 2023.
    Cool-chic 3.x–4.x releases (Orange-OpenSource/Cool-Chic): ``training/presets.py`` (the phases),
    ``nnquant/quantizemodel.py`` and ``nnquant/quantstep.py`` (the weight quantization).
    Kim et al., "C3: High-performance and low-complexity neural compression from a single image
    or video", CVPR 2024 (soft-rounding with Kumaraswamy noise, cosine learning rate).

One image is fitted by a :class:`~inrkit.inr.latents.coolchic.CoolChic` (a pyramid of latent
grids, an auto-regressive model (ARM) of the latents, a learned upsampler and a small synthesis;
docs/coolchic.md), minimising ``MSE + λ · rate / pixels`` (MSE on the ``[0, 1]`` image, rate in
bits of the latents under the ARM). Training runs on :func:`inrkit.inr.phases.run_phases`
(:func:`recipe`):

1. ``main``: soft-rounding of the latents with Kumaraswamy noise (C3's ``r(s(x) + u)``),
   temperature 0.3 → 0.1 and noise parameter 2 → 1 linearly, Adam at 1e-2 on a cosine down to
   1e-5, :data:`MAIN_FRACTION` of the steps;
2. ``ste``: straight-through rounding (true rounding forward, identity gradient: Cool-chic's
   ``hardround``), Adam at 1e-4 on a cosine, the rest of the steps, keeping the best state.

Then the networks are quantized module by module (ARM, upsampler, synthesis), each with the
quantization steps that minimise ``MSE + λ · (latent bits + network bits) / pixels`` among a few
powers of two (Cool-chic's greedy search; :func:`quantize_networks`); the candidates' network
bits are the measured sizes of their entropy-coded integers and the latent bits are those the
integer ARM's tables assign. The file holds:

* header ``preset`` (``"500"``, ``"1000"``, ``"2000"``) and, when the codec was built with other
  settings, ``arch``: the :class:`CoolChicConfig` fields that differ from the preset's (whose
  synthesis ends in the image's channel count: 1 gray, 3 RGB, 4 RGBA); ``q``: five quantization
  exponents ``[wf, kb, ku, kw, ks]``: ARM weights in Q``wf`` and biases at step ``2^-kb``,
  upsampler taps at ``2^-ku``, synthesis weights at ``2^-kw`` and biases at ``2^-ks``;
* sections ``arm``, ``upsampler``, ``synthesis``: the integer weights (and biases), each array
  coded by :func:`~inrkit.codecs.bitstream.entropy.encode_integers`;
* sections ``latent0`` … ``latent{L-1}``: each level's latents, coded with the integer ARM and the
  escape-free Laplace tables of :mod:`~inrkit.codecs.bitstream.laplace` (its rANS payload; an empty
  section is a level of zeros, which is then not coded at all).

Decoding (one torch thread) rebuilds the integer ARM from the file, decodes the latents
wavefront by wavefront (:mod:`~inrkit.inr.latents.wavefront`, one ARM call per wavefront for all
levels), upsamples and synthesises. The ARM and the tables are integers, so the latents decode
identically everywhere; upsampler and synthesis run in float32 from weights that are integers
times powers of two (exact in float32).

Bypass risk (docs/coolchic.md): the latent tables have no escape (zero frequency), so the rANS
decoder can never enter CompressAI's unchecked bypass path and reads at most one word per symbol
inside a guard sized for that. The encoder makes every latent codable: a latent outside its
row's range ``[m - R_k, m + R_k]`` is clamped to it, and since clamping a latent changes the
contexts of later ones, the ARM parameters are re-derived until none falls outside (each pass
fixes at least the earliest wavefront with an outlier; in practice one or two passes, a handful
of latents). Nothing is refused.

Rate control: ``Rate(lmbda=λ)`` directly; ``Rate(quality=1..8)`` through :data:`QUALITY_LAMBDA`;
``Rate(bpp=b)`` by :func:`inrkit.codecs.rate_control.search_lambda` on the measured file size
(±10 %, at most 4 fits, each later fit warm-started from the nearest earlier model and given
:data:`WARM_FRACTION` of the budget).

Departures from Cool-chic / C3:

* Budgets: :data:`DEFAULT_STEPS` steps (a 768×512 image in under 10 minutes on a 2-core CPU)
  where Cool-chic trains 10^4–10^5 iterations on a GPU; no warm-up with several candidates
  (Cool-chic 4 trains 5 then 2 candidates for a few hundred iterations and keeps the best).
* Noise: uniform-family Kumaraswamy noise (C3) throughout phase 1; Cool-chic 4's intra preset
  uses Gaussian noise and softround temperature 0.35 → 0.08. One optimiser (Adam, betas 0.9,
  0.999) for all parameters; Cool-chic uses different betas for the latents and the networks.
* The STE phase is :data:`STE_FRACTION` of the steps (Cool-chic: 500 iterations).
* Weight quantization: steps are searched coordinate-wise (weights with fine biases first,
  then biases) among fewer candidates than Cool-chic's full product (2^-4 … 2^-10 for ARM
  weights, 2^-3 … 2^-12 for upsampler and synthesis weights); the ARM's fixed point ties its
  bias step to at most ``2^-(wf + 8)``. Network integers are coded with inrkit's rANS integer
  coder (:mod:`~inrkit.codecs.bitstream.entropy`) instead of Exp-Golomb codes, latents with
  static rANS tables instead of CABAC (docs/coolchic.md). No fine-tuning after quantization.
* Per-level latent streams; all-zero levels cost only their (empty) section.
* No hyper-latents, IFCE, stabiliser or colour-space choice (YUV 4:2:0 in Cool-chic 4.x): the
  synthesis outputs the image's channels directly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import struct
import time
import zlib
from typing import Any, ClassVar

import numpy as np
import torch

from inrkit.codecs.bitstream import laplace
from inrkit.codecs.bitstream.container import (
    Container,
    meta_to_signal,
    pack,
    read_varint,
    values_to_signal,
    write_varint,
)
from inrkit.codecs.bitstream.entropy import decode_integers, encode_integers
from inrkit.codecs.bitstream.header import (
    Float,
    Int,
    IntList,
    Object,
    Text,
    config_kinds,
    read_fields,
)
from inrkit.datasets.limits import max_bytes, max_pixels
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.latents.arm import CAUSAL_OFFSETS, IntegerArm, coding_grid
from inrkit.inr.latents.coolchic import PRESETS, CoolChic, CoolChicConfig
from inrkit.inr.latents.coolchic import preset as preset_config
from inrkit.inr.latents.pyramid import level_shapes
from inrkit.inr.latents.synthesis import parse_layers
from inrkit.inr.latents.wavefront import build_schedule, decode_levels, level_parameters
from inrkit.inr.phases import Phase, RunResult, run_phases
from inrkit.registry import register_codec

from .base import (
    Codec,
    EncodeOptions,
    Rate,
    check_positive_option,
    check_whole_option,
    quality_ladder,
    single_threaded,
)
from .rate_control import MAX_FITS, search_lambda

__all__ = ["CoolChicCodec", "QUALITY_LAMBDA", "quantize_networks", "recipe"]

QUALITY_LAMBDA = {1: 2e-2, 2: 1e-2, 3: 5e-3, 4: 2.5e-3, 5: 1.2e-3, 6: 6e-4, 7: 3e-4, 8: 1.5e-4}
"""``--quality`` ladder (λ; Cool-chic's RD curves use λ from about 2e-2 down to 1e-4)."""

DEFAULT_STEPS = 450
"""Steps when neither ``--steps`` nor ``--time`` is given. Measured on this project's 2-core CPU
with another job running (docs/coolchic.md): a 768×512 step of preset 1000 takes about 0.9 s on
2 threads and 1.2 s on one, and quantization and coding 8–13 s, so 450 steps take about 7 minutes
on 2 threads and 9 on one: under 10 minutes either way (extrapolated from 10- and 30-step runs)."""
MAIN_FRACTION = 0.9
STE_FRACTION = 1.0 - MAIN_FRACTION
WARM_FRACTION = 0.5
"""Share of the budget a warm-started fit of the bpp search gets."""
MAIN_LR, MAIN_LR_FLOOR, STE_LR = 1e-2, 1e-5, 1e-4
TEMPERATURE = (0.3, 0.1)
KUMARASWAMY = (2.0, 1.0)

ARM_ACT_FRAC_BITS = 8
ARM_WEIGHT_BITS = tuple(range(4, 11))
NET_WEIGHT_EXPONENTS = tuple(range(3, 13))
NET_BIAS_EXPONENTS = tuple(range(4, 17, 2))
FINE_BIAS = 20
"""Bias exponent used while searching the weight step (fine enough to not matter)."""
MAX_NET_INT = 1 << 20
"""|integer weight| bound: below 2^24 so integer × 2^-k is exact in float32."""
MAX_NET_PARAMS = 1 << 20
MAX_LAYERS, MAX_WIDTH, MAX_KERNEL = 16, 256, 9
TABLE = laplace.get_table(**coding_grid(), escape=False)

ARM, UPS, SYN = "arm", "upsampler", "synthesis"

ARCH_KINDS = config_kinds(CoolChicConfig, {
    "n_levels": Int(1, 12), "arm_ctx": Int(1, 64), "arm_hidden": Int(0, 8), "ups_kernel": Int(4, 16),
    "preconcat_kernel": Int(1, 15), "synthesis": Text(max_len=512), "latent_gain": Float(1e-6, 1e6)})
"""Header ``arch``: the fields that differ from the preset (with the image's channel count)."""
HEADER_KINDS = {"preset": Text(choices=tuple(sorted(PRESETS))), "arch": Object(), "q": IntList(0, 32, 5),
                "signal": Object()}


def latent_section(i: int) -> str:
    return f"latent{i}"


# -- the recipe ---------------------------------------------------------------------------------


def recipe(steps: int | None, seconds: float | None = None) -> list[Phase]:
    """Cool-chic's two training phases for a budget of ``steps`` and/or ``seconds``."""
    def part(frac):
        return (None if steps is None else max(1, round(steps * frac)),
                None if seconds is None else seconds * frac)

    s1, t1 = part(MAIN_FRACTION)
    s2, t2 = part(STE_FRACTION)
    return [
        Phase("main", steps=s1, seconds=t1, lr=MAIN_LR, schedule="cosine", lr_floor=MAIN_LR_FLOOR,
              quantize="softround", temperature=TEMPERATURE, noise=KUMARASWAMY),
        Phase("ste", steps=s2, seconds=t2, lr=STE_LR, schedule="cosine", lr_floor=STE_LR / 10,
              quantize="ste", keep_best=True),
    ]


def _groups(model: CoolChic) -> dict[str, list]:
    return {"latents": list(model.latents.parameters()), "arm": list(model.arm.parameters()),
            "upsampler": list(model.upsampler.parameters()), "synthesis": list(model.synthesis.parameters())}


def fit(model: CoolChic, target: torch.Tensor, lmbda: float, phases: list[Phase], progress: bool = False,
        deadline: float | None = None) -> RunResult:
    """Train ``model`` on ``target`` (``(1, C, H, W)`` in [0, 1]) with ``phases``."""
    pixels = target.shape[-1] * target.shape[-2]

    def loss_fn(m: CoolChic, step):
        rec, rate = m(step.mode, step.temperature, step.noise)
        mse = torch.mean((rec - target) ** 2)
        bpp = rate / pixels
        return mse + lmbda * bpp, {"mse": mse.item(), "bpp": bpp.item()}

    model.train()
    return run_phases(model, loss_fn, phases, groups=_groups(model), progress=progress, deadline=deadline)


# -- latents ------------------------------------------------------------------------------------


def _level_of(sched) -> np.ndarray:
    """Level of each latent, in decoding order."""
    sizes = np.cumsum([math.prod(s) for s in sched.shapes])
    return np.searchsorted(sizes, sched.raster, side="right")


def codable_latents(levels: list[np.ndarray], iarm: IntegerArm):
    """Clamp latents into their table rows' ranges until every one is codable.

    Levels that are all zero are left as they are (they are not coded). Returns
    ``(levels, sched, values, mu, scale_idx, coded, n_clamped)`` with ``coded`` the per-latent
    mask (decoding order) of the levels that are coded.
    """
    levels = [np.asarray(g, np.int64) for g in levels]
    coded_levels = np.array([bool(np.any(g)) for g in levels])
    clamped = 0
    passes = 0
    while True:
        sched, vals, mu, k = level_parameters(levels, iarm)
        coded = coded_levels[_level_of(sched)]
        lo, hi = laplace.table_range(mu, k, mu_frac_bits=iarm.act_frac_bits, table=TABLE)
        bad = coded & ((vals < lo) | (vals > hi))
        if not bad.any():
            return levels, sched, vals, mu, k, coded, clamped
        passes += 1
        if passes > sched.n_steps + 1:  # cannot happen: each pass fixes the earliest bad wavefront
            raise AssertionError("latent clamping did not converge")
        clamped += int(bad.sum())
        vals = np.where(bad, np.clip(vals, lo, hi), vals)
        buf = sched.scatter(levels)
        buf[sched.order] = vals
        levels = sched.gather(buf)


def latent_bits(vals, mu, k, coded, iarm) -> float:
    """Bits the tables assign to the coded latents (within ~1 % of the rANS size)."""
    if not coded.any():
        return 0.0
    return laplace.ideal_bits(vals[coded], mu[coded], k[coded], mu_frac_bits=iarm.act_frac_bits, table=TABLE)


def encode_latents(levels, iarm: IntegerArm) -> dict[str, bytes]:
    """One section per level: its rANS payload (empty for an all-zero level)."""
    levels, sched, vals, mu, k, coded, _ = codable_latents(levels, iarm)
    which = _level_of(sched)
    out = {}
    for i in range(len(levels)):
        sel = which == i
        if not coded[sel].any():
            out[latent_section(i)] = b""
            continue
        framed = laplace.encode(vals[sel], mu[sel], k[sel], mu_frac_bits=iarm.act_frac_bits, table=TABLE)
        out[latent_section(i)] = framed[8:]  # the container's CRC covers it; the frame is rebuilt
    return out


class _LevelDecoders:
    """``decode_levels``'s entropy decoder over one stream per level: each wavefront's latents
    come level after level, and each level's share goes to that level's decoder."""

    def __init__(self, sched, payloads: list[bytes], mu_frac_bits: int):
        level = _level_of(sched)
        n_levels = len(sched.shapes)
        step = np.searchsorted(sched.bounds, np.arange(sched.n_latents), side="right") - 1
        counts = np.zeros((sched.n_steps, n_levels), np.int64)
        np.add.at(counts, (step, level), 1)
        self.counts = counts.tolist()
        self.t = 0
        self.decoders: list[laplace.LaplaceDecoder | None] = []
        for i, p in enumerate(payloads):
            if not p:
                self.decoders.append(None)
                continue
            framed = struct.pack(">II", len(p), zlib.crc32(p)) + p
            n = math.prod(sched.shapes[i])
            self.decoders.append(laplace.LaplaceDecoder(framed, n, mu_frac_bits=mu_frac_bits, table=TABLE))

    def decode(self, mu_fp, scale_idx):
        counts = self.counts[self.t]
        self.t += 1
        out = np.zeros(len(mu_fp), np.int64)
        s = 0
        for dec, n in zip(self.decoders, counts, strict=True):
            if n and dec is not None:
                out[s : s + n] = dec.decode(mu_fp[s : s + n], scale_idx[s : s + n])
            s += n
        return out


# -- network quantization ---------------------------------------------------------------------


def _ints(values: torch.Tensor | np.ndarray, exponent: int) -> np.ndarray | None:
    """``round(values * 2^exponent)`` as int64, or None when one exceeds :data:`MAX_NET_INT`."""
    v = np.asarray(values.detach().double().numpy() if isinstance(values, torch.Tensor) else values, np.float64)
    q = np.round(v * 2.0**exponent)
    if q.size and np.abs(q).max() > MAX_NET_INT:
        return None
    return q.astype(np.int64)


def _streams(*arrays: np.ndarray) -> bytes:
    """Integer arrays as one section: each but the last length-prefixed."""
    parts = [encode_integers(a) for a in arrays]
    return b"".join(write_varint(len(p)) + p for p in parts[:-1]) + parts[-1]


def _read_streams(raw: bytes, counts: list[int], where: str) -> list[np.ndarray]:
    out, pos = [], 0
    for i, n in enumerate(counts):
        if i < len(counts) - 1:
            length, pos = read_varint(raw, pos, f"{where} stream length")
            if length > len(raw) - pos:
                raise BitstreamError(f"section {where}: a stream of {length} bytes overruns the section")
        else:
            length = len(raw) - pos
        q = decode_integers(raw[pos : pos + length], n)
        if q.size and int(np.abs(q).max()) > MAX_NET_INT:
            raise BitstreamError(f"section {where}: integer weights beyond ±{MAX_NET_INT}")
        out.append(q)
        pos += length
    return out


def _arm_layers(model: CoolChic):
    return list(model.arm.hidden) + [model.arm.out]


def _arm_from_ints(w: np.ndarray, b: np.ndarray, wf: int, kb: int, model: CoolChic) -> IntegerArm:
    """The integer ARM from its flat integer weights (Q``wf``) and biases (step 2^-kb)."""
    shift = wf + ARM_ACT_FRAC_BITS - kb
    ws, bs, pw, pb = [], [], 0, 0
    for lin in _arm_layers(model):
        o, i = lin.weight.shape
        ws.append(w[pw : pw + o * i].reshape(o, i).astype(np.int64).copy())
        bs.append((b[pb : pb + o].astype(np.int64) << shift).copy())
        pw += o * i
        pb += o
    return IntegerArm(tuple(ws), tuple(bs), model.arm.offsets, wf, ARM_ACT_FRAC_BITS)


def _arm_ints(model: CoolChic, wf: int, kb: int):
    w = _ints(torch.cat([lin.weight.reshape(-1) for lin in _arm_layers(model)]), wf)
    b = _ints(torch.cat([lin.bias.reshape(-1) for lin in _arm_layers(model)]), kb)
    if w is None or b is None or (w.size and np.abs(w).max() > (1 << 15)):
        return None
    return w, b


def _ups_params(model: CoolChic) -> list[torch.nn.Parameter]:
    return list(model.upsampler.up_half) + list(model.upsampler.pre_half)


def _syn_params(model: CoolChic):
    return list(model.synthesis.weights), list(model.synthesis.biases)


def _set_flat(params, flat: np.ndarray, exponent: int) -> None:
    pos = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            vals = torch.from_numpy(flat[pos : pos + n].astype(np.float32)).reshape(p.shape) * (2.0**-exponent)
            p.copy_(vals)
            pos += n


def _flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params]) if params else torch.zeros(0)


@dataclasses.dataclass
class Quantized:
    """The networks as the file holds them, and what the search measured."""

    model: CoolChic  # a copy with the dequantized upsampler and synthesis
    iarm: IntegerArm
    levels: list
    q: dict
    sections: dict
    mse: float
    latent_bits: float
    net_bits: int
    clamped: int


@torch.no_grad()
def _mse(model: CoolChic, levels, target: torch.Tensor) -> float:
    return float(torch.mean((model.reconstruct(levels) - target) ** 2))


@torch.no_grad()
def quantize_networks(model: CoolChic, target: torch.Tensor, lmbda: float) -> Quantized:
    """Cool-chic's greedy per-module choice of quantization steps (ARM, upsampler, synthesis).

    Each candidate is scored by ``MSE + λ · (latent bits + network bits) / pixels``, measured on
    the decoder's own computation (integer ARM and tables for the latents, dequantized float
    weights for the image, the coded size of the integers for the networks).
    """
    pixels = target.shape[-1] * target.shape[-2]
    model = copy.deepcopy(model).eval()
    raw_levels = model.integer_levels()
    base_mse = _mse(model, raw_levels, target)

    def cost(mse, bits):
        return mse + lmbda * bits / pixels

    # ARM: weights in Q(wf) with fine biases, then the bias step.
    def arm_try(wf, kb):
        ints = _arm_ints(model, wf, kb)
        if ints is None:
            return None
        iarm = _arm_from_ints(*ints, wf, kb, model)
        levels, _, vals, mu, k, coded, clamped = codable_latents(raw_levels, iarm)
        mse = base_mse if clamped == 0 else _mse(model, levels, target)
        section = _streams(*ints)
        lbits = latent_bits(vals, mu, k, coded, iarm)
        return cost(mse, lbits + 8 * len(section)), (wf, kb), iarm, levels, section, mse, lbits, clamped

    tries = [t for t in (arm_try(wf, wf + ARM_ACT_FRAC_BITS) for wf in ARM_WEIGHT_BITS) if t is not None]
    if not tries:
        raise InputError("coolchic: the ARM's weights are too large to quantize (the fit diverged)")
    best = min(tries, key=lambda t: t[0])
    wf = best[1][0]
    more = [arm_try(wf, kb) for kb in range(4, wf + ARM_ACT_FRAC_BITS, 2)]
    best = min([best] + [t for t in more if t is not None], key=lambda t: t[0])
    _, arm_q, iarm, levels, arm_section, mse, lbits, clamped = best

    # Upsampler: one step for all its taps (it has no biases).
    ups_params = _ups_params(model)
    ups_float = _flat(ups_params)

    def ups_try(e):
        ints = _ints(ups_float, e)
        if ints is None:
            return None
        _set_flat(ups_params, ints, e)
        section = _streams(ints)
        m = _mse(model, levels, target)
        return cost(m, 8 * len(section)), e, section, m

    tries = [t for t in (ups_try(e) for e in NET_WEIGHT_EXPONENTS) if t is not None]
    if not tries:
        raise InputError("coolchic: the upsampler's weights are too large to quantize")
    _, ups_q, ups_section, mse = min(tries, key=lambda t: t[0])
    _set_flat(ups_params, _ints(ups_float, ups_q), ups_q)

    # Synthesis: weight step with fine biases, then the bias step.
    sw, sb = _syn_params(model)
    w_float, b_float = _flat(sw), _flat(sb)

    def syn_try(ew, eb):
        wi, bi = _ints(w_float, ew), _ints(b_float, eb)
        if wi is None or bi is None:
            return None
        _set_flat(sw, wi, ew)
        _set_flat(sb, bi, eb)
        section = _streams(wi, bi)
        m = _mse(model, levels, target)
        return cost(m, 8 * len(section)), (ew, eb), section, m

    tries = [t for t in (syn_try(e, FINE_BIAS) for e in NET_WEIGHT_EXPONENTS) if t is not None]
    if not tries:
        raise InputError("coolchic: the synthesis weights are too large to quantize")
    best = min(tries, key=lambda t: t[0])
    ew = best[1][0]
    more = [syn_try(ew, eb) for eb in NET_BIAS_EXPONENTS]
    _, syn_q, syn_section, mse = min([best] + [t for t in more if t is not None], key=lambda t: t[0])
    _set_flat(sw, _ints(w_float, syn_q[0]), syn_q[0])
    _set_flat(sb, _ints(b_float, syn_q[1]), syn_q[1])

    sections = {ARM: arm_section, UPS: ups_section, SYN: syn_section}
    q = [*arm_q, ups_q, *syn_q]
    net_bits = 8 * sum(len(s) for s in sections.values())
    return Quantized(model, iarm, levels, q, sections, mse, lbits, net_bits, clamped)


# -- configuration ------------------------------------------------------------------------------


def config_for(base: CoolChicConfig, channels: int) -> CoolChicConfig:
    """``base`` with a synthesis that ends in ``channels`` outputs: the layers after the first
    that output the preset's 3 channels output ``channels`` instead."""
    specs = parse_layers(base.synthesis)
    parts = []
    for i, s in enumerate(specs):
        out = channels if i > 0 and s.out_channels == 3 else s.out_channels
        parts.append(f"{out}-{s.kernel_size}-{'residual' if s.residual else 'linear'}-{s.activation}")
    if int(parts[-1].split("-")[0]) != channels:
        raise InputError(f"coolchic: synthesis {base.synthesis!r} cannot be given {channels} output channels")
    return base.replace(synthesis=",".join(parts))


# -- the codec ----------------------------------------------------------------------------------


@register_codec("coolchic")
class CoolChicCodec(Codec):
    """Cool-chic for images (gray, RGB, RGBA; 8 or 16 bits)."""

    name = "coolchic"
    version = 1
    modalities = ("image",)
    rate_kinds: ClassVar[tuple[str, ...]] = ("bpp", "quality", "lmbda")
    decode_options = {"image": ()}

    def __init__(self, preset: str = "1000", n_levels: int | None = None, latent_gain: float | None = None):
        """Args:
            preset: ``"500"``, ``"1000"`` or ``"2000"`` MAC per decoded pixel.
            n_levels: latent pyramid levels (default the preset's 7).
            latent_gain: the encoder gain of the latents (default the preset's 16).
        """
        if str(preset) not in PRESETS:
            raise InputError(f"coolchic: preset must be one of {', '.join(sorted(PRESETS))}, got {preset!r}")
        self.preset = str(preset)
        changes: dict[str, Any] = {}
        if n_levels is not None:
            check_whole_option(self.name, "n_levels", n_levels, 1)
            if n_levels > 12:
                raise InputError(f"coolchic: n_levels must be at most 12, got {n_levels}")
            changes["n_levels"] = n_levels
        if latent_gain is not None:
            check_positive_option(self.name, "latent_gain", latent_gain)
            changes["latent_gain"] = float(latent_gain)
        self.config = preset_config(self.preset).replace(**changes)
        self.last_report: dict[str, Any] = {}

    def ladder(self, n: int) -> list[Rate]:
        return quality_ladder(n)

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        options = options or EncodeOptions()
        self.check(signal, rate)
        if signal.channels not in (1, 3, 4):
            raise InputError(f"coolchic encodes gray, RGB or RGBA images, got {signal.channels} channels")
        steps = None if options.steps is None and options.time_budget is not None else options.steps_or(DEFAULT_STEPS, self.name)
        start = time.perf_counter()
        deadline = None if options.time_budget is None else start + options.time_budget
        if rate.kind == "quality":
            if rate.quality not in QUALITY_LAMBDA or isinstance(rate.quality, bool):
                raise InputError(f"coolchic quality must be 1..8, got {rate.quality}")
            rate = Rate(lmbda=QUALITY_LAMBDA[int(rate.quality)])
        if rate.kind == "lmbda":
            seconds = None if deadline is None else self._train_seconds(signal, options.time_budget)
            data, _ = self._fit_and_pack(signal, rate.lmbda, options, recipe(steps, seconds), None)
            return data
        # bpp: a search on the measured size; the budget is shared by the fits
        share = 1.0 + (MAX_FITS - 1) * WARM_FRACTION
        seconds = None if deadline is None else self._train_seconds(signal, options.time_budget / share)
        phases = recipe(steps, seconds)
        warm_phases = [p.scaled(WARM_FRACTION) for p in phases]

        def fit_at(lmbda, warm):
            return self._fit_and_pack(signal, lmbda, options, phases if warm is None else warm_phases, warm)

        target = rate.bpp * signal.num_samples / 8
        first = 1.2e-3 * (0.7 / rate.bpp) ** 2
        result = search_lambda(fit_at, target, min(1e-1, max(1e-5, first)), deadline=deadline)
        self.last_report["search"] = [(t.lmbda, t.size) for t in result.trials]
        return result.data

    @staticmethod
    def _train_seconds(signal: Signal, budget: float) -> float:
        """Training share of a time budget: the rest pays for quantization and coding
        (4.2 s for 256×256 on one loaded core, 8 s for 768×512 on two: about 60 µs per pixel
        with a margin)."""
        reserve = 2.0 + 6e-5 * signal.num_samples
        return max(0.5 * budget, budget - reserve)

    def _fit_and_pack(self, signal: Signal, lmbda: float, options: EncodeOptions, phases: list[Phase],
                      warm: dict | None) -> tuple[bytes, dict]:
        if not 0 < lmbda < math.inf:
            raise InputError(f"coolchic: λ must be positive and finite, got {lmbda}")
        h, w = signal.grid_shape
        config = config_for(self.config, signal.channels)
        target = ((signal.to_values() + 1.0) * 0.5).permute(2, 0, 1).unsqueeze(0).float()
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)
            model = CoolChic((h, w), config)
            if warm is not None:
                model.load_state_dict(warm)
            run = fit(model, target, lmbda, phases, progress=options.progress)
        state = copy.deepcopy(model.state_dict())
        quant = quantize_networks(model, target, lmbda)
        sections = {**encode_latents(quant.levels, quant.iarm), **quant.sections}
        base = dataclasses.asdict(config_for(preset_config(self.preset), signal.channels))
        delta = {k: v for k, v in dataclasses.asdict(config).items() if base[k] != v}
        header = {"preset": self.preset, **({"arch": delta} if delta else {}), "q": quant.q}
        data = pack(Container.for_signal(self.name, self.version, signal, header, sections))
        mse = quant.mse
        self.last_report = {
            "lmbda": lmbda, "steps": run.steps, "fit_seconds": round(run.seconds, 2),
            "seconds": round(time.perf_counter() - t0, 2), "bytes": len(data),
            "bpp": 8 * len(data) / (h * w), "psnr": round(-10 * math.log10(max(mse, 1e-12)), 3),
            "latent_bits": round(quant.latent_bits), "network_bits": quant.net_bits,
            "clamped_latents": quant.clamped, "q": quant.q, "mac_per_pixel": round(model.mac_per_pixel(), 1),
            "phases": [(p.name, p.steps, round(p.seconds, 2)) for p in run.phases],
        }
        return data, state

    # -- decoding ---------------------------------------------------------------------------

    @single_threaded
    def decode(self, data: bytes) -> Signal:
        container = self.open(data)
        meta = container.signal_meta()
        shape = list(meta["shape"])
        if container.modality != "image" or len(shape) != 3:
            raise BitstreamError(f"coolchic files hold images, this one says {container.modality} of shape {shape}")
        channels, height, width = shape
        if channels not in (1, 3, 4):
            raise BitstreamError(f"coolchic file says the image has {channels} channels (1, 3 or 4 allowed)")
        if height * width > max_pixels():
            raise BitstreamError(f"coolchic: {height}×{width} pixels exceed the limit of {max_pixels()} "
                                 "(INRKIT_MAX_PIXELS)")
        fields = read_fields(container.header, HEADER_KINDS, "coolchic header", optional={"arch", "signal"})
        delta = read_fields(fields.get("arch", {}), ARCH_KINDS, "coolchic header: arch", optional=set(ARCH_KINDS))
        config = config_for(preset_config(fields["preset"]), channels).replace(**delta)
        model = self._model_for(config, (height, width), channels)
        if len(fields["q"]) != 5:
            raise BitstreamError(f"coolchic header: q holds 5 exponents, found {list(fields['q'])}")
        wf, kb, ku, kw, kbs = fields["q"]
        if not 1 <= wf <= 16 or kb > wf + ARM_ACT_FRAC_BITS:
            raise BitstreamError(f"coolchic header: ARM quantization {[wf, kb]} out of range")
        expected = {ARM, UPS, SYN} | {latent_section(i) for i in range(config.n_levels)}
        if set(container.sections) != expected:
            raise BitstreamError(f"coolchic file: sections {sorted(container.sections)}, expected {sorted(expected)}")

        layers = _arm_layers(model)
        w, b = _read_streams(container.section(ARM), [sum(lin.weight.numel() for lin in layers),
                                                       sum(lin.bias.numel() for lin in layers)], ARM)
        if w.size and int(np.abs(w).max()) > (1 << 15):
            raise BitstreamError("section arm: ARM weights beyond ±2^15")
        try:
            iarm = _arm_from_ints(w, b, wf, kb, model)
        except InputError as err:
            raise BitstreamError(f"coolchic: invalid ARM ({err})") from None
        ups_params = _ups_params(model)
        (u,) = _read_streams(container.section(UPS), [sum(p.numel() for p in ups_params)], UPS)
        _set_flat(ups_params, u, ku)
        sw, sb = _syn_params(model)
        wi, bi = _read_streams(container.section(SYN), [sum(p.numel() for p in sw), sum(p.numel() for p in sb)], SYN)
        _set_flat(sw, wi, kw)
        _set_flat(sb, bi, kbs)

        shapes = level_shapes((height, width), config.n_levels)
        sched = build_schedule(shapes, iarm.offsets)
        payloads = [container.section(latent_section(i)) for i in range(config.n_levels)]
        try:
            levels = decode_levels(shapes, iarm, _LevelDecoders(sched, payloads, ARM_ACT_FRAC_BITS))
        except InputError as err:
            raise BitstreamError(f"coolchic: malformed latent stream ({err})") from None
        rec = model.reconstruct(levels)[0]  # (C, H, W) in [0, 1]
        template = meta_to_signal(meta, torch.zeros(shape))
        return values_to_signal(template, rec.permute(1, 2, 0) * 2.0 - 1.0).quantized()

    @staticmethod
    def _model_for(config: CoolChicConfig, hw: tuple[int, int], channels: int) -> CoolChic:
        """The model a checked header describes, bounded before anything is allocated."""
        if (2, config.arm_ctx) not in CAUSAL_OFFSETS:
            raise BitstreamError(f"coolchic header: no ARM context pattern of size {config.arm_ctx}")
        if config.ups_kernel % 2 or config.preconcat_kernel % 2 == 0:
            raise BitstreamError("coolchic header: the upsampler kernel must be even, the pre-concatenation odd")
        try:
            specs = parse_layers(config.synthesis)
        except InputError as err:
            raise BitstreamError(f"coolchic header: bad synthesis ({err})") from None
        if len(specs) > MAX_LAYERS or any(s.out_channels > MAX_WIDTH or s.kernel_size > MAX_KERNEL for s in specs):
            raise BitstreamError(f"coolchic header: synthesis {config.synthesis!r} beyond {MAX_LAYERS} layers, "
                                 f"width {MAX_WIDTH} or kernel {MAX_KERNEL}")
        if specs[-1].out_channels != channels:
            raise BitstreamError(f"coolchic header: synthesis outputs {specs[-1].out_channels} channels, "
                                 f"the image has {channels}")
        c, params = config.n_levels, 0
        for s in specs:
            params += c * s.out_channels * s.kernel_size**2 + s.out_channels
            c = s.out_channels
        if params > MAX_NET_PARAMS:
            raise BitstreamError(f"coolchic header: a synthesis of {params} weights is beyond the limit")
        widest = max([config.n_levels] + [s.out_channels for s in specs])
        memory = 4 * hw[0] * hw[1] * (3 * widest + 2 * config.n_levels)  # float32 activations
        if memory > max_bytes():
            raise BitstreamError(f"coolchic: decoding would need about {memory >> 20} MiB, over the limit "
                                 f"of {max_bytes() >> 20} MiB (INRKIT_MAX_BYTES)")
        try:
            with torch.random.fork_rng(devices=[]):
                return CoolChic(hw, config).eval()
        except InputError as err:
            raise BitstreamError(f"coolchic header describes an invalid model: {err}") from None
