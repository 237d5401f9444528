"""CoolChic: pyramid shapes, quantization proxies, upsampler, synthesis, presets, a tiny fit."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inrkit.codecs.bitstream import laplace
from inrkit.errors import InputError
from inrkit.inr.latents.arm import coding_grid
from inrkit.inr.latents.coolchic import PRESETS, CoolChic, CoolChicConfig, mac_per_pixel, preset
from inrkit.inr.latents.pyramid import (
    LatentPyramid,
    kumaraswamy_noise,
    level_shapes,
    quantize,
    soft_round,
    soft_round_inverse,
)
from inrkit.inr.latents.synthesis import Synthesis, parse_layers
from inrkit.inr.latents.upsampler import Upsampler
from inrkit.inr.latents.wavefront import decode_levels, level_parameters


def test_level_shapes_any_rank():
    assert level_shapes((512, 768)) == [(512, 768), (256, 384), (128, 192), (64, 96), (32, 48), (16, 24), (8, 12)]
    assert level_shapes((100,), 3) == [(100,), (50,), (25,)]
    assert level_shapes((5, 9, 17), 4) == [(5, 9, 17), (3, 5, 9), (2, 3, 5), (1, 2, 3)]
    with pytest.raises(InputError):
        level_shapes((0, 4))
    p = LatentPyramid((9, 10, 11), n_levels=3)
    assert [tuple(g.shape) for g in p()] == [(9, 10, 11), (5, 5, 6), (3, 3, 3)]


def test_quantization_proxies():
    x = torch.linspace(-3, 3, 1001, requires_grad=True)
    assert torch.equal(quantize(x, "round"), torch.round(x))
    y = quantize(x, "ste", temperature=0.3)
    assert torch.equal(y.detach(), torch.round(x.detach()))
    y.sum().backward()
    assert (x.grad > 0).all()
    x.grad = None
    quantize(x, "ste", temperature=None).sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))
    assert (quantize(x, "noise") - x).abs().max() <= 0.5
    xs = torch.linspace(-2.4, 2.4, 97) + 0.013  # no ties at .5
    assert torch.allclose(soft_round(xs, 0.001), torch.round(xs), atol=1e-4)
    assert torch.allclose(soft_round_inverse(soft_round(xs, 0.3), 0.3), xs, atol=1e-4)
    n = kumaraswamy_noise(torch.zeros(20000), 2.0)
    assert n.abs().max() < 0.5 and abs(float(n.mean())) < 0.02 and float(n.std()) < 1 / math.sqrt(12)
    z = quantize(x, "softround", temperature=0.3, kumaraswamy_a=2.0)
    assert torch.isfinite(z).all() and (z - x).abs().max() < 1.0
    with pytest.raises(InputError):
        quantize(x, "softround", temperature=None)
    with pytest.raises(InputError):
        quantize(x, "bogus")


def test_upsampler_starts_bicubic_and_keeps_constants():
    up = Upsampler(2)
    lo = torch.randn(9, 13)
    z = up([torch.zeros(18, 26), lo])
    ref = F.interpolate(lo.view(1, 1, 9, 13), scale_factor=2, mode="bicubic", align_corners=False)
    assert z.shape == (1, 2, 18, 26) and torch.allclose(z[0, 1], ref[0, 0], atol=1e-5)
    up7 = Upsampler(7)
    shapes = level_shapes((37, 50), 7)
    z = up7([torch.full(s, 2.0) for s in shapes])
    assert z.shape == (1, 7, 37, 50) and torch.allclose(z, torch.full_like(z, 2.0), atol=1e-5)
    z1 = Upsampler(3, rank=1)([torch.ones(s) for s in level_shapes((21,), 3)])
    assert z1.shape == (1, 3, 21)


def test_synthesis_description():
    specs = parse_layers("40-1-linear-relu,3-1-linear-relu,3-3-residual-relu,3-3-residual-none")
    assert [s.out_channels for s in specs] == [40, 3, 3, 3] and specs[2].residual and specs[3].activation == "none"
    s = Synthesis(7, "40-1-linear-relu,3-1-linear-relu,3-3-residual-relu,3-3-residual-none")
    assert s(torch.randn(1, 7, 10, 12)).shape == (1, 3, 10, 12)
    assert s.macs_per_pixel() == 7 * 40 + 40 * 3 + 9 * 9 + 9 * 9
    for bad in ["", "40-2-linear-relu", "40-1-dense-relu", "40-1-linear-tanh", "8-3-residual-none", "x-1-linear-relu"]:
        with pytest.raises(InputError):
            Synthesis(7, bad)


@pytest.mark.parametrize("name, lo, hi", [("500", 400, 600), ("1000", 800, 1200), ("2000", 1600, 2400)])
def test_presets_mac_per_pixel_in_band(name, lo, hi):
    for shape in [(512, 768), (256, 256)]:
        assert lo <= mac_per_pixel(preset(name), shape) <= hi
    # computed, not stored: changing the architecture changes the count
    assert mac_per_pixel(preset(name).replace(arm_ctx=32), (256, 256)) > mac_per_pixel(preset(name), (256, 256))


def test_mac_count_by_hand():
    cfg = CoolChicConfig(n_levels=2, arm_ctx=8, arm_hidden=1, synthesis="4-1-linear-relu,3-1-linear-none")
    # 64x64: ARM (64 + 16) per latent on 64^2 + 32^2 latents; upsampler 1 channel, 2 passes of 4 taps
    arm = 80 * (64 * 64 + 32 * 32)
    ups = 4 * (32 * 64) + 4 * (64 * 64) + 2 * 7 * 64 * 64
    assert mac_per_pixel(cfg, (64, 64)) == pytest.approx((arm + ups) / 4096 + 2 * 4 + 4 * 3)
    with pytest.raises(InputError):
        preset("3000")


def test_forward_modes_and_gradients():
    m = CoolChic((20, 28), PRESETS["500"])
    for mode in ["noise", "softround", "ste", "round", "none"]:
        rec, rate = m(mode, temperature=0.3, kumaraswamy_a=2.0)
        assert rec.shape == (1, 3, 20, 28) and rate.dim() == 0 and rate.item() > 0
    rec, rate = m("softround", 0.3)
    (rec.square().mean() + rate).backward()
    assert m.latents.grids[0].grad is not None and m.arm.out.weight.grad is not None


def test_tiny_fit_lowers_the_loss_and_codes_its_latents():
    torch.manual_seed(0)
    H = W = 32
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    img = torch.stack([0.5 + 0.4 * torch.sin(6 * xx), yy, 0.5 + 0.3 * torch.cos(5 * (xx + yy))]).unsqueeze(0)
    img = (img + 0.05 * torch.rand_like(img)).clamp(0, 1)
    m = CoolChic((H, W), PRESETS["500"])
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    lmbda = 1e-3
    losses = []
    for _ in range(50):
        rec, rate = m("softround", temperature=0.3, kumaraswamy_a=2.0)
        loss = F.mse_loss(rec, img) + lmbda * rate / (H * W)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    # the integer latents go through the coder and back unchanged; the decoder's image follows
    ia = m.integer_arm()
    levels = m.integer_levels()
    table = laplace.get_table(**coding_grid())
    _, vals, mu, k = level_parameters(levels, ia)
    data = laplace.encode(vals, mu, k, mu_frac_bits=ia.act_frac_bits, table=table)
    dec = laplace.LaplaceDecoder(data, vals.size, mu_frac_bits=ia.act_frac_bits, table=table)
    out = decode_levels([g.shape for g in levels], ia, dec)
    assert all(np.array_equal(a, b) for a, b in zip(out, levels, strict=True))
    assert torch.equal(m.reconstruct(out), m.reconstruct())
