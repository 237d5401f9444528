"""Wavefront decoding of a latent pyramid: exact round trip, causal schedule, coded size."""

import numpy as np
import pytest
import torch

from inrkit.codecs.bitstream import laplace
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.latents.arm import LOG2_SCALE_MIN, SCALE_STEPS_PER_OCTAVE, Arm, coding_grid
from inrkit.inr.latents.pyramid import level_shapes
from inrkit.inr.latents.wavefront import build_schedule, decode_levels, level_parameters

TABLE = laplace.get_table(**coding_grid())


def _arm(n_ctx, n_hidden=2, seed=0):
    torch.manual_seed(seed)
    a = Arm(n_ctx, n_hidden)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return a.quantize()


def _pyramid(shape, seed=0):
    rng = np.random.default_rng(seed)
    levels = []
    for i, s in enumerate(level_shapes(shape, 7)):
        g = np.round(rng.laplace(0, 0.4 * 1.7**i, s)).astype(np.int64)
        g[rng.random(s) < 0.5] = 0  # zero runs, as trained pyramids have
        levels.append(g)
    return levels


def _encode(levels, ia):
    sched, vals, mu, k = level_parameters(levels, ia)
    return sched, vals, mu, k, laplace.encode(vals, mu, k, mu_frac_bits=ia.act_frac_bits, table=TABLE)


def _decode(data, shapes, ia):
    n = sum(int(np.prod(s)) for s in shapes)
    return decode_levels(shapes, ia, laplace.LaplaceDecoder(data, n, mu_frac_bits=ia.act_frac_bits, table=TABLE))


@pytest.mark.parametrize("n_ctx, shape", [(8, (40, 56)), (16, (61, 83)), (24, (33, 20)), (32, (50, 64))])
def test_encode_decode_reproduces_the_pyramid(n_ctx, shape):
    ia = _arm(n_ctx)
    levels = _pyramid(shape, n_ctx)
    _, _, _, _, data = _encode(levels, ia)
    out = _decode(data, [g.shape for g in levels], ia)
    assert all(np.array_equal(a, b) for a, b in zip(out, levels, strict=True))


def test_schedule_decodes_every_context_before_its_latent():
    ia = _arm(16)
    shapes = level_shapes((23, 31), 7)
    sched = build_schedule(shapes, ia.offsets)
    assert sched.n_latents == sum(int(np.prod(s)) for s in shapes) == len(set(sched.order.tolist()))
    assert sched.n_steps == 31 + 3 * 22
    step = np.full(sched.buffer_size, -1)
    for t in range(sched.n_steps):
        step[sched.order[sched.bounds[t] : sched.bounds[t + 1]]] = t
    ctx_steps = step[sched.rel[:, None] + sched.order[None, :]]  # -1: padding (always zero)
    own = step[sched.order]
    assert np.all(ctx_steps < own[None, :])


def test_encoder_parameters_equal_the_per_level_integer_arm():
    ia = _arm(16)
    levels = _pyramid((30, 44), 1)
    sched, vals, mu, k = level_parameters(levels, ia)
    flat_mu = np.concatenate([ia.parameters_of(g)[0] for g in levels])
    flat_k = np.concatenate([ia.parameters_of(g)[1] for g in levels])
    assert np.array_equal(mu, flat_mu[sched.raster]) and np.array_equal(k, flat_k[sched.raster])
    assert np.array_equal(vals, np.concatenate([g.ravel() for g in levels])[sched.raster])


def test_coded_size_is_close_to_the_sum_of_minus_log2_probabilities():
    ia = _arm(16, seed=4)
    levels = _pyramid((96, 128), 2)
    _, vals, mu_fp, k, data = _encode(levels, ia)
    mu = mu_fp / 2.0**ia.act_frac_bits
    b = 2.0 ** (LOG2_SCALE_MIN + k / SCALE_STEPS_PER_OCTAVE)
    F = lambda x: np.where(x < mu, 0.5 * np.exp((x - mu) / b), 1 - 0.5 * np.exp(-(x - mu) / b))  # noqa: E731
    with np.errstate(over="ignore"):
        model_bits = float(-np.log2(np.maximum(F(vals + 0.5) - F(vals - 0.5), 2.0**-16)).sum())
    assert abs(8 * len(data) - model_bits) <= 0.04 * model_bits
    assert abs(8 * len(data) - laplace.ideal_bits(vals, mu_fp, k, table=TABLE)) <= 0.01 * model_bits + 128


def test_truncated_or_corrupted_pyramid_streams_raise():
    ia = _arm(16)
    levels = _pyramid((40, 40), 3)
    shapes = [g.shape for g in levels]
    *_, data = _encode(levels, ia)
    for bad in [data[:-4], data[: len(data) // 2], data[:5], bytes([data[0] ^ 1]) + data[1:], data[:20] + bytes([data[20] ^ 64]) + data[21:]]:
        with pytest.raises(BitstreamError):
            _decode(bad, shapes, ia)


def test_bad_shapes_raise():
    ia = _arm(8)
    with pytest.raises(InputError):
        build_schedule([(4, 4, 4)], ia.offsets)
    with pytest.raises(InputError):
        build_schedule([], ia.offsets)
