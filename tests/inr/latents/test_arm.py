"""ARM: causal contexts, float and integer causality, integer determinism, Laplace rate."""

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from inrkit.errors import InputError
from inrkit.inr.latents import arm as armmod
from inrkit.inr.latents.arm import (
    Arm,
    IntegerArm,
    causal_context,
    causal_context_np,
    get_offsets,
    laplace_rate_bits,
)
from inrkit.inr.latents.wavefront import wavefront_weights


def _random_arm(n_ctx, n_hidden=2, seed=0, scale=0.3):
    torch.manual_seed(seed)
    a = Arm(n_ctx, n_hidden)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(torch.randn_like(p) * scale)
    return a


@pytest.mark.parametrize("n_ctx, a", [(8, 2), (16, 3), (24, 4), (32, 5)])
def test_offsets_are_declared_causal_and_give_the_wavefront(n_ctx, a):
    offs = get_offsets(n_ctx)
    assert len(offs) == n_ctx == len(set(offs))
    armmod.check_causal(offs)
    assert wavefront_weights(offs) == (a, 1)


def test_unknown_neighbourhood_and_non_causal_offsets_raise():
    with pytest.raises(InputError):
        get_offsets(12)
    with pytest.raises(InputError):
        armmod.check_causal([(0, 1)])
    with pytest.raises(InputError):
        wavefront_weights([(1, -1)])


def test_context_extraction_matches_a_loop_with_zero_padding():
    g = torch.arange(1.0, 1 + 5 * 7).view(5, 7)
    offs = get_offsets(16)
    ctx = causal_context(g, offs)
    assert ctx.shape == (35, 16)
    for y in range(5):
        for x in range(7):
            for j, (dy, dx) in enumerate(offs):
                yy, xx = y + dy, x + dx
                want = g[yy, xx] if 0 <= yy < 5 and 0 <= xx < 7 else 0.0
                assert ctx[y * 7 + x, j] == want
    assert np.array_equal(causal_context_np(g.numpy().astype(np.int64), offs), ctx.numpy().astype(np.int64))


@pytest.mark.parametrize("n_ctx", [8, 16, 24, 32])
def test_perturbing_a_latent_changes_no_earlier_distribution_float_and_integer(n_ctx):
    a = _random_arm(n_ctx)
    ia = a.quantize()
    rng = np.random.default_rng(n_ctx)
    H, W = 7, 9
    grid = rng.integers(-4, 5, (H, W))
    with torch.no_grad():
        mu0, s0 = a(causal_context(torch.tensor(grid, dtype=torch.float32), a.offsets))
    imu0, ik0 = ia.parameters_of(grid)
    for p in [0, 10, 31, H * W - 1]:
        g2 = grid.copy()
        g2.flat[p] += 7
        with torch.no_grad():
            mu1, s1 = a(causal_context(torch.tensor(g2, dtype=torch.float32), a.offsets))
        imu1, ik1 = ia.parameters_of(g2)
        # own and every earlier latent (raster order) unchanged
        assert torch.equal(mu0[: p + 1], mu1[: p + 1]) and torch.equal(s0[: p + 1], s1[: p + 1])
        assert np.array_equal(imu0[: p + 1], imu1[: p + 1]) and np.array_equal(ik0[: p + 1], ik1[: p + 1])
        if p < H * W - 1:  # the perturbation is visible to someone later
            assert not (np.array_equal(imu0, imu1) and np.array_equal(ik0, ik1))


_HASH_SNIPPET = """
import hashlib, numpy as np, torch
torch.set_num_threads({threads})
from inrkit.inr.latents.arm import Arm
torch.manual_seed(3)
a = Arm(16, 2)
with torch.no_grad():
    for p in a.parameters():
        p.add_(torch.randn_like(p) * 0.3)
ia = a.quantize()
ctx = np.random.default_rng(5).integers(-40, 41, (5000, 16))
mu, k = ia(ctx)
print(hashlib.sha256(mu.tobytes() + k.tobytes() + ia.raw(ctx).tobytes()).hexdigest())
"""


def _digest():
    torch.manual_seed(3)
    a = Arm(16, 2)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ia = a.quantize()
    ctx = np.random.default_rng(5).integers(-40, 41, (5000, 16))
    mu, k = ia(ctx)
    return hashlib.sha256(mu.tobytes() + k.tobytes() + ia.raw(ctx).tobytes()).hexdigest()


def test_integer_arm_is_identical_across_threads_and_processes():
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        d1 = _digest()
        torch.set_num_threads(2)
        d2 = _digest()
    finally:
        torch.set_num_threads(old)
    assert d1 == d2
    out = subprocess.run([sys.executable, "-c", _HASH_SNIPPET.format(threads=2)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == d1


def test_integer_arm_follows_the_float_arm_with_its_quantized_weights():
    a = _random_arm(16, scale=0.2)
    ia = a.quantize()
    a.load_integer(ia)
    ctx = np.random.default_rng(0).integers(-6, 7, (2000, 16))
    with torch.no_grad():
        mu, l2 = a(torch.tensor(ctx, dtype=torch.float64).float())
    imu, ik = ia(ctx)
    assert np.abs(imu / 256.0 - mu.numpy()).max() < 0.05
    k_float = np.clip(np.round((l2.numpy() - armmod.LOG2_SCALE_MIN) * 8), 0, armmod.N_SCALES - 1)
    assert np.abs(ik - k_float).max() <= 1


def test_integer_arm_saturates_instead_of_overflowing():
    a = _random_arm(32, n_hidden=3, scale=50.0)
    ia = a.quantize()
    ctx = np.full((4, 32), 1 << 15, np.int64) * np.array([[1], [-1], [1], [-1]])
    mu, k = ia(ctx)
    assert np.all(np.abs(mu) <= ((1 << 15) + 1) << 8) and np.all((k >= 0) & (k < armmod.N_SCALES))


def test_integer_arm_rejects_bad_shapes():
    ia = _random_arm(8).quantize()
    with pytest.raises(InputError):
        IntegerArm(ia.weights[:-1] + (ia.weights[-1][:, :4],), ia.biases, ia.offsets)


def test_laplace_rate_is_the_bin_mass_with_a_floor():
    x = torch.tensor([0.0, 1.0, -3.0, 2.0, 40.0, 0.0])
    mu = torch.tensor([0.2, 0.7, 0.0, -1.3, 0.0, 0.49])
    l2 = torch.tensor([-1.0, 0.5, 1.0, -2.0, -3.0, -8.0])
    bits = laplace_rate_bits(x, mu, l2)
    for i in range(6):
        b, m = 2.0 ** float(l2[i]), float(mu[i])

        def F(v, m=m, b=b):
            return 0.5 * math.exp((v - m) / b) if v < m else 1 - 0.5 * math.exp(-(v - m) / b)

        p = max(F(float(x[i]) + 0.5) - F(float(x[i]) - 0.5), 2.0**-16)
        assert float(bits[i]) == pytest.approx(-math.log2(p), rel=1e-4, abs=1e-4)
    assert float(bits[4]) == pytest.approx(16.0)
    x.requires_grad_(True)
    mu.requires_grad_(True)
    laplace_rate_bits(x, mu, l2).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(mu.grad).all()
