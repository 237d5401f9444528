"""Self-contained entropy coding of integer arrays with CompressAI's rANS coder.

:func:`encode_integers` turns any integer array into bytes that carry their own
probability table; :func:`decode_integers` needs only those bytes and the
element count (which a codec derives from its architecture config). The coder
is CompressAI's 64-bit rANS (``compressai.ans``, Duda 2013 / Giesen's
``rans64``) at its fixed 16-bit precision, fed a single integer CDF.

Modes (first byte of the stream)::

    CONST  every value equal: the value only, no payload
    RAW    fixed-width bit packing of ``value - min``
    RANS   an adaptive-precision frequency table + rANS payload + escapes + low bits

RANS mode in detail. ``u = value - min`` is split into a high part
``u >> shift`` and ``shift`` low bits stored raw: for wide, smooth
distributions the low bits are nearly uniform, so splitting them off costs
almost nothing and keeps the table small. High parts inside a window
``[lo, lo + size)`` get one table entry each; the others share an escape entry
and their high part is stored raw after the payload. Table frequencies sum to
``2**p`` with ``p <= 16`` chosen by the encoder (lower precision = a cheaper
table), are Elias-gamma coded, and are scaled to the coder's 2**16 by a shift.
The encoder picks ``shift``, window and ``p`` by estimated size, then keeps RAW
if that is smaller after all.

Safety. Decoding uses only integers from the stream; the table is validated
(sum, lengths, limits) before use. CompressAI's own bypass mode, which could
loop on hostile data, can never trigger: its sentinel gets zero frequency.
Its decoder reads at most one 32-bit word per symbol past an 8-byte start,
and the payload is zero-padded by that much, so garbage can't make it read out
of bounds. A corrupted payload with a valid table decodes to wrong but
in-range values — rANS cannot tell; the container's CRC catches corruption
before this point.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from inrkit.compressai_compat import RansDecoder, RansEncoder
from inrkit.errors import BitstreamError, InputError

from .container import read_varint, write_varint

__all__ = ["decode_integers", "encode_integers"]

CONST, RAW, RANS = 1, 2, 3
CODER_PRECISION = 16  # fixed in compressai.ans
MIN_RANS_COUNT = 8
"""Fewer values are always packed raw: CompressAI's rANS encoder sizes its output at one
32-bit word per symbol and its 8-byte flush overruns that buffer for streams of fewer than
about 6 symbols (heap corruption); rANS never wins on so few values anyway."""
MAX_TABLE = 1024  # window entries; bounds the table and the decoder's linear CDF search
MAX_COUNT = 1 << 24  # values per stream; the decoder allocates ~12 bytes per value
MAX_HIGH_BITS = 62  # high parts (and the window) stay well inside int64
_BLOCK = 1 << 16  # values per block in bit packing and rANS decoding
_PRECISIONS = (6, 8, 10, 12, 14, 16)


# -- bit I/O -------------------------------------------------------------------------


def _pack_bits(values: np.ndarray, width: int) -> bytes:
    """Pack unsigned values at ``width`` bits each, LSB first, padded to a byte.
    Works in blocks of ``_BLOCK`` values (a whole number of bytes) to bound memory."""
    if width == 0 or values.size == 0:
        return b""
    v = values.astype(np.uint64, copy=False)
    shifts = np.arange(width, dtype=np.uint64)
    out = []
    for i in range(0, v.size, _BLOCK):
        bits = ((v[i : i + _BLOCK, None] >> shifts) & np.uint64(1)).astype(np.uint8)
        out.append(np.packbits(bits.reshape(-1), bitorder="little").tobytes())
    return b"".join(out)


def _unpack_bits(data: bytes, count: int, width: int) -> np.ndarray:
    """Inverse of :func:`_pack_bits`; ``data`` must hold at least ``count * width`` bits."""
    out = np.zeros(count, dtype=np.uint64)
    if width == 0 or count == 0:
        return out
    shifts = np.arange(width, dtype=np.uint64)
    step = _BLOCK * width // 8
    for j, i in enumerate(range(0, count, _BLOCK)):
        n = min(_BLOCK, count - i)
        chunk = np.frombuffer(data, dtype=np.uint8, count=(n * width + 7) // 8, offset=j * step)
        bits = np.unpackbits(chunk, bitorder="little")[: n * width].reshape(n, width)
        out[i : i + n] = (bits.astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)
    return out


def _packed_len(count: int, width: int) -> int:
    return (count * width + 7) // 8


def _gamma_encode(values: list[int]) -> bytes:
    """Elias-gamma code of ``v + 1`` for each non-negative ``v``, MSB first."""
    bits = []
    for v in values:
        code = bin(v + 1)[2:]
        bits.append("0" * (len(code) - 1) + code)
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def _gamma_decode(data: bytes, pos: int, count: int, max_bits: int) -> tuple[list[int], int]:
    """Read ``count`` Elias-gamma values (each ``< 2**max_bits``) starting at byte ``pos``."""
    window = data[pos : pos + (count * (2 * max_bits + 1) + 7) // 8]  # longest possible table
    avail = len(window) * 8
    word = int.from_bytes(window, "big")
    out, at = [], 0
    for _ in range(count):
        zeros = 0
        while at < avail and not (word >> (avail - 1 - at)) & 1:
            zeros += 1
            at += 1
            if zeros > max_bits:
                raise BitstreamError("malformed frequency table: a table entry is too large")
        if at + zeros + 1 > avail:
            raise BitstreamError("truncated frequency table")
        value = (word >> (avail - at - zeros - 1)) & ((1 << (zeros + 1)) - 1)
        at += zeros + 1
        out.append(value - 1)
    return out, pos + (at + 7) // 8


def _gamma_bits(values: np.ndarray) -> int:
    lengths = np.floor(np.log2(values.astype(np.float64) + 1)).astype(np.int64)
    return int((2 * lengths + 1).sum())


# -- frequency tables --------------------------------------------------------------


def quantize_counts(counts: np.ndarray, precision: int) -> np.ndarray:
    """Integer frequencies summing to ``2**precision``, ``>= 1`` where ``counts > 0``.

    Integer arithmetic only: proportional rounding, then the sum is corrected
    one unit at a time where it costs the fewest bits (a heap over the
    per-unit cost ``count * log2(f / (f - 1))``; the float only ranks choices,
    the table itself is integers and is stored, so decoders never recompute it).
    """
    counts = np.asarray(counts, dtype=np.int64)
    total, target = int(counts.sum()), 1 << precision
    present = counts > 0
    if int(present.sum()) > target:
        raise ValueError(f"{int(present.sum())} symbols do not fit a 2^{precision} table")
    freqs = np.where(present, np.maximum(1, (counts * target + total // 2) // total), 0)
    diff = int(freqs.sum()) - target
    if diff:
        idx = np.flatnonzero(present)
        if diff > 0:  # take units where losing one costs least
            heap = [(_unit_cost(counts[i], freqs[i]), i) for i in idx if freqs[i] > 1]
            heapq.heapify(heap)
            for _ in range(diff):
                _, i = heapq.heappop(heap)
                freqs[i] -= 1
                if freqs[i] > 1:
                    heapq.heappush(heap, (_unit_cost(counts[i], freqs[i]), i))
        else:  # give units where gaining one saves most
            heap = [(-_unit_cost(counts[i], freqs[i] + 1), i) for i in idx]
            heapq.heapify(heap)
            for _ in range(-diff):
                _, i = heapq.heappop(heap)
                freqs[i] += 1
                heapq.heappush(heap, (-_unit_cost(counts[i], freqs[i] + 1), i))
    return freqs


def _unit_cost(count: int, freq: int) -> float:
    return float(count) * math.log2(freq / (freq - 1))


def _cdf(freqs: list[int] | np.ndarray, precision: int) -> tuple[list[int], np.ndarray]:
    """CDF in CompressAI's layout, most frequent symbol first (the decoder searches
    the CDF linearly), plus the rank of each table entry. The final entry is
    CompressAI's bypass sentinel with zero frequency, so bypass never triggers."""
    freqs = np.asarray(freqs, dtype=np.int64) << (CODER_PRECISION - precision)
    order = np.lexsort((np.arange(freqs.size), -freqs))  # stable: by frequency, then index
    cdf = np.concatenate([[0], np.cumsum(freqs[order]), [1 << CODER_PRECISION]])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return cdf.tolist(), rank


# -- encoding ------------------------------------------------------------------------


def encode_integers(symbols: np.ndarray) -> bytes:
    """Entropy-code an integer array (any shape, flattened; values within int64).

    The result is self-contained except for the element count, which the
    decoder is given. An empty array encodes to ``b""``.
    """
    arr = np.asarray(symbols)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"encode_integers needs an integer array, got dtype {arr.dtype}")
    arr = arr.reshape(-1)
    if arr.size == 0:
        return b""
    if arr.size > MAX_COUNT:
        raise InputError(f"encode_integers: {arr.size} values, more than the limit {MAX_COUNT}")
    if arr.dtype == np.uint64 and int(arr.max()) >= 1 << 63:
        raise InputError("encode_integers: values must fit in int64")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    head = bytes([0]) + write_varint(_zigzag(lo))
    if lo == hi:
        return bytes([CONST]) + head[1:]
    span = hi - lo
    u = (arr.view(np.uint64) - np.uint64(lo & 0xFFFFFFFFFFFFFFFF)).astype(np.uint64)
    width = span.bit_length()
    raw = bytes([RAW]) + head[1:] + write_varint(span) + _pack_bits(u, width)
    if arr.size < MIN_RANS_COUNT:
        return raw
    plan = _plan(u, width)
    if plan is None or plan[0] >= 8 * len(raw) + 64:
        return raw
    _, shift, win_lo, freqs, precision = plan
    coded = bytes([RANS]) + head[1:] + write_varint(span) + _encode_rans(u, width, shift, win_lo, freqs, precision)
    return coded if len(coded) < len(raw) else raw


def _plan(u: np.ndarray, width: int):
    """Choose ``(shift, window, precision)`` by estimated size in bits."""
    values, counts = np.unique(u, return_counts=True)
    n, best = u.size, None
    # Shifts below the one that fits the central 98% into the table only add escapes.
    cum = np.cumsum(counts)
    a, b = np.searchsorted(cum, [0.01 * n, 0.99 * n], side="left")
    core = int(values[min(b, values.size - 1)] - values[a])
    first = max(0, core.bit_length() - MAX_TABLE.bit_length() + 1, width - MAX_HIGH_BITS)
    for shift in range(first, min(width, first + 8)):
        hi_vals = values >> np.uint64(shift)
        starts = np.flatnonzero(np.r_[True, hi_vals[1:] != hi_vals[:-1]])
        hv, hc = hi_vals[starts].astype(np.int64), np.add.reduceat(counts, starts)
        hi_width = width - shift
        for win_lo, size in _windows(hv, hc):
            inside = (hv >= win_lo) & (hv < win_lo + size)
            table = np.zeros(size + 1, dtype=np.int64)
            table[hv[inside] - win_lo] = hc[inside]
            escapes = int(hc[~inside].sum())
            table[size] = escapes
            nnz = int((table > 0).sum())
            for p in _PRECISIONS:
                if nnz > 1 << p:
                    continue
                f = quantize_counts(table, p)
                nz = table > 0
                payload = float((table[nz] * (p - np.log2(f[nz]))).sum())
                bits = payload + _gamma_bits(f) + escapes * hi_width + n * shift + 64
                if best is None or bits < best[0]:
                    best = (bits, shift, win_lo, f, p)
        if hv.size <= 16:  # a smaller high alphabet only loses information
            break
    return best


def _windows(hv: np.ndarray, hc: np.ndarray):
    """Candidate windows ``(lo, size)``: the full range when small enough, and
    ranges trimming a few tail quantiles, capped at MAX_TABLE entries."""
    cum = np.cumsum(hc)
    total = int(cum[-1])
    seen = set()
    for tail in (0.0, 1e-4, 1e-3, 1e-2):
        a = int(np.searchsorted(cum, tail * total, side="right"))
        b = int(np.searchsorted(cum, (1 - tail) * total, side="left"))
        lo, top = int(hv[a]), int(hv[min(b, hv.size - 1)])
        if top - lo + 1 > MAX_TABLE:  # centre a MAX_TABLE window on the median
            med = int(hv[int(np.searchsorted(cum, total / 2))])
            lo = max(int(hv[0]), med - MAX_TABLE // 2)
            top = lo + MAX_TABLE - 1
        if (lo, top) not in seen:
            seen.add((lo, top))
            yield lo, top - lo + 1


def _encode_rans(u, width, shift, win_lo, freqs, precision) -> bytes:
    size = freqs.size - 1
    high = (u >> np.uint64(shift)).astype(np.int64)
    inside = (high >= win_lo) & (high < win_lo + size)
    entry = np.where(inside, high - win_lo, size)
    cdf, rank = _cdf(freqs, precision)
    payload = RansEncoder().encode_with_indexes(
        rank[entry].astype(np.int32).tolist(), [0] * u.size, [cdf], [len(cdf)], [0]
    )
    escaped = high[~inside].astype(np.uint64)
    low = u & np.uint64((1 << shift) - 1)
    return (
        bytes([shift, precision])
        + write_varint(win_lo)
        + write_varint(size)
        + _gamma_encode(freqs.tolist())
        + write_varint(len(payload) // 4)
        + payload
        + _pack_bits(escaped, width - shift)
        + _pack_bits(low, shift)
    )


# -- decoding ------------------------------------------------------------------------


def decode_integers(data: bytes, count: int) -> np.ndarray:
    """Decode ``count`` integers (int64) written by :func:`encode_integers`.

    Every field is validated; malformed data raises BitstreamError.
    """
    if not isinstance(count, (int, np.integer)) or not 0 <= count <= MAX_COUNT:
        raise BitstreamError(f"integer stream: element count must be in 0..{MAX_COUNT}, got {count!r}")
    count = int(count)
    data = bytes(data)
    if count == 0:
        if data:
            raise BitstreamError(f"integer stream: expected no data for 0 values, found {len(data)} bytes")
        return np.zeros(0, dtype=np.int64)
    if not data:
        raise BitstreamError(f"integer stream: empty, expected {count} values")
    mode = data[0]
    if mode not in (CONST, RAW, RANS):
        raise BitstreamError(f"integer stream: unknown mode {mode}")
    zz, pos = read_varint(data, 1, "integer stream minimum")
    lo = _unzigzag(zz)
    if not -(1 << 63) <= lo < 1 << 63:
        raise BitstreamError("integer stream: minimum outside int64")
    if mode == CONST:
        _expect_end(data, pos)
        return np.full(count, lo, dtype=np.int64)
    span, pos = read_varint(data, pos, "integer stream range", (1 << 64) - 1)
    if span == 0 or lo + span >= 1 << 63:
        raise BitstreamError(f"integer stream: bad value range [{lo}, {lo + span}]")
    width = span.bit_length()
    if mode == RAW:
        need = _packed_len(count, width)
        _expect_len(data, pos, need, "raw values")
        u = _unpack_bits(data[pos:], count, width)
    else:
        u = _decode_rans(data, pos, count, width)
    if int(u.max()) > span:
        raise BitstreamError(f"integer stream: a decoded value exceeds the stored range {span}")
    return (u + np.uint64(lo & 0xFFFFFFFFFFFFFFFF)).view(np.int64)


def _decode_rans(data: bytes, pos: int, count: int, width: int) -> np.ndarray:
    if pos + 2 > len(data):
        raise BitstreamError("integer stream: truncated table parameters")
    shift, precision = data[pos], data[pos + 1]
    hi_width = width - shift
    if not 1 <= hi_width <= MAX_HIGH_BITS or not 1 <= precision <= CODER_PRECISION:
        raise BitstreamError(f"integer stream: bad shift {shift} or precision {precision}")
    win_lo, pos = read_varint(data, pos + 2, "table window start")
    size, pos = read_varint(data, pos, "table size", MAX_TABLE)
    if size == 0 or win_lo + size > 1 << hi_width:
        raise BitstreamError(f"integer stream: table window [{win_lo}, {win_lo + size}) outside the range")
    freqs, pos = _gamma_decode(data, pos, size + 1, precision + 1)
    if sum(freqs) != 1 << precision:
        raise BitstreamError(f"integer stream: table sums to {sum(freqs)}, expected {1 << precision}")
    words, pos = read_varint(data, pos, "payload length", MAX_COUNT + 2)
    if not 2 <= words or 4 * words > len(data) - pos:
        raise BitstreamError(f"integer stream: payload of {words} words does not fit")
    payload = data[pos : pos + 4 * words]
    pos += 4 * words
    _check_plausible(freqs, precision, shift, count, 8 * len(payload), 8 * (len(data) - pos))

    cdf, rank = _cdf(freqs, precision)
    # rans64 reads 8 bytes at start and at most one 32-bit word per symbol:
    # zero padding keeps a hostile payload inside the buffer.
    decoder = RansDecoder()
    decoder.set_stream(payload + bytes(4 * count + 8))
    ranks = np.empty(count, dtype=np.int64)
    for i in range(0, count, _BLOCK):
        n = min(_BLOCK, count - i)
        ranks[i : i + n] = decoder.decode_stream([0] * n, [cdf], [len(cdf)], [0])
    if ranks.min() < 0 or ranks.max() > size:
        raise BitstreamError("integer stream: the rANS payload decoded outside the table")
    entry = np.argsort(rank)[ranks]  # rank -> table entry
    esc = entry == size
    n_esc = int(esc.sum())
    need = _packed_len(n_esc, hi_width) + _packed_len(count, shift)
    _expect_len(data, pos, need, "escape and low-bit streams")
    high = (entry + win_lo).astype(np.uint64)
    high[esc] = _unpack_bits(data[pos:], n_esc, hi_width)
    pos += _packed_len(n_esc, hi_width)
    low = _unpack_bits(data[pos:], count, shift)
    return (high << np.uint64(shift)) | low


def _check_plausible(freqs, precision, shift, count, payload_bits, rest_bits) -> None:
    """Refuse counts the stream cannot hold, before allocating for them.

    Each value leaves ``shift`` raw low bits after the payload, and costs at
    least ``-log2(p_max)`` bits of rANS payload (a rANS stream carries at
    most its length in information, plus the 31 bits of its initial state).
    A one-entry table is only written with ``shift > 0`` (otherwise the
    encoder uses CONST mode).
    """
    if count * shift > rest_bits:
        raise BitstreamError(f"integer stream: {count} values need {count * shift} low bits, {rest_bits} remain")
    top = max(freqs)
    if top == 1 << precision:
        if shift == 0:
            raise BitstreamError("integer stream: degenerate one-symbol table")
        return
    min_bits = -math.log2(top / (1 << precision))
    if 0.999 * count * min_bits > payload_bits + 64:
        raise BitstreamError(
            f"integer stream: a {payload_bits}-bit payload cannot hold {count} values "
            f"of at least {min_bits:.3g} bits each"
        )


# -- helpers -------------------------------------------------------------------------


def _zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(z: int) -> int:
    return z // 2 if z % 2 == 0 else -(z + 1) // 2


def _expect_end(data: bytes, pos: int) -> None:
    if pos != len(data):
        raise BitstreamError(f"integer stream: {len(data) - pos} unexpected trailing bytes")


def _expect_len(data: bytes, pos: int, need: int, what: str) -> None:
    have = len(data) - pos
    if have != need:
        raise BitstreamError(f"integer stream: {what} need {need} bytes, found {have}")
