"""The ``vcinr`` codec: meta-learned latents of a shared gated SIREN, hyperprior-coded.

Schwarz et al., "Modality-Agnostic Variational Compression of Implicit Neural
Representations", ICML 2023 (arXiv:2301.09479); the model is :mod:`inrkit.inr.learned.vcinr`,
trained once with ``inrkit train vcinr`` and shared by encoder and decoder. The file
carries the model's SHA-256; decoding with a missing or different model file is a
:class:`inrkit.ModelError`. Images and audio take the same path: the signal's values are
cut into patches, each patch gets a latent by the Meta-SGD inner loop (the training
steps, or ``EncodeOptions.steps``), and the latent grid is coded with the prior of one
λ: ``y = g_a(φ)``, ``z = h_a(|y|)``; ``z`` with the factorised prior's CDFs, ``y`` with
the Gaussian conditional's CDFs at scale indexes computed from ``ẑ``.

Determinism (docs/design.md). Every table the rANS coder (CompressAI's
``RansEncoder``/``RansDecoder``, ``encode_with_indexes``) uses is an integer tensor of
the model file, and the scale indexes come from :func:`scale_indexes`, ``h_s`` in
Q.16 fixed point (int64 accumulation, rounding arithmetic shifts, ReLU, bucketing
against integer thresholds) that encoder and decoder both run, so the coded symbols
never depend on floating-point behaviour. The reconstruction from the decoded symbols
(``g_s`` and the base network) is ordinary float32 PyTorch on the CPU.

Rates: ``Rate(quality=i)`` uses the ``i``-th λ (1 = smallest); ``Rate(lmbda=λ)`` the
model's λ equal to it; ``Rate(bpp=…)`` (images) or ``Rate(kbps=…)`` (audio) the largest λ whose
*measured* file rate is at most the target (the smallest file if none is).
The latents are fitted once and packed with every prior to measure.

Refinement: ``EncodeOptions.time_budget`` (CLI ``--time``) spends about that many seconds
optimising the coded latents ``y`` of the chosen λ for the prior's own rate–distortion
loss (:meth:`inrkit.inr.learned.vcinr.VCINR.refine`; shared equally by all λs when a bpp or kbps
target makes every λ a candidate). Only the encoder changes: the file format and the
decoder are the same, and the inner loop plus ``g_a`` remain the default (fast) path.

Items: an image is one item and must have the model's channel count; audio is coded
channel by channel (mono items), resampled to the model's rate and back.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from inrkit.codecs.bitstream.container import Container, meta_to_signal, pack, values_to_signal
from inrkit.compressai_compat import RansDecoder, RansEncoder
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError, ModelError
from inrkit.inr.learned.rvqgan import resample
from inrkit.inr.learned.vcinr import FIXED_POINT_BITS, VCINR, LatentPrior, item_values, load_model
from inrkit.registry import register_codec

from .base import EncodeOptions, LearnedCodec, Rate, single_threaded

MAX_SYMBOL = 1 << 20  # far beyond any latent a trained prior produces

# -- fixed-point h_s -----------------------------------------------------------------------


def _int_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pads) -> np.ndarray:
    """Integer N-d convolution: ``x [Cin, *S]`` and ``w [Cout, Cin, *K]`` in Q.F, ``b`` in
    Q.F; int64 products and sums, rounded shift back to Q.F. ``pads`` = (lo, hi) per axis."""
    k = w.shape[2:]
    x = np.pad(x, [(0, 0)] + list(pads))
    out = [(s - kk) // stride + 1 for s, kk in zip(x.shape[1:], k, strict=True)]
    cols = []
    for offset in np.ndindex(*k):
        sl = tuple(
            slice(o, o + stride * (n - 1) + 1, stride) for o, n in zip(offset, out, strict=True)
        )
        cols.append(x[(slice(None),) + sl])
    cols = np.stack(cols, axis=1).reshape(x.shape[0] * math.prod(k), -1)  # Cin·K, out
    acc = w.reshape(w.shape[0], -1) @ cols
    acc = (acc + (1 << (FIXED_POINT_BITS - 1))) >> FIXED_POINT_BITS
    return (acc + b[:, None]).reshape(w.shape[0], *out)


def _int_deconv(x: np.ndarray, w: np.ndarray, b: np.ndarray, layer) -> np.ndarray:
    """Transposed convolution as a stride-1 convolution of the zero-stuffed input with the
    flipped, transposed kernel (``w [Cin, Cout, *K]``)."""
    s, p, op = layer.stride[0], layer.padding[0], layer.output_padding[0]
    k = w.shape[2:]
    up = np.zeros((x.shape[0], *[(n - 1) * s + 1 for n in x.shape[1:]]), dtype=np.int64)
    up[(slice(None),) + tuple(slice(None, None, s) for _ in x.shape[1:])] = x
    flipped = np.flip(w, axis=tuple(range(2, w.ndim))).swapaxes(0, 1)
    return _int_conv(
        up, np.ascontiguousarray(flipped), b, 1, [(kk - 1 - p, kk - 1 - p + op) for kk in k]
    )


def scale_indexes(prior: LatentPrior, z_symbols: np.ndarray, y_grid: tuple[int, ...]) -> np.ndarray:
    """Indexes into the Gaussian conditional's scale table for ``y [M, *y_grid]`` from the
    coded ``z`` symbols ``[N, *z_grid]``, in integer arithmetic only (CompressAI's
    ``build_indexes``: the number of table entries below the scale)."""
    median = prior.fixed_median.numpy().reshape(-1, *([1] * (z_symbols.ndim - 1)))
    x = (z_symbols.astype(np.int64) << FIXED_POINT_BITS) + median
    for i, layer in enumerate(prior.h_s):
        if isinstance(layer, torch.nn.ReLU):
            x = np.maximum(x, 0)
            continue
        w, b = getattr(prior, f"fixed_w{i}").numpy(), getattr(prior, f"fixed_b{i}").numpy()
        if isinstance(layer, torch.nn.modules.conv._ConvTransposeNd):
            x = _int_deconv(x, w, b, layer)
        else:
            pad = layer.padding[0]
            x = _int_conv(x, w, b, layer.stride[0], [(pad, pad)] * (x.ndim - 1))
    x = x[(slice(None),) + tuple(slice(0, n) for n in y_grid)]
    thresholds = prior.fixed_thresholds.numpy()
    below = (x[..., None] <= thresholds[:-1]).sum(axis=-1)
    return (len(thresholds) - 1 - below).astype(np.int32)


def _tables(model) -> tuple[list, list, list]:
    return (
        model._quantized_cdf.tolist(),
        model._cdf_length.reshape(-1).tolist(),
        model._offset.reshape(-1).tolist(),
    )


def _z_grid(y_grid: tuple[int, ...]) -> tuple[int, ...]:
    half = [(n + 1) // 2 for n in y_grid]  # h_a: two stride-2 convolutions, padding 2
    return tuple((n + 1) // 2 for n in half)


def _decode_symbols(section: bytes, indexes: list[int], tables: tuple) -> list[int]:
    """CompressAI's rANS ``decode_with_indexes`` on a zero-padded copy of ``section``.

    Its bypass mode (values outside a table's range) reads as many 4-bit words as the
    stream announces, without a bounds check, so hostile bytes could make it read past
    the buffer. Trailing zeros never change how a valid stream decodes and end every
    bypass run; an announced run costs at least 4 bits per 15 words it makes the decoder
    read, so 16 bytes of zeros per payload byte, plus 8 per symbol and the 64-bit state,
    keep every read inside the copy."""
    padding = 16 * len(section) + 8 * len(indexes) + 256
    return RansDecoder().decode_with_indexes(bytes(section) + bytes(padding), indexes, *tables)


def _checked(symbols: list[int], name: str) -> np.ndarray:
    """Decoded symbols as int64; a corrupt stream can decode to anything, so values no
    encoder makes (and that could overflow the fixed-point ``h_s``) are refused."""
    values = np.asarray(symbols, dtype=np.int64)
    if values.size and np.abs(values).max() > MAX_SYMBOL:
        raise BitstreamError(f"vcinr: decoded {name} symbols out of range (|s| > {MAX_SYMBOL})")
    return values


# -- the codec --------------------------------------------------------------------------------


@register_codec("vcinr")
class VCINRCodec(LearnedCodec):
    name = "vcinr"
    version = 1
    modalities = ("image", "audio")
    rate_kinds = ("bpp", "kbps", "quality", "lmbda")

    def load_model(self, path: Path) -> tuple[VCINR, str]:
        model, digest = load_model(path)
        if not model.priors or not all(p.frozen for p in model.priors):
            raise ModelError(
                f"{str(path)!r}: the VC-INR model has no finished latent priors "
                "(its training stopped before the prior stage ended)"
            )
        return model, digest

    def ladder(self, n: int) -> list[Rate]:
        if n < 1:
            raise InputError(f"the number of rate points must be at least 1, got {n}")
        count = len(self._model()[0].config.lambdas)
        return [Rate(quality=q) for q in range(1, min(n, count) + 1)]

    # -- encoding --------------------------------------------------------------------------
    def _items(self, signal: Signal, model: VCINR) -> torch.Tensor:
        cfg = model.config
        if signal.modality != cfg.modality:
            raise InputError(f"this VC-INR model codes {cfg.modality}, not {signal.modality}")
        if signal.modality == "audio":
            if round(signal.sample_rate) != signal.sample_rate:
                raise InputError(f"vcinr needs an integer sample rate, got {signal.sample_rate}")
            data = resample(signal.data, int(signal.sample_rate), cfg.sample_rate)
            signal = Signal(data.clamp(-1, 1), "audio", sample_rate=cfg.sample_rate)
        elif signal.channels != cfg.channels:
            raise InputError(
                f"this VC-INR model codes {cfg.channels}-channel images, got {signal.channels} channels"
            )
        return item_values(signal, model)

    @torch.no_grad()
    def latents(self, signal: Signal, steps: int | None = None) -> torch.Tensor:
        """The latent grids ``[items, d, *patch_grid]`` the inner loop finds for ``signal``."""
        model, _ = self._model()
        return model.fit(self._items(signal, model), steps)

    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        self.check(signal, rate)
        model, digest = self._model()
        options = options or EncodeOptions()
        lambdas = model.config.lambdas
        if rate.kind == "bpp" and signal.modality != "image":
            raise InputError("vcinr takes an audio rate in kbps, not bpp")
        if rate.kind == "kbps" and signal.modality != "audio":
            raise InputError("vcinr takes an image rate in bpp, not kbps")
        if rate.kind == "quality":
            indexes = [min(int(rate.value), len(lambdas)) - 1]
        elif rate.kind == "lmbda":
            indexes = [i for i, v in enumerate(lambdas) if math.isclose(v, rate.value, rel_tol=1e-6)]
            if not indexes:
                raise InputError(
                    f"this VC-INR model was trained for λ in {list(lambdas)}, not {rate.value:g}"
                )
            indexes = indexes[:1]
        else:
            indexes = list(range(len(lambdas)))
        torch.manual_seed(options.seed)
        values = self._items(signal, model)
        with torch.no_grad():
            latents = model.fit(values, options.steps)
        files = {}
        for i in indexes:
            with torch.no_grad():
                y = model.priors[i].g_a(latents)
            if options.time_budget:
                seconds = options.time_budget / len(indexes)
                y = model.refine(
                    i, y, values, seconds=seconds, seed=options.seed, progress=options.progress
                )
            files[i] = self._pack(signal, y, i, model, digest)
        if len(files) == 1:
            return files[indexes[0]]
        fitting = [i for i, f in files.items() if self.measured_rate(signal, f) <= rate.value]
        if not fitting:
            return min(files.values(), key=len)
        return files[max(fitting, key=lambdas.__getitem__)]

    @torch.no_grad()
    def _pack(self, signal: Signal, y: torch.Tensor, index: int, model: VCINR, digest: str) -> bytes:
        """The file for the λ ``index`` from its unrounded latents ``y`` (``g_a(φ)``, or refined)."""
        prior = model.priors[index]
        z = prior.h_a(torch.abs(y))
        y_grid, z_grid = tuple(y.shape[2:]), tuple(z.shape[2:])
        eb, gc = prior.entropy_bottleneck, prior.gaussian_conditional
        median = eb.quantiles[:, 0, 1].reshape(1, -1, *([1] * len(z_grid)))
        z_sym = torch.round(z - median).to(torch.int64).numpy()
        y_sym = torch.round(y).to(torch.int64).numpy()
        z_idx = np.broadcast_to(
            np.arange(z.shape[1]).reshape(-1, *([1] * len(z_grid))), z_sym.shape[1:]
        )
        symbols_z, index_z, symbols_y, index_y = [], [], [], []
        for item in range(y.shape[0]):
            symbols_z += z_sym[item].ravel().tolist()
            index_z += z_idx.ravel().tolist()
            symbols_y += y_sym[item].ravel().tolist()
            index_y += scale_indexes(prior, z_sym[item], y_grid).ravel().tolist()
        header = {
            "model": {"sha256": digest},
            "lambda_index": index,
            "items": int(y.shape[0]),
            "patch_grid": list(y_grid),
        }
        if signal.modality == "audio":
            header["model"]["sample_rate"] = model.config.sample_rate
        sections = {
            "z": RansEncoder().encode_with_indexes(symbols_z, index_z, *_tables(eb)),
            "y": RansEncoder().encode_with_indexes(symbols_y, index_y, *_tables(gc)),
        }
        return pack(Container.for_signal(self.name, self.version, signal, header, sections))

    # -- decoding -----------------------------------------------------------------------------
    @single_threaded
    @torch.no_grad()
    def decode(self, data: bytes, **options) -> Signal:
        c = self.open(data)
        meta, head = c.signal_meta(), c.header
        if not isinstance(head.get("model"), dict):
            raise BitstreamError("vcinr file header lacks the model description")
        model, digest = self._model()
        cfg = model.config
        if head["model"].get("sha256") != digest:
            raise ModelError(
                f"this file was encoded with the VC-INR model sha256={head['model'].get('sha256')!r}, "
                f"but {str(self.model_path)!r} has sha256={digest!r}; pass the model it was made with"
            )
        if c.modality != cfg.modality:
            raise BitstreamError(
                f"vcinr file of modality {c.modality!r} for a {cfg.modality} model"
            )
        index = head.get("lambda_index")
        if not (
            isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(cfg.lambdas)
        ):
            raise BitstreamError(
                f"vcinr header: lambda_index must be 0..{len(cfg.lambdas) - 1}, found {index!r}"
            )
        shape = [int(v) for v in c.shape]
        if cfg.modality == "audio":
            rate = meta.get("sample_rate")
            if not isinstance(rate, int) or rate <= 0:
                raise BitstreamError(
                    f"vcinr header: an integer sample rate expected, found {rate!r}"
                )
            if head["model"].get("sample_rate") != cfg.sample_rate:
                raise BitstreamError(
                    f"vcinr header: model rate {head['model'].get('sample_rate')!r} is not {cfg.sample_rate}"
                )
            items, length = shape[0], shape[1]
            grid = (-(-length * cfg.sample_rate // rate),)
        else:
            if len(shape) != 3 or shape[0] != cfg.channels:
                raise BitstreamError(
                    f"vcinr header: a {cfg.channels}×H×W image expected, found shape {shape}"
                )
            items, grid = 1, tuple(shape[1:])
        if head.get("items") != items:
            raise BitstreamError(
                f"vcinr header: {head.get('items')!r} items for a signal of shape {shape}"
            )
        pgrid = list(model.patch_grid(grid))
        if head.get("patch_grid") != pgrid:
            raise BitstreamError(
                f"vcinr header: patch grid {head.get('patch_grid')!r}, expected {pgrid}"
            )
        if set(c.sections) != {"z", "y"}:
            raise BitstreamError(f"vcinr file sections {sorted(c.sections)}, expected ['y', 'z']")

        prior = model.priors[index]
        eb, gc = prior.entropy_bottleneck, prior.gaussian_conditional
        y_grid, z_grid = tuple(pgrid), _z_grid(tuple(pgrid))
        n, m = cfg.prior_channels, cfg.prior_latent
        z_idx = np.broadcast_to(
            np.arange(n).reshape(-1, *([1] * len(z_grid))), (n, *z_grid)
        ).ravel()
        z_all = _decode_symbols(c.section("z"), np.tile(z_idx, items).tolist(), _tables(eb))
        z_sym = _checked(z_all, "z").reshape(items, n, *z_grid)
        y_idx = np.concatenate(
            [scale_indexes(prior, z_sym[i], y_grid).ravel() for i in range(items)]
        )
        y_all = _decode_symbols(c.section("y"), y_idx.tolist(), _tables(gc))
        y_hat = torch.from_numpy(_checked(y_all, "y").astype(np.float32).reshape(items, m, *y_grid))
        values = model.reconstruct(prior.g_s(y_hat), grid)
        if cfg.modality == "audio":
            audio = resample(values[..., 0], cfg.sample_rate, meta["sample_rate"])[:, : shape[1]]
            return meta_to_signal(meta, audio.clamp(-1.0, 1.0).contiguous()).quantized()
        signal = meta_to_signal(meta, torch.zeros(shape))
        return values_to_signal(signal, values[0]).quantized()
