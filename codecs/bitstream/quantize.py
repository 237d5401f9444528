"""Quantization of fitted fields: uniform symmetric scalar quantization, QAT, pruning.

Follows Strümpler et al., "Implicit Neural Representations for Image
Compression", ECCV 2022 (reference code: github.com/YannickStruempler/
inr_based_compression, ``image_compression/Quantizer.py``), which quantizes
every weight and bias of the INR with AIMET's symmetric uniform quantizer at
bit width ``b``::

    step = max|w| / (2**(b-1) - 1),   q = clamp(round(w / step), ±(2**(b-1) - 1)),   ŵ = q · step

then retrains with quantization in the loop (straight-through rounding, Adam,
full-image batches, keeping the best state), and entropy-codes the integers of
all tensors together with one frequency table.

Departures:

* No AIMET: the quantizer is written out here as a symmetric min/max scheme:
  the step always covers ``max|w|``, so nothing is clipped. The reference leaves
  AIMET's default scheme, ``tf_enhanced``, which searches the range for the best
  signal-to-quantization-noise ratio and may clip outliers. During QAT the step is
  recomputed from the current weights at every step.
* AdaRound, which the reference runs by default before retraining (1,000
  iterations per layer; it also freezes the steps it found), is not included:
  rounding is to nearest.
* QAT is short: the weight codecs give it about a tenth of the fitting steps (at
  most 100 steps of 8,192 random pixels, about two passes over a 768×512 image)
  where the reference retrains 300 full-image epochs; see
  :func:`quantization_aware_finetune`.
* Per-output-channel steps (axis 0) are offered besides the paper's per-tensor
  steps; 1-D tensors (biases) always use one step.
* Tensors with the same bit width share one entropy-coding table or get one
  each, whichever gives the smaller file (the reference always shares).
* Buffers (e.g. fixed Fourier-feature matrices) are not quantized: decoders
  rebuild them from the architecture config.
* :func:`widen_small_tensors` gives the few small tensors (biases, an MLP's
  input and output layers) 4 more bits than the rest, where the reference
  quantizes every tensor at one width (see there for why and what it gains).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from inrkit.errors import BitstreamError, InputError

from .container import read_varint, write_varint
from .entropy import decode_integers, encode_integers

__all__ = [
    "QuantizedTensor",
    "dequantize",
    "deserialize_quantized",
    "fake_quantize",
    "load_quantized_state",
    "prune_by_magnitude",
    "quantization_aware_finetune",
    "quantize_state",
    "quantize_tensor",
    "serialize_quantized",
    "spec_of",
    "widen_small_tensors",
]

MIN_BITS, MAX_BITS = 2, 16
STEPS_SECTION, SYMBOLS_SECTION = "q.steps", "q.sym"


@dataclass
class QuantizedTensor:
    """Integer symbols and float32 step(s) of one tensor: ``ŵ = symbols · steps``.

    ``steps`` has one entry (per tensor) or ``shape[0]`` entries (per channel).
    """

    name: str
    shape: tuple[int, ...]
    bits: int
    per_channel: bool
    steps: np.ndarray  # float32
    symbols: np.ndarray  # int64, flattened in C order


def _levels(bits: int) -> int:
    if not isinstance(bits, (int, np.integer)) or not MIN_BITS <= bits <= MAX_BITS:
        raise InputError(f"quantization bit width must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    return (1 << (int(bits) - 1)) - 1


def _channelwise(shape: tuple[int, ...], per_channel: bool) -> bool:
    return per_channel and len(shape) >= 2


# -- quantize / dequantize ------------------------------------------------------------


def quantize_tensor(t: torch.Tensor, bits: int, per_channel: bool = False, name: str = "") -> QuantizedTensor:
    """Symmetric uniform quantization; the error is at most half a step everywhere."""
    levels = _levels(bits)
    w = t.detach().to("cpu", torch.float32)
    shape = tuple(int(v) for v in w.shape)
    channelwise = _channelwise(shape, per_channel)
    rows = w.reshape(shape[0], -1) if channelwise else w.reshape(1, -1)
    peak = rows.abs().amax(dim=1) if rows.numel() else torch.zeros(rows.shape[0])
    if not torch.isfinite(peak).all():
        raise InputError(f"tensor {name or '(unnamed)'} has non-finite values; cannot quantize")
    steps = (peak / levels).to(torch.float32)
    safe = torch.where(steps > 0, steps, torch.ones_like(steps))
    symbols = torch.round(rows / safe[:, None]).clamp(-levels, levels).to(torch.int64)
    return QuantizedTensor(name, shape, int(bits), channelwise, steps.numpy(), symbols.reshape(-1).numpy())


def dequantize(q: QuantizedTensor) -> torch.Tensor:
    """``symbols × step`` in float32: exact integers times a float32, one rounding, so
    every machine gets the same weights."""
    steps = torch.from_numpy(np.asarray(q.steps, dtype=np.float32))
    rows = torch.from_numpy(np.asarray(q.symbols, dtype=np.int64)).to(torch.float32)
    rows = rows.reshape(steps.numel(), -1) * steps[:, None]
    return rows.reshape(q.shape)


def fake_quantize(t: torch.Tensor, bits: int, per_channel: bool = False) -> torch.Tensor:
    """Quantize–dequantize in the forward pass, identity gradient (straight-through
    estimator); the step follows the current ``max|t|`` and gets no gradient."""
    levels = _levels(bits)
    channelwise = _channelwise(tuple(t.shape), per_channel)
    rows = t.reshape(t.shape[0], -1) if channelwise else t.reshape(1, -1)
    step = (rows.detach().abs().amax(dim=1, keepdim=True) / levels).clamp_min(torch.finfo(t.dtype).tiny)
    q = (torch.round(rows / step).clamp(-levels, levels) * step).reshape(t.shape)
    return t + (q - t).detach()


# -- whole modules ----------------------------------------------------------------------


BitsArg = int | Mapping[str, int] | Callable[[str, torch.Tensor], int]


def _bits_for(bits: BitsArg, name: str, p: torch.Tensor) -> int:
    if callable(bits):
        return bits(name, p)
    if isinstance(bits, Mapping):
        if name not in bits:
            raise InputError(f"no bit width given for parameter {name!r}")
        return bits[name]
    return bits


def quantize_state(module: nn.Module, bits: BitsArg, per_channel: bool = False) -> list[QuantizedTensor]:
    """Quantize every parameter of ``module`` (in ``named_parameters`` order).

    ``bits`` is one width for all, a ``{name: bits}`` mapping, or a function
    ``(name, tensor) -> bits``.
    """
    return [
        quantize_tensor(p, _bits_for(bits, n, p), per_channel, name=n) for n, p in module.named_parameters()
    ]


SMALL_TENSOR_FRACTION = 1 / 4
SMALL_TENSOR_EXTRA_BITS = 4
SMALL_TENSORS_MAX_SHARE = 1 / 6


def widen_small_tensors(module: nn.Module, bits: int) -> dict[str, int]:
    """Per-parameter bit widths: ``bits``, and ``bits`` + :data:`SMALL_TENSOR_EXTRA_BITS`
    (at most 16) for every tensor with at most :data:`SMALL_TENSOR_FRACTION` of the
    largest tensor's entries — biases and an MLP's input and output layers — as long
    as those hold at most :data:`SMALL_TENSORS_MAX_SHARE` of all entries together
    (so widening costs at most about 8 % more bits); else ``bits`` for every tensor.

    Those tensors hold a few percent of the numbers, so the extra bits cost little,
    but in a SIREN they carry most of the quantization error: the first layer's
    weights and every bias sit inside ``sin(ω0 · …)``, so a step δ becomes a phase
    error of ω0·δ (ω0 = 30). Measured on a width-65 SIREN fitted to kodim07 (28.06 dB):
    8 bits everywhere give 25.37 dB, with the small tensors at 12 bits 27.95 dB
    for 2.3 % more bytes (biases alone at 16 bits: 27.14; first layer alone: 25.84);
    a width-66 SPDER (26.84 dB) keeps 26.74 dB at 8 bits instead of 24.16.
    A quarter rather than less: a width-23 SIREN's input layer has 46 entries against
    529 in a hidden layer, and left at 7 bits it took a test crop from 22.9 to 13.8 dB.
    The share cap leaves alone the tiny hash grids and Fourier-feature networks whose
    MLP or output layer is a large part of the file (there the widening bought nothing).
    """
    sizes = {n: p.numel() for n, p in module.named_parameters()}
    largest = max(sizes.values(), default=0)
    small = {n for n, size in sizes.items() if size <= SMALL_TENSOR_FRACTION * largest}
    if sum(sizes[n] for n in small) > SMALL_TENSORS_MAX_SHARE * sum(sizes.values()):
        small = set()
    wide = min(bits + SMALL_TENSOR_EXTRA_BITS, MAX_BITS)
    return {n: wide if n in small else bits for n in sizes}


@torch.no_grad()
def load_quantized_state(module: nn.Module, qts: list[QuantizedTensor]) -> None:
    """Copy dequantized weights into ``module``'s parameters, checking names and shapes."""
    params = dict(module.named_parameters())
    if [q.name for q in qts] != list(params):
        raise BitstreamError(
            f"quantized tensors {[q.name for q in qts]} do not match the architecture's "
            f"parameters {list(params)}"
        )
    for q in qts:
        p = params[q.name]
        if tuple(p.shape) != tuple(q.shape):
            raise BitstreamError(f"tensor {q.name}: file has shape {q.shape}, architecture {tuple(p.shape)}")
        p.copy_(dequantize(q).to(p.device, p.dtype))


def spec_of(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """``[(name, shape)]`` of ``module``'s parameters: what the decoder knows from the
    architecture config, so shapes are never stored in the file."""
    return [(n, tuple(int(v) for v in p.shape)) for n, p in module.named_parameters()]


# -- serialization ----------------------------------------------------------------------


def serialize_quantized(qts: list[QuantizedTensor]) -> tuple[dict, dict[str, bytes]]:
    """Pack quantized tensors into a small JSON-safe header and two sections.

    Header: ``{"b": bits, "pc": 0|1}``, or per-tensor lists when tensors differ.
    Section ``q.steps``: all steps as little-endian float32, in tensor order.
    Section ``q.sym``: per bit-width group (in order of first appearance) one
    byte, 1 = one shared stream for the group, 0 = one stream per tensor; then
    the :func:`encode_integers` streams, each prefixed by its varint length.
    Whichever of shared / per-tensor is smaller is used for each group.
    """
    if not qts:
        return {"b": [], "pc": []}, {STEPS_SECTION: b"", SYMBOLS_SECTION: b""}
    bits = [q.bits for q in qts]
    pcs = [int(q.per_channel) for q in qts]
    matter = {p for q, p in zip(qts, pcs, strict=True) if len(q.shape) >= 2}  # 1-D: always per tensor
    header = {
        "b": bits[0] if len(set(bits)) == 1 else bits,
        "pc": (matter.pop() if matter else 0) if len(matter) <= 1 else pcs,
    }
    steps = np.concatenate([np.asarray(q.steps, dtype="<f4").reshape(-1) for q in qts])
    out = bytearray()
    for group in _groups(bits):
        split = [encode_integers(qts[i].symbols) for i in group]
        shared = [encode_integers(np.concatenate([qts[i].symbols for i in group]))]
        cost = [sum(len(s) + len(write_varint(len(s))) for s in v) for v in (split, shared)]
        use_shared = len(group) > 1 and cost[1] < cost[0]
        out.append(int(use_shared))
        for s in shared if use_shared else split:
            out += write_varint(len(s)) + s
    return header, {STEPS_SECTION: steps.tobytes(), SYMBOLS_SECTION: bytes(out)}


def deserialize_quantized(
    header: dict, sections: Mapping[str, bytes], spec: list[tuple[str, tuple[int, ...]]]
) -> list[QuantizedTensor]:
    """Inverse of :func:`serialize_quantized`; ``spec`` comes from :func:`spec_of` on the
    rebuilt architecture. Anything inconsistent raises BitstreamError."""
    n = len(spec)
    if not isinstance(header, dict):
        raise BitstreamError(f"quantization header must be an object, found {type(header).__name__}")
    bits = _per_tensor(header.get("b"), n, "b")
    pcs = _per_tensor(header.get("pc"), n, "pc")
    for b in bits:
        if not MIN_BITS <= b <= MAX_BITS:
            raise BitstreamError(f"quantization bit width {b} outside {MIN_BITS}..{MAX_BITS}")
    if any(p not in (0, 1) for p in pcs):
        raise BitstreamError(f"quantization per-channel flags must be 0 or 1, found {pcs}")
    for key in (STEPS_SECTION, SYMBOLS_SECTION):
        if key not in sections:
            raise BitstreamError(f"missing section {key!r}")

    counts = [math.prod(shape) for _, shape in spec]
    n_steps = [shape[0] if _channelwise(shape, bool(pc)) else 1 for (_, shape), pc in zip(spec, pcs, strict=True)]
    raw_steps = sections[STEPS_SECTION]
    if len(raw_steps) != 4 * sum(n_steps):
        raise BitstreamError(f"section {STEPS_SECTION}: expected {4 * sum(n_steps)} bytes, found {len(raw_steps)}")
    steps = np.frombuffer(raw_steps, dtype="<f4").astype(np.float32)
    if not (np.isfinite(steps).all() and (steps >= 0).all()):
        raise BitstreamError(f"section {STEPS_SECTION}: steps must be finite and non-negative")

    data, pos = sections[SYMBOLS_SECTION], 0
    symbols: list[np.ndarray | None] = [None] * n
    for group in _groups(bits):
        if pos >= len(data):
            raise BitstreamError(f"section {SYMBOLS_SECTION}: truncated")
        shared = data[pos]
        pos += 1
        if shared not in (0, 1) or (shared and len(group) < 2):
            raise BitstreamError(f"section {SYMBOLS_SECTION}: bad group flag {shared}")
        streams = [group] if shared else [[i] for i in group]
        for members in streams:
            length, pos = read_varint(data, pos, "symbol stream length")
            if length > len(data) - pos:
                raise BitstreamError(f"section {SYMBOLS_SECTION}: stream of {length} bytes overruns the section")
            values = decode_integers(data[pos : pos + length], sum(counts[i] for i in members))
            pos += length
            for i, part in zip(members, np.split(values, np.cumsum([counts[i] for i in members])[:-1]), strict=True):
                symbols[i] = part
    if pos != len(data):
        raise BitstreamError(f"section {SYMBOLS_SECTION}: {len(data) - pos} unexpected trailing bytes")

    out, offsets = [], np.cumsum([0, *n_steps])
    for i, (name, shape) in enumerate(spec):
        levels = _levels(bits[i])
        s = symbols[i]
        if s.size and int(np.abs(s).max()) > levels:
            raise BitstreamError(f"tensor {name}: symbol outside ±{levels} for {bits[i]}-bit quantization")
        out.append(QuantizedTensor(name, tuple(shape), bits[i], bool(pcs[i]) and len(shape) >= 2,
                                   steps[offsets[i] : offsets[i + 1]], s))
    return out


def _groups(bits: list[int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i, b in enumerate(bits):
        groups.setdefault(b, []).append(i)
    return list(groups.values())


def _per_tensor(value, n: int, key: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * n
    if isinstance(value, list) and len(value) == n and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    raise BitstreamError(f"quantization header {key!r} must be an integer or {n} integers, found {value!r}")


# -- quantization-aware fine-tuning ----------------------------------------------------


def _psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR of values in the fitting range [-1, 1], equal to PSNR of the [0, 1] signal."""
    from inrkit.inr.fit import psnr_from_mse

    return psnr_from_mse(torch.mean((pred.clamp(-1, 1) - target) ** 2).item())


def _quantized_params(module: nn.Module, bits: BitsArg, per_channel: bool) -> dict[str, torch.Tensor]:
    return {n: fake_quantize(p, _bits_for(bits, n, p), per_channel) for n, p in module.named_parameters()}


def _forward_batched(module, params, coords, batch_size):
    return torch.cat([functional_call(module, params, (c,)) for c in coords.split(batch_size)])


def quantization_aware_finetune(
    field: nn.Module,
    coords: torch.Tensor,
    values: torch.Tensor,
    bits: BitsArg,
    per_channel: bool = False,
    steps: int = 300,
    lr: float = 1e-6,
    batch_size: int | None = None,
    eval_every: int = 10,
    progress: bool = False,
) -> dict[str, float]:
    """Fine-tune ``field`` in place with fake-quantized weights (Strümpler et al. §3.3).

    ``coords`` ``[N, d]`` and ``values`` ``[N, C]`` (fitting range) are the whole
    signal. Each step is one Adam step on the MSE of the quantized field
    (``batch_size`` points sampled at random, or the full signal as in the
    reference); the parameters whose quantized PSNR is best are kept. Defaults
    are the reference's (300 full-image epochs, lr 1e-6). On a 128×128 crop with
    100 steps at 6 bits, lr 1e-6 / 1e-5 / 1e-4 gained +0.92 / +0.61 / +0.00 dB over
    plain post-training quantization (+0.16 dB at 8 bits with 1e-6).

    Returns ``{"psnr_float", "psnr_ptq", "psnr_qat"}``: before quantization,
    after plain post-training quantization, and after fine-tuning.
    """
    coords = coords.reshape(-1, coords.shape[-1])
    values = values.reshape(coords.shape[0], -1)
    chunk = batch_size or coords.shape[0]

    def evaluate(quantized: bool) -> float:
        with torch.no_grad():
            params = _quantized_params(field, bits, per_channel) if quantized else dict(field.named_parameters())
            return _psnr(_forward_batched(field, params, coords, 1 << 16), values)

    history = {"psnr_float": evaluate(False), "psnr_ptq": evaluate(True)}
    best, best_state = history["psnr_ptq"], copy.deepcopy(field.state_dict())
    optim = torch.optim.Adam(field.parameters(), lr=lr)
    generator = torch.Generator(device=coords.device).manual_seed(0)
    iterator = range(steps)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="QAT", leave=False)
    for step in iterator:
        if chunk < coords.shape[0]:
            idx = torch.randint(coords.shape[0], (chunk,), device=coords.device, generator=generator)
            x, y = coords[idx], values[idx]
        else:
            x, y = coords, values
        loss = torch.mean((functional_call(field, _quantized_params(field, bits, per_channel), (x,)) - y) ** 2)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            psnr = evaluate(True)
            if psnr > best:
                best, best_state = psnr, copy.deepcopy(field.state_dict())
    field.load_state_dict(best_state)
    history["psnr_qat"] = best
    return history


# -- pruning ----------------------------------------------------------------------------


@torch.no_grad()
def prune_by_magnitude(module: nn.Module, fraction: float, min_dim: int = 2) -> dict[str, torch.Tensor]:
    """Zero the ``fraction`` of smallest-magnitude entries in each parameter with at least
    ``min_dim`` dimensions (weights, not biases); zeros cost little after entropy
    coding. Returns the keep-masks by parameter name, e.g. to re-apply after fine-tuning."""
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"pruning fraction must be in [0, 1), got {fraction}")
    masks = {}
    for name, p in module.named_parameters():
        if p.dim() < min_dim or p.numel() == 0:
            continue
        k = int(round(fraction * p.numel()))
        mask = torch.ones_like(p, dtype=torch.bool)
        if k:
            order = torch.argsort(p.detach().abs().reshape(-1), stable=True)
            mask.view(-1)[order[:k]] = False
            p.mul_(mask)
        masks[name] = mask
    return masks
