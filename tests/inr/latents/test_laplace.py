"""Integer Laplace tables and the rANS latent stream (inrkit.codecs.bitstream.laplace)."""

import hashlib
import struct
import zlib
from decimal import Decimal, getcontext

import numpy as np
import pytest

from inrkit.codecs.bitstream import laplace
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.latents.arm import coding_grid

TABLE = laplace.get_table(**coding_grid())


def test_log2e_constant_and_integer_exp():
    getcontext().prec = 40
    assert laplace._LOG2E_Q30 == int((Decimal(1) / Decimal(2).ln()) * (1 << 30) + Decimal("0.5"))
    v = np.arange(0, 40 << 24, 777_777, dtype=np.int64)
    e = laplace.int_exp2_neg(v)
    ref = np.round(2.0**30 * 2.0 ** (-v / 2.0**24))
    assert np.abs(e - ref).max() <= 32  # 2^-25 relative: the floor of each isqrt
    assert np.all(np.diff(e) <= 1)
    with pytest.raises(InputError):
        laplace.int_exp2_neg(np.array([-1]))


def test_every_row_is_a_valid_16_bit_cdf_close_to_the_laplace_mass():
    for cdf, size, off in zip(TABLE.cdfs, TABLE.sizes, TABLE.offsets, strict=True):
        assert len(cdf) == size and cdf[0] == 0 and cdf[-1] == 1 << 16 and off == -(size - 3) // 2
        assert min(np.diff(cdf)) >= 1
    assert TABLE.n_rows == 113 * 16
    for k, j in [(0, 0), (40, -8), (64, 3), (100, 7), (112, -1)]:
        b, mu = 2.0 ** (-8 + k / 8), j / 16
        R = int(TABLE.half_width[k])
        r = int(TABLE.row(k, j))
        f = TABLE.freq_flat[TABLE.row_start[r] : TABLE.row_start[r] + 2 * R + 2]
        def F(x, mu=mu, b=b):
            return np.where(x < mu, 0.5 * np.exp((x - mu) / b), 1 - 0.5 * np.exp(-(x - mu) / b))

        s = np.arange(-R, R + 1)
        with np.errstate(over="ignore"):
            p = F(s + 0.5) - F(s - 0.5)
        assert np.abs(f[:-1] / 65536 - p).max() < 2 * (2 * R + 2) / 65536


def test_tables_are_built_identically():
    t2 = laplace._build_table(**{"log2_scale_min": -8, "steps_per_octave": 8, "n_scales": 113, "mu_steps": 16})
    h = lambda t: hashlib.sha256(np.concatenate([np.asarray(c, np.int64) for c in t.cdfs]).tobytes()).hexdigest()  # noqa: E731
    assert h(t2) == h(TABLE)


def test_split_mu_rounds_to_an_integer_and_a_sixteenth():
    mu = np.array([0, 7, 8, 127, 128, -128, -129, 200, -200, 1 << 20])
    m, j = laplace.split_mu(mu, 8, 16)
    assert np.all((j >= -8) & (j < 8))
    assert np.array_equal((m * 16 + j) * 16, np.round(mu / 16 + 1e-9).astype(np.int64) * 16)
    assert np.all(np.abs(mu / 256 - (m + j / 16)) <= 1 / 32)


def _sample(n, seed):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 113, n)
    mu_fp = rng.integers(-5000, 5000, n)
    b = 2.0 ** (-8 + k / 8)
    vals = np.round(mu_fp / 256 + rng.laplace(0, b)).astype(np.int64)
    return vals, mu_fp, k


def test_round_trip_with_escapes_and_incremental_decoding():
    vals, mu_fp, k = _sample(20000, 1)
    vals[::997] += 3000  # far outside every row's range: bypass coded
    vals[5] = laplace.LATENT_ABS_MAX
    vals[6] = -laplace.LATENT_ABS_MAX
    data = laplace.encode(vals, mu_fp, k, table=TABLE)
    dec = laplace.LaplaceDecoder(data, vals.size, table=TABLE)
    out, s = [], 0
    for n in [1, 2, 500, 7000, 12497]:
        out.append(dec.decode(mu_fp[s : s + n], k[s : s + n]))
        s += n
    assert np.array_equal(np.concatenate(out), vals)
    with pytest.raises(BitstreamError):
        dec.decode(mu_fp[:1], k[:1])


def test_coded_size_is_the_tables_code_length_and_close_to_the_model():
    vals, mu_fp, k = _sample(50000, 2)
    data = laplace.encode(vals, mu_fp, k, table=TABLE)
    ideal = laplace.ideal_bits(vals, mu_fp, k, table=TABLE)
    assert abs(8 * len(data) - ideal) <= 0.01 * ideal + 128
    # the float Laplace model with the same (mu, scale): within a few %
    b = 2.0 ** (-8 + k / 8)
    mu = mu_fp / 256
    F = lambda x: np.where(x < mu, 0.5 * np.exp((x - mu) / b), 1 - 0.5 * np.exp(-(x - mu) / b))  # noqa: E731
    with np.errstate(over="ignore"):
        p = np.maximum(F(vals + 0.5) - F(vals - 0.5), 2.0**-16)
    model = float(-np.log2(p).sum())
    assert abs(8 * len(data) - model) <= 0.04 * model


def test_encode_rejects_bad_input():
    with pytest.raises(InputError):
        laplace.encode([laplace.LATENT_ABS_MAX + 1], [0], [0])
    with pytest.raises(InputError):
        laplace.encode([0], [0], [113])
    with pytest.raises(InputError):
        laplace.encode([0, 1], [0], [0])


def _stream():
    vals, mu_fp, k = _sample(3000, 3)
    return vals, mu_fp, k, laplace.encode(vals, mu_fp, k, table=TABLE)


def _decode_all(data, mu_fp, k):
    dec = laplace.LaplaceDecoder(data, mu_fp.size, table=TABLE)
    return np.concatenate([dec.decode(mu_fp[s : s + 100], k[s : s + 100]) for s in range(0, mu_fp.size, 100)])


@pytest.mark.parametrize("cut", [0, 3, 7, 8, 12, -4, -1])
def test_truncated_streams_raise(cut):
    vals, mu_fp, k, data = _stream()
    with pytest.raises(BitstreamError):
        _decode_all(data[:cut] if cut else b"", mu_fp, k)


def test_corrupted_and_garbage_streams_raise():
    vals, mu_fp, k, data = _stream()
    rng = np.random.default_rng(0)
    for _ in range(30):
        bad = bytearray(data)
        i = int(rng.integers(0, len(bad)))
        bad[i] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(BitstreamError):
            _decode_all(bytes(bad), mu_fp, k)
    with pytest.raises(BitstreamError):
        _decode_all(data + b"\0\0\0\0", mu_fp, k)
    for n in [8, 9, 64, 1000]:  # random payloads with a valid frame decode garbage or raise, never crash
        payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        framed = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
        try:
            _decode_all(framed, mu_fp, k)
        except BitstreamError:
            pass


def test_valid_frame_with_hostile_payload_stays_in_bounds():
    # all-ones words drive CompressAI into its escape/bypass path as hard as bytes can
    payload = b"\xff" * 4096
    framed = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    mu_fp = np.zeros(5000, np.int64)
    k = np.full(5000, 112, np.int64)
    try:
        _decode_all(framed, mu_fp, k)
    except BitstreamError:
        pass


NOESC = laplace.get_table(**coding_grid(), escape=False)


def test_escape_free_tables_never_select_the_escape():
    for cdf, size in zip(NOESC.cdfs, NOESC.sizes, strict=True):
        assert len(cdf) == size and cdf[0] == 0 and cdf[-2] == cdf[-1] == 1 << 16  # escape: frequency 0
        assert min(np.diff(cdf[:-1])) >= 1  # every in-range symbol is codable
    assert not NOESC.escape and TABLE.escape


def test_escape_free_round_trip_range_and_refusal():
    vals, mu_fp, k = _sample(20000, 4)
    vals[::97] += 500  # outliers
    lo, hi = laplace.table_range(mu_fp, k, table=NOESC)
    assert np.all(lo <= hi) and np.all(hi - lo == 2 * NOESC.half_width[k])
    outside = (vals < lo) | (vals > hi)
    assert outside.any()  # the escape table codes these; the escape-free one refuses them
    laplace.encode(hi[:1] + 1, mu_fp[:1], k[:1], table=TABLE)
    with pytest.raises(InputError):
        laplace.encode(hi[:1] + 1, mu_fp[:1], k[:1], table=NOESC)
    clipped = np.clip(vals, lo, hi)
    data = laplace.encode(clipped, mu_fp, k, table=NOESC)
    assert np.array_equal(laplace.LaplaceDecoder(data, clipped.size, table=NOESC).decode(mu_fp, k), clipped)
    assert abs(8 * len(data) - laplace.ideal_bits(clipped, mu_fp, k, table=NOESC)) <= 0.01 * 8 * len(data) + 128


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
def test_tiny_streams_encode_and_decode(n):
    # CompressAI's encoder buffer holds one word per symbol; the pad keeps its flush inside
    vals, mu_fp, k = _sample(max(n, 1), 5)
    vals, mu_fp, k = vals[:n], mu_fp[:n], k[:n]
    for table in (TABLE, NOESC):
        lo, hi = laplace.table_range(mu_fp, k, table=table)
        v = np.clip(vals, lo, hi) if n else vals
        data = laplace.encode(v, mu_fp, k, table=table)
        assert np.array_equal(laplace.LaplaceDecoder(data, n, table=table).decode(mu_fp, k), v)


def test_escape_free_decoder_stays_in_its_guard_on_hostile_payloads():
    rng = np.random.default_rng(7)
    mu_fp = rng.integers(-3000, 3000, 4000)
    k = rng.integers(0, 113, 4000)
    k[:2000] = 112  # the widest rows, many bits per symbol
    for payload in [b"\xff" * 4096, b"\x00" * 8, rng.integers(0, 256, 64, dtype=np.uint8).tobytes(),
                    rng.integers(0, 256, 20000, dtype=np.uint8).tobytes()]:
        framed = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
        dec = laplace.LaplaceDecoder(framed, mu_fp.size, table=NOESC)
        try:
            out = np.concatenate([dec.decode(mu_fp[s : s + 500], k[s : s + 500]) for s in range(0, 4000, 500)])
        except BitstreamError:
            continue
        lo, hi = laplace.table_range(mu_fp, k, table=NOESC)
        assert np.all((out >= lo) & (out <= hi))  # no escape was ever decoded
