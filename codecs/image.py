"""Weight codecs for images: a coordinate network *is* the compressed image.

After COIN (Dupont et al., "COIN: COmpression with Implicit Neural
representations", ICLR-W 2021) and Strümpler et al. ("Implicit Neural
Representations for Image Compression", ECCV 2022; reference code
github.com/YannickStruempler/inr_based_compression): fit a small field to the
image, quantize its weights uniformly, fine-tune with the quantization in the
loop (straight-through rounding), and entropy-code the integer weights. One
codec is registered per coordinate backbone: ``siren``, ``spder``,
``polyinr``, ``fourier`` and ``hashgrid``.

Rate control. The rate is the size of the file, so it is decided by the
number of parameters and the bit width. ``Rate(bpp=x)`` sizes the network for
``x`` bits per pixel at about ``bits_per_param`` coded bits per weight at 8 bits,
fits it, then keeps 8 bits if the *measured* file lands within ±10 % of the
target, or else takes the width in 7–10 whose file lands nearest it; if none
lands within ±10 %, the network is resized so that 8 bits would, and fitted once
more (after which the nearest width in 4–12 is taken). Eight bits are kept where
they fit because a wider quantizer spends its extra bits on precision the network
hardly uses, where a larger network at 8 bits gains more: long fits of a SIREN code
in fewer bits per weight, so the nearest-width rule used to take 9 bits (see
:class:`SirenImageCodec` for the measurements). ``Rate(quality=q)`` maps the
ladder 1..8 to bpp targets. ``EncodeOptions.steps`` / ``time_budget`` bound
the fitting.

The ``siren`` codec puts Strümpler et al.'s positional encoding in front of the
SIREN (:class:`SirenImageCodec`). Their L1 weight penalty (1e-5 · Σ|w| added to the
MSE) is not used: on kodim07 at 0.5 bpp with 1,500 fixed steps it gave 30.48 dB at
0.530 bpp against 30.43 dB at 0.471 bpp without it (the smaller weights code in fewer
bits, so the rate controller took 9 bits instead of 8): no gain at equal rate.

Departures from Strümpler et al.: no meta-learned initialisation (each image
is fitted from the backbone's own initialisation) and rANS coding of the
integer weights with a per-file frequency table (``inrkit.codecs.bitstream.entropy``)
instead of their arithmetic coder; the quantization bit width is chosen per
file by the rate controller rather than fixed at 8, and the small tensors
(biases, input and output layers) get 4 bits more than the rest
(:func:`~inrkit.codecs.bitstream.quantize.widen_small_tensors`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, ClassVar

import torch

from inrkit.codecs.bitstream.container import Container, meta_to_signal, pack, values_to_signal
from inrkit.codecs.bitstream.header import Float, Int, read_config
from inrkit.codecs.bitstream.quantize import (
    deserialize_quantized,
    load_quantized_state,
    quantization_aware_finetune,
    quantize_state,
    serialize_quantized,
    spec_of,
    widen_small_tensors,
)
from inrkit.datasets.grids import coordinate_grid
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.field import Field, build_field, field_from_config
from inrkit.registry import FIELDS, register_codec

from .base import Codec, EncodeOptions, Rate, scaled_image_shape, single_threaded

QUALITY_BPP = {1: 0.1, 2: 0.15, 3: 0.25, 4: 0.35, 5: 0.5, 6: 0.75, 7: 1.0, 8: 1.5}
"""The ``--quality`` ladder as bits-per-pixel targets."""

BITS_PER_PARAM = 7.3
"""Coded bits per weight at 8-bit quantization, for sizing (measured: 7.5 for a fitted plain
SIREN, 7.2 for a hash grid; :class:`SirenImageCodec` has its own)."""
SIZING_BITS = 8
"""The bit width networks are sized for, and kept whenever the file lands within the
tolerance (Strümpler et al. find 7–8 bits best and code at 8)."""

BIT_WIDTHS = range(4, 13)
RATE_TOLERANCE = 0.10
MIN_PARAMS = 64
MAX_PARAMS = 1 << 26
MAX_OPTION_VALUE = 1 << 16  # no architecture option is legitimately larger


class ImageFieldCodec(Codec):
    """Fit → quantize (+ QAT) → entropy-code, for one coordinate backbone."""

    backbone: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = ("image",)
    rate_kinds: ClassVar[tuple[str, ...]] = ("bpp", "quality")
    decode_options: ClassVar[dict[str, tuple[str, ...]]] = {"image": ("scale",)}
    fixed_config: ClassVar[dict[str, Any]] = {}
    width_ratios: ClassVar[dict[str, float]] = {}  # options that grow with the width: {option: per unit}
    default_steps: ClassVar[int] = 2000
    batch_size: ClassVar[int | None] = 8192  # minibatches fit faster than full batches (fit_speed)
    qat_steps: ClassVar[int] = 100
    fit_lr: ClassVar[float | None] = None  # None: the backbone's default_lr
    lr_width_scale: ClassVar[float | None] = None  # if set, lr = min(fit_lr, lr_width_scale / width)
    collapse_db: ClassVar[float | None] = None  # fit()'s divergence guard (None: off)
    preferred_bits: ClassVar[range] = range(7, 11)  # Strümpler et al.: 7–8 bits are best
    bits_per_param: ClassVar[float] = BITS_PER_PARAM

    def __init__(self) -> None:
        self.last_report: dict[str, Any] = {}

    # -- sizing ------------------------------------------------------------------
    def signal_config(self, signal: Signal) -> dict[str, Any]:
        """Architecture options that depend on the image (none by default)."""
        return {}

    def sized_config(self, signal: Signal, params: float) -> dict[str, Any]:
        """An architecture with about ``params`` weights: the width is bisected (with the
        ``width_ratios`` options scaled along)."""
        base = {"in_dim": 2, "out_channels": signal.channels, **self.fixed_config,
                **self.signal_config(signal)}

        def config(width: int) -> dict[str, Any]:
            scaled = {key: max(1, round(ratio * width)) for key, ratio in self.width_ratios.items()}
            return {**base, "width": width, **scaled}

        lo, hi = 1, 1024
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _num_params(build_field(self.backbone, **config(mid))) <= params:
                lo = mid
            else:
                hi = mid - 1
        return config(lo)

    def ladder(self, n: int) -> list[Rate]:
        """``n`` bpp targets spread (log-uniformly) over the quality ladder."""
        lo, hi = math.log(QUALITY_BPP[2]), math.log(QUALITY_BPP[8])
        if n == 1:
            return [Rate(bpp=QUALITY_BPP[4])]
        return [Rate(bpp=round(math.exp(lo + (hi - lo) * i / (n - 1)), 4)) for i in range(n)]

    # -- encoding ----------------------------------------------------------------
    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        from inrkit.inr.fit import fit

        options = options or EncodeOptions()
        self.check(signal, rate)
        target_bits = 8 * _target_bytes(signal, rate)
        payload_bits = target_bits - 8 * len(self._pack(signal, None, 8))
        params = max(MIN_PARAMS, payload_bits / self.bits_per_param)
        deadline = None if options.time_budget is None else time.perf_counter() + options.time_budget
        for attempt in range(2):
            config = self.sized_config(signal, params)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(options.seed + attempt)
                field = build_field(self.backbone, **config)
            # Fitting gets most of what is left; the rest is for QAT and packing.
            budget = None if deadline is None else max(1.0, (deadline - time.perf_counter()) * 0.8)
            result = fit(
                signal,
                model=field,
                steps=options.steps_or(self.default_steps, self.name),
                time_budget=budget,
                seed=options.seed + attempt,
                device=options.device,
                progress=options.progress,
                batch_size=self.batch_size,
                lr=self.learning_rate(config),
                collapse_db=self.collapse_db,
            )
            field = result.field.cpu().eval()
            sizes = {b: 8 * len(self._pack(signal, field, b)) for b in BIT_WIDTHS}
            bits = _choose_bits(sizes, target_bits, self.preferred_bits)
            last = attempt == 1 or (deadline is not None and time.perf_counter() > deadline)
            if bits is None and not last:
                # No good bit width lands on the target: resize so that 8 bits does.
                params *= target_bits / sizes[SIZING_BITS]
                continue
            if bits is None:
                bits = min(sizes, key=lambda b: abs(math.log(sizes[b] / target_bits)))
            # QAT gets about a tenth of the fitting steps, so it stays within the budget.
            qat_steps = min(self.qat_steps, max(10, result.steps // 10))
            data = self._finetune_and_pack(signal, field, bits, qat_steps)
            self.last_report.update(
                attempt=attempt, config=_config_delta(field), params=_num_params(field),
                fit_steps=result.steps, fit_seconds=round(result.seconds, 2),
                psnr_fit=round(result.psnr, 3), fit_recoveries=result.recoveries, bytes=len(data),
            )
            return data
        raise AssertionError("unreachable: the last attempt always returns")

    def _finetune_and_pack(self, signal: Signal, field: Field, bits: int, steps: int) -> bytes:
        """Quantization-aware fine-tuning at ``bits``, then the file."""
        coords = coordinate_grid(signal.grid_shape).reshape(-1, 2)
        values = signal.to_values().reshape(-1, signal.channels)
        history = quantization_aware_finetune(
            field, coords, values, widen_small_tensors(field, bits), steps=steps, lr=self.qat_lr(field),
            batch_size=self.batch_size, eval_every=25,
        )
        self.last_report.update(bits=bits, psnr_quantized=round(history["psnr_ptq"], 3),
                                psnr_qat=round(history["psnr_qat"], 3))
        return self._pack(signal, field, bits)

    def learning_rate(self, config: dict[str, Any]) -> float | None:
        """Adam's rate for fitting: wider MLPs need smaller steps (see below)."""
        if self.lr_width_scale is not None:
            return min(self.fit_lr, self.lr_width_scale / config["width"])
        return self.fit_lr

    def qat_lr(self, field: Field) -> float:
        """Fine-tuning rate: a hundredth of the backbone paper's learning rate
        (``default_lr``; for SIREN 1e-6, the rate Strümpler et al. retrain at), not of
        the larger rate this codec fits at."""
        return 0.01 * getattr(field, "default_lr", 1e-4)

    def _pack(self, signal: Signal, field: Field | None, bits: int) -> bytes:
        """The file for ``field`` at ``bits``; with no field, the fixed overhead alone."""
        if field is None:
            return pack(Container.for_signal(self.name, self.version, signal, {"arch": {}, "q": {}}))
        qheader, sections = serialize_quantized(quantize_state(field, widen_small_tensors(field, bits)))
        header = {"arch": _config_delta(field), "q": qheader}
        return pack(Container.for_signal(self.name, self.version, signal, header, sections))

    # -- decoding ----------------------------------------------------------------
    @single_threaded
    def decode(self, data: bytes, scale: float = 1.0) -> Signal:
        container = self.open(data)
        meta = container.signal_meta()
        if container.modality != "image" or len(meta["shape"]) != 3:
            raise BitstreamError(f"{self.name} files hold images, this one says {container.modality} "
                                 f"of shape {meta['shape']}")
        channels, height, width = meta["shape"]
        if not 1 <= channels <= 4:
            raise BitstreamError(f"{self.name} file says the image has {channels} channels (1–4 allowed)")
        shape = scaled_image_shape(height, width, scale)
        try:
            config = read_config(
                FIELDS.get(self.backbone).Config, container.header["arch"], f"{self.backbone} architecture",
                fixed={"in_dim": 2, "out_channels": channels}, present="delta",
                ints=Int(-MAX_OPTION_VALUE, MAX_OPTION_VALUE),
                floats=Float(-MAX_OPTION_VALUE, MAX_OPTION_VALUE),
            )
            description = {"name": self.backbone, "config": dataclasses.asdict(config)}
            with torch.device("meta"):  # count the weights before allocating any
                try:
                    params = _num_params(field_from_config(description))
                except RuntimeError as err:
                    raise BitstreamError(f"{self.name} header describes an impossible network: {err}") from None
            if params > MAX_PARAMS:
                raise BitstreamError(f"{self.name} header describes {params} weights, "
                                     f"more than the limit {MAX_PARAMS}")
            field = field_from_config(description)
            qts = deserialize_quantized(container.header["q"], container.sections, spec_of(field))
        except BitstreamError:
            raise
        except InputError as err:
            raise BitstreamError(f"{self.name} header describes an invalid network: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise BitstreamError(f"{self.name} header is incomplete or malformed: {err!r}") from None
        load_quantized_state(field, qts)
        field.eval()
        values = field.render(shape)
        image = meta_to_signal({**meta, "shape": [channels, *shape]},
                               torch.zeros(channels, *shape))
        return values_to_signal(image, values).quantized()


def _choose_bits(sizes: dict[int, int], target_bits: float, preferred: range) -> int | None:
    """:data:`SIZING_BITS` if its file lies within the tolerance of the target, else the
    preferred bit width whose file does, nearest to it; None if none does."""
    tolerance = math.log(1 + RATE_TOLERANCE)
    good = [b for b in preferred if abs(math.log(sizes[b] / target_bits)) <= tolerance]
    if SIZING_BITS in good:
        return SIZING_BITS
    return min(good, key=lambda b: abs(math.log(sizes[b] / target_bits))) if good else None


def _config_delta(field: Field) -> dict[str, Any]:
    """The architecture options that differ from the backbone's defaults (the header
    pays for every byte). ``in_dim`` and ``out_channels`` follow from the signal.
    Changing a ``Config`` default therefore changes the format: bump ``version``."""
    config = dataclasses.asdict(field.config)
    defaults = dataclasses.asdict(type(field.config)())
    return {k: v for k, v in config.items()
            if k not in ("in_dim", "out_channels") and v != defaults[k]}


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _target_bytes(signal: Signal, rate: Rate) -> float:
    bpp = rate.bpp if rate.kind == "bpp" else QUALITY_BPP[int(rate.quality)]
    if rate.kind == "quality" and int(rate.quality) not in QUALITY_BPP:
        raise InputError(f"quality must be 1..8, got {rate.quality}")
    return bpp * signal.num_samples / 8


def _register(backbone: str, **attrs: Any) -> type[ImageFieldCodec]:
    cls = type(f"{backbone.capitalize()}ImageCodec", (ImageFieldCodec,),
               {"name": backbone, "backbone": backbone, **attrs})
    return register_codec(backbone)(cls)


class HashGridImageCodec(ImageFieldCodec):
    """Hash-grid weight codec: sized by table size and level count instead of width."""

    name: ClassVar[str] = "hashgrid"
    backbone: ClassVar[str] = "hashgrid"
    mlp = {"mlp_width": 16, "mlp_depth": 1, "n_features_per_level": 2}

    def sized_config(self, signal: Signal, params: float) -> dict[str, Any]:
        from inrkit.inr.fields.hashgrid import MultiresGrid

        finest = max(signal.grid_shape)
        base = {"in_dim": 2, "out_channels": signal.channels, "base_resolution": 16,
                "finest_resolution": max(16, finest), **self.mlp}
        best = None
        for levels in range(2, 17):
            for log2_size in range(6, 21):
                grid = MultiresGrid(2, levels, log2_size, 16, base["finest_resolution"])
                count = grid.num_entries * self.mlp["n_features_per_level"] + _mlp_params(
                    levels * self.mlp["n_features_per_level"], self.mlp["mlp_width"],
                    self.mlp["mlp_depth"], signal.channels)
                # Closest in log-size; among near-ties prefer more levels (finer detail).
                key = (round(abs(math.log(count / params)), 1), -levels)
                if best is None or key < best[0]:
                    best = (key, {"n_levels": levels, "log2_hashmap_size": log2_size})
        return {**base, **best[1]}

    def qat_lr(self, field: Field) -> float:
        return 1e-4


def _mlp_params(n_in: int, width: int, depth: int, n_out: int) -> int:
    widths = [n_in] + [width] * depth + [n_out]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


register_codec("hashgrid")(HashGridImageCodec)
# Small networks fitted for compression want a larger step than the papers' 1e-4
# for width-256 SIRENs, and wider ones a smaller step. The rates follow the
# recipes measured in benchmarks/fit_speed.py (256×256 crop of kodim07): SIREN
# 2e-3 at width 50 and 5e-4 at width 144, SPDER 1e-3 and 5e-4, Fourier features
# 3e-3 at width 32 and 1e-3 at 128, Poly-INR 1e-2 throughout; at a fixed 2e-3
# on kodim07, SPDER diverged to ~15 dB at 0.5 and 1 bpp.
# The plain SIREN's width scale was 0.1 (the fit_speed recipes); on kodim07 with 100 s
# fits, paired runs gave 0.2 the edge at every rate (before the positional encoding,
# see SirenImageCodec, which wants 0.08): 28.03 → 28.12 dB at 0.25 bpp (width 65,
# both at the 2e-3 cap), 28.84 → 29.18 dB at 0.5 bpp (width 93), 29.66 → 30.01 dB at
# 1 bpp (width 132); 0.3 at 1 bpp (lr 2.3e-3) fell to 27.81 dB.
# SPDER used to be quantized at 10–12 bits (a width-66 SPDER fitted to kodim07 at
# 26.84 dB fell to 24.16 dB at 8 bits); with the small tensors 4 bits wider
# (widen_small_tensors) it keeps 26.74 dB at 8 bits, so it shares the others' range.
for _name, _fixed, _lr, _scale in (
    ("spder", {"depth": 3}, 1e-3, 0.05),
    ("polyinr", {"levels": 4}, None, None),
):
    _register(_name, fixed_config=_fixed, fit_lr=_lr, lr_width_scale=_scale)


PE_SCALE = 1.4
"""Strümpler et al.'s frequency ratio of the positional encoding (their Kodak setting)."""


def pe_frequencies_for(side: int) -> int:
    """Strümpler et al.'s 16 encoding frequencies for Kodak's 768 pixels; fewer for
    smaller images, so that the highest, ``1.4^(L-1)`` cycles across the image, stays
    at most a quarter of the longer side's pixel count (half its Nyquist rate)."""
    if side < 4:
        return 0
    return min(16, 1 + math.floor(math.log(side / 4) / math.log(PE_SCALE)))


class SirenImageCodec(ImageFieldCodec):
    """SIREN weight codec with Strümpler et al.'s positional encoding in front.

    Strümpler et al., "Implicit Neural Representations for Image Compression", ECCV 2022:
    a NeRF-style encoding (scale 1.4, 16 frequencies for Kodak, fewer for small images:
    :func:`pe_frequencies_for`) before the SIREN
    (:class:`~inrkit.inr.fields.siren.Siren`, ``pe_frequencies``), fitted, quantized with
    quantization-aware fine-tuning and entropy-coded as the other weight codecs.

    Departures from the paper, each measured on kodim07 (figures and commands in
    docs/results/images.md, "Why the siren codec is set as it is"):

    * ``lr = min(2e-3, 0.08 / width)``: with the encoding the best learning rate falls
      faster with the width than the plain SIREN's ``0.2 / width``. The paper fits at
      5e-4 for 25,000 epochs on a GPU, from a meta-learned start this codec does not have.
    * The network is sized at 7.0 bits per weight (``bits_per_param``), what its 8-bit
      weights code in after 100 s fits; the sizing does not know the budget, so after
      very long fits the 8-bit file falls under a low target and 9–10 bits are taken.
    * A divergence guard (``collapse_db = 1.0``): a fall of 1 dB below the best record
      sends the fit back to it at half the learning rate (long fits at the peak rate
      can drift into a larger-weighted state and never recover).
        """

    name: ClassVar[str] = "siren"
    backbone: ClassVar[str] = "siren"
    fixed_config = {"depth": 3}
    fit_lr = 2e-3
    lr_width_scale = 0.08
    bits_per_param = 7.0  # see "Sizing" above
    collapse_db = 1.0  # see "Divergence guard" above

    def signal_config(self, signal: Signal) -> dict[str, Any]:
        return {"pe_frequencies": pe_frequencies_for(max(signal.grid_shape)), "pe_scale": PE_SCALE}


register_codec("siren")(SirenImageCodec)


SIGMA_PER_PIXEL = 10.0 / 512
"""Tancik et al.'s σ = 10 for 512×512 images, as a frequency per pixel of the longer side."""


class FourierImageCodec(ImageFieldCodec):
    """Fourier-feature weight codec: features grow with the width, σ with the image.

    With a fixed 32 features (64 sinusoids) the encoding, not the width, limited the
    fit, and PSNR did not rise with rate (kodim07, 100 s: 25.0 / 25.2 / 24.9 dB at
    0.25 / 0.5 / 1 bpp). Now there are three features per hidden unit: on kodim07
    with 60 s fits at σ = 15, 1, 2, 3, 4 per unit gave 24.7, 25.5, 25.8, 25.8 dB at
    0.25 bpp and 25.9, 26.8, 26.7, 27.0 dB at 1 bpp. σ is in cycles per image, so the
    paper's σ = 10 for 512×512 images is scaled to the longer side: 15 for kodim07's
    768 (σ = 10 / 15 / 20 gave 26.1 / 25.8 / 24.9 dB at 0.25 bpp and 25.9 / 26.7 /
    27.1 dB at 1 bpp there), about 1 for a 48-pixel crop, where σ = 10 puts most
    features above the Nyquist rate.
    """

    name: ClassVar[str] = "fourier"
    backbone: ClassVar[str] = "fourier"
    fixed_config = {"depth": 3}
    width_ratios = {"num_features": 3.0}
    fit_lr = 3e-3
    lr_width_scale = 0.1

    def signal_config(self, signal: Signal) -> dict[str, Any]:
        return {"sigma": round(SIGMA_PER_PIXEL * max(signal.grid_shape), 3)}


register_codec("fourier")(FourierImageCodec)
