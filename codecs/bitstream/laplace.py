"""Entropy coding of integer latents with quantized discrete-Laplace tables built by integer arithmetic.

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023.
    Leguay et al., "Low-complexity Overfitted Neural Image Codec", MMSP 2023 (the integer ARM
    and the (mu offset, scale) indexed coding contexts of its C++ decoder).
    Kim et al., "C3: High-performance and low-complexity neural compression from a single image
    or video", CVPR 2024.

Each latent ``y`` is coded with a discrete Laplace distribution whose parameters come from the
integer ARM (``inrkit.inr.latents.arm``) as two integers: a fixed-point location ``mu_fp``
(``mu_frac_bits`` fractional bits) and a scale index ``k`` on a log2 grid,
``b_k = 2 ** (log2_scale_min + k / steps_per_octave)``. The location is split into its rounded
integer part ``m`` and a sub-integer offset ``delta = j / mu_steps`` with ``j`` in
``[-mu_steps/2, mu_steps/2)`` (Cool-chic's C++ decoder does the same with 16 offsets), the symbol
actually coded is ``y - m``, and its table is row ``k * mu_steps + j + mu_steps / 2``.

Departures from Cool-chic and why:
    * Cool-chic's C++ decoder codes latents with CABAC (greater-than-0..3 flags plus Exp-Golomb),
      with adaptive binary contexts per (mu offset, scale). Here the symbols go through CompressAI's
      rANS with *static* 16-bit CDF tables: no adaptation, so a wavefront of symbols can be decoded
      in one ``decode_stream`` call, and the code length is the model's (measured within ~1 %).
    * The tables are computed with integers only: the Laplace CDF ``1 - exp(-u)/2`` needs
      ``exp(-u) = 2 ** (-u * log2(e))``; ``log2(e)`` is a Q30 integer constant, ``2 ** -f`` for the
      fractional part is a product of the Q30 constants ``2 ** (-2 ** -i)``, themselves obtained
      by a chain of exact integer square roots (``math.isqrt``). No float ever feeds a CDF, so
      every machine builds bit-identical tables.
    * Every table covers ``[-R_k, R_k]`` around ``m`` (``R_k ~ 12.5 b_k``, tail mass < 2^-18) plus
      CompressAI's escape symbol. Two kinds of table (``get_table(..., escape=...)``):

      - ``escape=False`` (what the ``coolchic`` codec uses): the escape symbol has frequency 0,
        every symbol of ``[-R_k, R_k]`` at least 1 (the tail mass is dropped). CompressAI's
        decoder can then never select the escape, so its unchecked bypass path cannot run,
        whatever the bytes. ``encode`` refuses a value outside its row's range
        (InputError); the encoder clamps such latents first (``table_range`` gives the range;
        see ``inrkit.codecs.coolchic``).
      - ``escape=True`` (the default, kept for the model-level tests): the escape has a
        frequency >= 1 and values outside are coded by CompressAI's bypass mode (4-bit chunks).
    * Latents must lie in ``[-LATENT_ABS_MAX, LATENT_ABS_MAX]`` (InputError at encode,
      BitstreamError at decode); this bounds every integer in the decoder.

Framing: ``encode`` returns ``u32 payload length | u32 CRC-32 of the payload | payload`` (big
endian). CompressAI's decoder reads its buffer without bounds checks, so the decoder checks the
length and CRC before touching the payload (a truncated, extended or corrupted stream is
rejected there, before any rANS call) and hands CompressAI a copy followed by zero guard words.
Decoded values are checked against the latent range after every call. Malformed input therefore
ends in ``BitstreamError``.

Bounds. Without the bypass (escape-free tables), CompressAI's 64-bit rANS decoder reads at most
one 32-bit word per decoded symbol after its 8-byte initial state, so a guard of 4 bytes per
announced symbol (plus 16) bounds every read, for *any* payload, crafted or not: the decoder of an
escape-free table cannot read out of bounds. With escape tables a payload crafted to match its
CRC could drive the bypass path (up to ~30 word reads per escape) beyond their larger guard
(8 bytes per symbol plus 16 per payload byte); that residual risk remains for ``escape=True``
tables only, which no codec decodes.
"""

from __future__ import annotations

import functools
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from inrkit.compressai_compat import RansDecoder, RansEncoder
from inrkit.errors import BitstreamError, InputError

__all__ = [
    "LATENT_ABS_MAX",
    "PRECISION",
    "LaplaceTable",
    "LaplaceDecoder",
    "encode",
    "get_table",
    "ideal_bits",
    "int_exp2_neg",
    "split_mu",
]

PRECISION = 16  # CompressAI's rANS precision (fixed inside CompressAI): frequencies sum to 2^16
LATENT_ABS_MAX = 1 << 15  # |latent| bound, checked at encode and decode
_Q = 30  # fixed-point fractional bits of the integer exp and CDFs
_ONE = 1 << _Q
_LOG2E_Q30 = 1549082005  # round(2^30 / ln 2) = round(2^30 * 1.4426950408889634...)
_EXP_FRAC_BITS = 24  # fractional bits of the exponent v in 2^-v
_HEADER = struct.Struct(">II")
_PAD = 3  # trailing pad symbols of every stream (see encode)


def _pow2_neg_frac_constants() -> list[int]:
    """Q30 integers c_i = round-down(2^30 * 2^(-2^-i)) for i = 1.._EXP_FRAC_BITS, by exact isqrt."""
    consts = []
    c = _ONE // 2  # 2^-1 in Q30; sqrt chain: 2^-(1/2), 2^-(1/4), ...
    for _ in range(_EXP_FRAC_BITS):
        c = math.isqrt(c << _Q)
        consts.append(c)
    return consts


_POW2_NEG_FRAC = _pow2_neg_frac_constants()


def int_exp2_neg(v_fp: np.ndarray) -> np.ndarray:
    """Integer ``2 ** -v`` in Q30 for non-negative exponents in Q24 (24 fractional bits).

    Range reduction ``v = n + f`` (integer ``n``, fraction ``f``), ``2^-f`` as the product of the
    constants ``2^(-2^-i)`` for the set bits of ``f``, then a rounding right shift by ``n``.

    Args:
        v_fp: int64 array of exponents ``v * 2^24``, all >= 0.

    Returns:
        int64 array, ``2^30 * 2^-v`` within 2^-25 relative (each isqrt of the chain rounds
        down); monotone non-increasing in ``v`` up to one unit.

    Raises:
        InputError: a negative exponent.
    """
    v_fp = np.asarray(v_fp, dtype=np.int64)
    if v_fp.size and int(v_fp.min()) < 0:
        raise InputError("int_exp2_neg: exponents must be >= 0")
    n = np.minimum(v_fp >> _EXP_FRAC_BITS, 62)
    f = v_fp & ((1 << _EXP_FRAC_BITS) - 1)
    r = np.full(v_fp.shape, _ONE, dtype=np.int64)
    half = np.int64(1 << (_Q - 1))
    for i, c in enumerate(_POW2_NEG_FRAC, start=1):
        bit = ((f >> (_EXP_FRAC_BITS - i)) & 1).astype(bool)
        r = np.where(bit, (r * np.int64(c) + half) >> _Q, r)
    # rounding shift by n (n <= 62; r < 2^31 so r + 2^(n-1) fits)
    rounding = np.where(n > 0, np.left_shift(np.int64(1), np.maximum(n - 1, 0)), 0)
    return (r + rounding) >> n


def split_mu(mu_fp: np.ndarray, mu_frac_bits: int, mu_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Split fixed-point locations into a rounded integer part and a sub-integer offset index.

    ``u = round(mu * mu_steps)``, ``m = round(u / mu_steps)``, ``j = u - m * mu_steps`` in
    ``[-mu_steps/2, mu_steps/2)``, both roundings half up (``(x + 2^(s-1)) >> s``), integers only.

    Args:
        mu_fp: int64 array of ``mu * 2^mu_frac_bits``.
        mu_frac_bits: fractional bits of ``mu_fp``.
        mu_steps: offsets per unit (a power of two, at most ``2^mu_frac_bits``).

    Returns:
        (m, j) int64 arrays of ``mu_fp``'s shape.

    Raises:
        InputError: ``mu_steps`` finer than the fixed point.
    """
    sb = int(mu_steps).bit_length() - 1
    sh = mu_frac_bits - sb
    if sh < 0 or (1 << sb) != mu_steps:
        raise InputError(f"split_mu: mu_steps {mu_steps} must be a power of two <= 2^{mu_frac_bits}")
    mu_fp = np.asarray(mu_fp, dtype=np.int64)
    u = (mu_fp + np.int64(1 << (sh - 1))) >> sh if sh > 0 else mu_fp
    m = (u + np.int64(mu_steps >> 1)) >> sb
    return m, u - (m << sb)


@dataclass(frozen=True)
class LaplaceTable:
    """Quantized discrete-Laplace CDFs for every (scale index, mu offset) pair.

    Attributes:
        log2_scale_min: log2 of the smallest scale ``b_0``.
        steps_per_octave: scale indices per doubling of the scale.
        n_scales: number of scale indices ``k`` in ``[0, n_scales)``.
        mu_steps: sub-integer offsets per unit of mu (rows per scale index).
        cdfs: per row, CompressAI's CDF: ``2 R + 3`` non-decreasing ints from 0 to 2^16 (the last
            symbol before 2^16 is the escape).
        sizes: per row, ``len(cdf)``.
        offsets: per row, ``-R`` (the smallest symbol of the row).
        half_width: per scale index, ``R_k``.
        freq_flat: every row's symbol frequencies, rows concatenated (int64).
        row_start: start of each row in ``freq_flat`` (int64).
        escape: whether values outside ``[-R_k, R_k]`` can be coded (escape frequency >= 1,
            CompressAI's bypass) or not (escape frequency 0).
    """

    log2_scale_min: int
    steps_per_octave: int
    n_scales: int
    mu_steps: int
    cdfs: list = field(repr=False)
    sizes: list = field(repr=False)
    offsets: list = field(repr=False)
    half_width: np.ndarray = field(repr=False)
    freq_flat: np.ndarray = field(repr=False)
    row_start: np.ndarray = field(repr=False)
    escape: bool = True

    @property
    def n_rows(self) -> int:
        return len(self.cdfs)

    def row(self, scale_idx: np.ndarray, mu_sub: np.ndarray) -> np.ndarray:
        """Row index of each (scale index, mu offset index ``j``) pair (int64 array)."""
        return np.asarray(scale_idx, np.int64) * self.mu_steps + np.asarray(mu_sub, np.int64) + self.mu_steps // 2


def _build_table(log2_scale_min: int, steps_per_octave: int, n_scales: int, mu_steps: int,
                 escape: bool = True) -> LaplaceTable:
    if steps_per_octave < 1 or steps_per_octave & (steps_per_octave - 1):
        raise InputError(f"steps_per_octave must be a power of two, got {steps_per_octave}")
    if mu_steps < 2 or mu_steps & (mu_steps - 1) or mu_steps > 256:
        raise InputError(f"mu_steps must be a power of two in [2, 256], got {mu_steps}")
    if n_scales < 1 or n_scales > 4096 or not -16 <= log2_scale_min <= 8:
        raise InputError("laplace table: n_scales must be in [1, 4096] and log2_scale_min in [-16, 8]")
    spo_bits = int(math.log2(steps_per_octave))
    # 2^(-r/steps) in Q30 for r in [0, steps): powers of c = 2^(-1/steps) (an isqrt-chain constant)
    if spo_bits == 0:
        frac_pow = [_ONE]
    else:
        c = _POW2_NEG_FRAC[spo_bits - 1]
        frac_pow = [_ONE]
        for _ in range(steps_per_octave - 1):
            frac_pow.append((frac_pow[-1] * c + (1 << (_Q - 1))) >> _Q)
    cdfs, sizes, offsets, freqs, half_width = [], [], [], [], []
    total = 1 << PRECISION
    for k in range(n_scales):
        # 1/b_k = 2^(-log2_scale_min - q) * 2^(-r/steps), k = q*steps + r
        q, r = divmod(k, steps_per_octave)
        e = -log2_scale_min - q  # power-of-two exponent of 1/b (may be negative)
        # half width R = max(2, ceil(12.5 * b_k)), b_k = 2^(-e) / frac_pow[r] ; in integers:
        # 12.5 * b = 25 * 2^Q / (2 * frac_pow[r] * 2^e)
        num = 25 << _Q
        den = 2 * frac_pow[r]
        if e >= 0:
            den <<= e
        else:
            num <<= -e
        R = max(2, -(-num // den))
        half_width.append(R)
        # exponent coefficient: v = |D| / 32 * (1/b) * log2(e) with D the bin edge minus mu in 1/32 units
        coef = (frac_pow[r] * _LOG2E_Q30 + (1 << (_Q - 1))) >> _Q  # Q30, < 2^31
        s = np.arange(-R, R + 2, dtype=np.int64)  # edges s - 1/2 for s in [-R, R+1]
        j = np.arange(-(mu_steps // 2), mu_steps // 2, dtype=np.int64)
        # edge (s - 1/2) - j/mu_steps in units of 1/(2*mu_steps)
        D = (2 * mu_steps) * s[None, :] - mu_steps - 2 * j[:, None]
        A = np.abs(D) * np.int64(coef)  # Q30 * (1/(2 mu_steps)) units
        # v in Q24: A * 2^e / (2 mu_steps) / 2^30 * 2^24
        sh = _Q - _EXP_FRAC_BITS + int(math.log2(2 * mu_steps)) - e  # right shift
        if sh > 0:
            v = (A + (np.int64(1) << (sh - 1))) >> sh
        else:
            v = np.minimum(A, np.int64(1) << 40) << (-sh)
        v = np.minimum(v, np.int64(62) << _EXP_FRAC_BITS)
        E = int_exp2_neg(v)  # Q30 of exp(-|edge - mu| / b)
        cdf_q = np.where(D < 0, E >> 1, _ONE - (E >> 1))  # Laplace CDF at the edges, Q30
        pmf = np.maximum(np.diff(cdf_q, axis=1), 0)  # (rows, 2R+1) masses of s in [-R, R]
        tail = np.maximum(_ONE - pmf.sum(axis=1), 0)
        mass = np.concatenate([pmf, tail[:, None]], axis=1)  # escape last
        n_sym = mass.shape[1]
        if escape:
            spare = total - n_sym
            fr = 1 + ((mass * np.int64(spare)) >> _Q)
        else:  # the escape gets frequency 0: CompressAI's bypass can never be selected
            spare = total - (n_sym - 1)
            fr = 1 + ((mass * np.int64(spare)) >> _Q)
            fr[:, -1] = 0
        deficit = total - fr.sum(axis=1)
        top = np.argmax(fr, axis=1)
        fr[np.arange(fr.shape[0]), top] += deficit
        cdf = np.concatenate([np.zeros((fr.shape[0], 1), np.int64), np.cumsum(fr, axis=1)], axis=1)
        for row in range(cdf.shape[0]):
            cdfs.append(cdf[row].tolist())
            sizes.append(n_sym + 1)
            offsets.append(-R)
            freqs.append(fr[row])
    return LaplaceTable(
        log2_scale_min=log2_scale_min,
        steps_per_octave=steps_per_octave,
        n_scales=n_scales,
        mu_steps=mu_steps,
        cdfs=cdfs,
        sizes=sizes,
        offsets=offsets,
        half_width=np.asarray(half_width, np.int64),
        freq_flat=np.concatenate(freqs).astype(np.int64),
        row_start=np.concatenate([[0], np.cumsum([len(f) for f in freqs])[:-1]]).astype(np.int64),
        escape=bool(escape),
    )


@functools.lru_cache(maxsize=8)
def get_table(log2_scale_min: int = -8, steps_per_octave: int = 8, n_scales: int = 113, mu_steps: int = 16,
              escape: bool = True) -> LaplaceTable:
    """The (cached) table for a scale grid and a number of mu offsets.

    Args:
        log2_scale_min: log2 of the smallest scale.
        steps_per_octave: scale indices per octave (power of two).
        n_scales: number of scale indices.
        mu_steps: sub-integer mu offsets per unit (power of two, <= 256).
        escape: ``False`` for an escape-free table (no bypass; see the module docstring).

    Returns:
        The LaplaceTable (``n_scales * mu_steps`` rows).

    Raises:
        InputError: a parameter out of range.
    """
    return _build_table(log2_scale_min, steps_per_octave, n_scales, mu_steps, bool(escape))


def table_range(mu_fp, scale_idx, *, mu_frac_bits: int = 8, table: LaplaceTable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The values each latent's row can code without an escape: ``[m - R_k, m + R_k]``.

    Args:
        mu_fp: fixed-point locations.
        scale_idx: scale indices in ``[0, table.n_scales)``.
        mu_frac_bits: fractional bits of ``mu_fp``.
        table: the table (default ``get_table()``).

    Returns:
        (lo, hi) int64 arrays, inclusive bounds, intersected with ``[-LATENT_ABS_MAX, LATENT_ABS_MAX]``.

    Raises:
        InputError: a scale index out of range.
    """
    table = table or get_table()
    mu_fp = np.asarray(mu_fp, np.int64).ravel()
    scale_idx = np.asarray(scale_idx, np.int64).ravel()
    if scale_idx.size and (int(scale_idx.min()) < 0 or int(scale_idx.max()) >= table.n_scales):
        raise InputError(f"laplace: scale indices must lie in [0, {table.n_scales})")
    m, _ = split_mu(mu_fp, mu_frac_bits, table.mu_steps)
    half = table.half_width[scale_idx]
    return np.maximum(m - half, -LATENT_ABS_MAX), np.minimum(m + half, LATENT_ABS_MAX)


def _symbols(table: LaplaceTable, values, mu_fp, scale_idx, mu_frac_bits):
    values = np.asarray(values, np.int64).ravel()
    mu_fp = np.asarray(mu_fp, np.int64).ravel()
    scale_idx = np.asarray(scale_idx, np.int64).ravel()
    if not (values.shape == mu_fp.shape == scale_idx.shape):
        raise InputError("laplace: values, mu and scale indices must have the same number of elements")
    if values.size and int(np.abs(values).max()) > LATENT_ABS_MAX:
        raise InputError(f"laplace: latent values must lie in [-{LATENT_ABS_MAX}, {LATENT_ABS_MAX}]")
    if scale_idx.size and (int(scale_idx.min()) < 0 or int(scale_idx.max()) >= table.n_scales):
        raise InputError(f"laplace: scale indices must lie in [0, {table.n_scales})")
    m, j = split_mu(mu_fp, mu_frac_bits, table.mu_steps)
    sym, rows = values - m, table.row(scale_idx, j)
    if not table.escape and sym.size and bool(np.any(np.abs(sym) > table.half_width[scale_idx])):
        raise InputError("laplace: a latent lies outside its row's range and this table has no escape; "
                         "clamp the latents to laplace.table_range first")
    return sym, rows


def encode(values, mu_fp, scale_idx, *, mu_frac_bits: int = 8, table: LaplaceTable | None = None) -> bytes:
    """Code integer latents, in the given order, with their integer Laplace parameters.

    Args:
        values: integer latents (any shape; flattened in C order).
        mu_fp: fixed-point locations, same number of elements.
        scale_idx: scale indices in ``[0, table.n_scales)``, same number of elements.
        mu_frac_bits: fractional bits of ``mu_fp``.
        table: the table (default ``get_table()``).

    Returns:
        The framed stream (8-byte header + CompressAI's rANS words).

    Raises:
        InputError: mismatched sizes, a latent outside ``[-LATENT_ABS_MAX, LATENT_ABS_MAX]`` (or,
            for an escape-free table, outside its row's ``table_range``), a scale index out of
            range, or a location whose offset symbol exceeds int32.
    """
    table = table or get_table()
    sym, rows = _symbols(table, values, mu_fp, scale_idx, mu_frac_bits)
    if sym.size and int(np.abs(sym).max()) >= (1 << 30):
        raise InputError("laplace: mu too far from the latents")
    # _PAD trailing symbols of the most peaked row (about 1e-4 bits each; the decoder never
    # reads them): CompressAI's encoder writes into a buffer of one 32-bit word per symbol and
    # its 8-byte flush overruns that buffer for streams of fewer than ~6 symbols (heap
    # corruption, seen with 1 symbol). A symbol adds at most 16 bits, so n + 3 words always
    # hold the at most n/2 + 1 renormalisation words plus the 2-word flush.
    pad_row = int(table.row(0, 0))
    payload = RansEncoder().encode_with_indexes(
        sym.tolist() + [0] * _PAD, rows.tolist() + [pad_row] * _PAD, table.cdfs, table.sizes, table.offsets
    )
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def ideal_bits(values, mu_fp, scale_idx, *, mu_frac_bits: int = 8, table: LaplaceTable | None = None) -> float:
    """Code length the table assigns: sum of ``-log2(freq / 2^16)``, plus CompressAI's bypass bits.

    Args: as ``encode``.

    Returns:
        Bits (float).
    """
    table = table or get_table()
    sym, rows = _symbols(table, values, mu_fp, scale_idx, mu_frac_bits)
    half = table.half_width[rows // table.mu_steps]
    inside = np.abs(sym) <= half
    idx = np.where(inside, sym + half, 2 * half + 1)
    f = table.freq_flat[table.row_start[rows] + idx].astype(np.float64)
    bits = float(np.sum(PRECISION - np.log2(f))) if f.size else 0.0
    for s, h in zip(sym[~inside].tolist(), half[~inside].tolist(), strict=True):
        v = s + h  # value - offset
        raw = -2 * v - 1 if v < 0 else 2 * (v - (2 * h + 1))
        n = 0
        while raw >> (4 * n):
            n += 1
        bits += 4 * (n + n // 15 + 1)
    return bits


class LaplaceDecoder:
    """Incremental decoder of a stream from ``encode``: call ``decode`` chunk by chunk in the
    encoder's order (e.g. one wavefront at a time).

    Args:
        data: the framed stream (exactly what ``encode`` returned).
        n_symbols: the total number of symbols the caller will decode (bounds the guard buffer).
        mu_frac_bits: fractional bits of the locations passed to ``decode``.
        table: the table (default ``get_table()``).

    Raises:
        BitstreamError: a stream that is truncated, too long, or whose CRC does not match.
        InputError: more than 2^27 symbols announced, or ``mu_frac_bits`` coarser than the table.
    """

    def __init__(self, data: bytes, n_symbols: int, *, mu_frac_bits: int = 8, table: LaplaceTable | None = None):
        self.table = table or get_table()
        self.mu_frac_bits = mu_frac_bits
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise BitstreamError("latent stream: truncated header")
        length, crc = _HEADER.unpack_from(data)
        payload = data[_HEADER.size :]
        if len(payload) != length:
            raise BitstreamError(f"latent stream: {len(payload)} payload bytes, header says {length}")
        if length < 8 or length % 4:
            raise BitstreamError("latent stream: payload is not a whole rANS stream")
        if zlib.crc32(payload) != crc:
            raise BitstreamError("latent stream: CRC mismatch (corrupted data)")
        if not 0 <= int(n_symbols) <= 1 << 27:
            raise InputError(f"latent stream: {n_symbols} symbols announced; at most 2^27 per stream")
        # Zero guard words. Escape-free table: at most one renormalisation read (4 bytes) per
        # symbol, a bound that holds for any payload. With escapes: also a bypass read per
        # escape and the bypass chunks the payload's nibbles can announce (module docstring).
        if self.table.escape:
            guard = 8 * (int(n_symbols) + 16) + 16 * length
        else:
            guard = 4 * int(n_symbols) + 16
        self._dec = RansDecoder()
        self._dec.set_stream(payload + bytes(guard))
        self._remaining = int(n_symbols)
        sb = self.table.mu_steps.bit_length() - 1
        self._sb, self._sh, self._hs = sb, mu_frac_bits - sb, np.int64(self.table.mu_steps >> 1)
        if self._sh < 0:
            raise InputError(f"laplace: mu_frac_bits {mu_frac_bits} coarser than the table's mu offsets")
        self._hu = np.int64(1 << (self._sh - 1)) if self._sh else np.int64(0)
        self._present = np.zeros(self.table.n_rows, bool)
        self._remap = np.zeros(self.table.n_rows, np.int64)

    def decode(self, mu_fp, scale_idx) -> np.ndarray:
        """Decode the next ``len(mu_fp)`` latents.

        Args:
            mu_fp: int64 fixed-point locations of the next latents.
            scale_idx: their scale indices.

        Returns:
            int64 array of the decoded latents.

        Raises:
            BitstreamError: more symbols requested than announced, or a decoded latent out of range.
            InputError: scale indices out of range.
        """
        table = self.table
        mu_fp = np.asarray(mu_fp, np.int64).ravel()
        scale_idx = np.asarray(scale_idx, np.int64).ravel()
        n = mu_fp.size
        if n > self._remaining:
            raise BitstreamError("latent stream: more symbols requested than the stream holds")
        if scale_idx.size != n:
            raise InputError("laplace: one scale index per location")
        self._remaining -= n
        if n == 0:
            return np.zeros(0, np.int64)
        # split_mu inlined: u = round(mu * steps), m = round(u / steps), row = k*steps + u - m*steps + steps/2
        sh, sb, hs = self._sh, self._sb, self._hs
        u = (mu_fp + self._hu) >> sh if sh else mu_fp
        m = (u + hs) >> sb
        rows = ((scale_idx - m) << sb) + u + hs
        if int(scale_idx.min()) < 0 or int(scale_idx.max()) >= table.n_scales:
            raise InputError(f"laplace: scale indices must lie in [0, {table.n_scales})")
        present = self._present
        present[rows] = True
        uniq = np.flatnonzero(present)
        present[uniq] = False
        remap = self._remap
        remap[uniq] = np.arange(uniq.size)
        u = uniq.tolist()
        cdfs, sizes, offs = table.cdfs, table.sizes, table.offsets
        out = self._dec.decode_stream(
            remap[rows].tolist(), [cdfs[r] for r in u], [sizes[r] for r in u], [offs[r] for r in u]
        )
        vals = np.asarray(out, np.int64)
        vals += m
        if int(vals.max()) > LATENT_ABS_MAX or int(vals.min()) < -LATENT_ABS_MAX:
            raise BitstreamError("latent stream: decoded latent out of range (corrupted data)")
        return vals
