"""The coolchic codec, its phased training loop (inrkit.inr.phases) and the λ search
(inrkit.codecs.rate_control). Tiny images and a few steps: the whole file runs in well under
a minute on two cores."""

import math

import numpy as np
import pytest
import torch

from inrkit.codecs import EncodeOptions, Rate
from inrkit.codecs import coolchic as cc
from inrkit.codecs.bitstream.container import pack, section_sizes, unpack
from inrkit.codecs.rate_control import RATE_TOLERANCE, search_lambda
from inrkit.datasets import Signal
from inrkit.datasets.samples import load_sample_image
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.latents.coolchic import PRESETS, CoolChic
from inrkit.inr.latents.wavefront import build_schedule, decode_levels
from inrkit.inr.phases import Phase, run_phases
from inrkit.registry import CODECS


def rgb(h=16, w=20):
    return load_sample_image((230, 200, h, w))


def with_channels(sig, channels, bit_depth=8):
    data = sig.data
    if channels == 1:
        data = data.mean(0, keepdim=True)
    elif channels == 4:
        data = torch.cat([data, data[:1].flip(-1)])
    return Signal(data, "image", bit_depth=bit_depth).quantized()


@pytest.fixture(scope="module")
def rgb_file():
    return cc.CoolChicCodec().encode(rgb(), Rate(lmbda=1e-2), EncodeOptions(steps=12, seed=1))


def psnr(a, b):
    return -10 * math.log10(max(float(((a - b) ** 2).mean()), 1e-12))


@pytest.mark.parametrize("channels, bit_depth", [(1, 8), (3, 8), (4, 8), (3, 16)])
def test_round_trip(channels, bit_depth):
    sig = with_channels(rgb(), channels, bit_depth)
    codec = CODECS.get("coolchic")(preset="500")
    data = codec.encode(sig, Rate(lmbda=1e-2), EncodeOptions(steps=12, seed=1))
    out = codec.decode(data)
    assert out.data.shape == sig.data.shape and out.bit_depth == bit_depth and out.modality == "image"
    levels = (1 << bit_depth) - 1
    assert torch.equal(torch.round(out.data * levels) / levels, out.data)  # quantized to its bit depth
    assert abs(psnr(out.data, sig.data) - codec.last_report["psnr"]) < 0.5  # the encoder's own measure
    assert codec.last_report["bytes"] == len(data)


def test_rate_is_the_file_size_and_sections_read_well(rgb_file):
    sig = rgb()
    assert cc.CoolChicCodec.measured_rate(sig, rgb_file) == 8 * len(rgb_file) / (16 * 20)
    sizes = section_sizes(rgb_file)
    assert sum(sizes.values()) == 8 * len(rgb_file)
    assert {"arm", "upsampler", "synthesis"} <= set(sizes)
    assert {f"latent{i}" for i in range(7)} <= set(sizes)
    assert unpack(rgb_file).header["preset"] == "1000"


def test_quality_ladder_and_bad_options():
    codec = cc.CoolChicCodec()
    with pytest.raises(InputError):
        codec.encode(rgb(), Rate(quality=9), EncodeOptions(steps=2))
    with pytest.raises(InputError):
        codec.encode(rgb(), Rate(kbps=10), EncodeOptions(steps=2))
    with pytest.raises(InputError):
        codec.encode(rgb(), Rate(lmbda=1e-2), EncodeOptions(steps=0))
    data = codec.encode(rgb(8, 8), Rate(quality=3), EncodeOptions(steps=2))
    assert codec.last_report["lmbda"] == cc.QUALITY_LAMBDA[3] and codec.decode(data).data.shape == (3, 8, 8)
    for bad in [dict(preset="3000"), dict(n_levels=0), dict(n_levels=True), dict(latent_gain=-1.0)]:
        with pytest.raises(InputError):
            cc.CoolChicCodec(**bad)
    assert [r.quality for r in codec.ladder(3)] == [1, 4, 8]


def test_same_bytes_with_one_or_two_threads(rgb_file):
    codec = cc.CoolChicCodec()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = codec.decode(rgb_file).data
        torch.set_num_threads(1)
        one = codec.decode(rgb_file).data
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


def _mutated(data, change):
    c = unpack(data)
    change(c)
    return pack(c)


@pytest.mark.parametrize("change", [
    lambda c: c.header.update(preset="3000"),
    lambda c: c.header.update(preset=1000),
    lambda c: c.header.update(q=[4, 4, 3, 5]),
    lambda c: c.header.update(q=[17, 4, 3, 5, 6]),
    lambda c: c.header.update(q=[4, 30, 3, 5, 6]),
    lambda c: c.header.update(arch={"n_levels": 100}),
    lambda c: c.header.update(arch={"arm_ctx": 12}),
    lambda c: c.header.update(arch={"synthesis": "9999-9-linear-relu,3-1-linear-none"}),
    lambda c: c.header.update(arch={"synthesis": "40-1-linear-relu,4-1-linear-none"}),
    lambda c: c.header.update(arch={"ups_kernel": 7}),
    lambda c: c.header.update(arch={"bogus": 1}),
    lambda c: c.header.update(extra=1),
    lambda c: c.header.pop("q"),
    lambda c: c.sections.pop("latent0"),
    lambda c: c.sections.update(latent9=b""),
    lambda c: c.sections.update(arm=c.sections["arm"][:-1]),
    lambda c: c.sections.update(synthesis=b"\x07" * 5),
    lambda c: c.sections.update(latent0=b"\xff" * 12),
    lambda c: setattr(c, "shape", [3, 1 << 15, 1 << 15]),
    lambda c: setattr(c, "shape", [2, 16, 20]),
    lambda c: setattr(c, "shape", [3, 16]),
])
def test_hostile_files_are_bitstream_errors(rgb_file, change):
    bad = _mutated(rgb_file, change)
    try:
        out = cc.CoolChicCodec().decode(bad)
    except BitstreamError:
        return
    # a payload that still decodes (garbage latents in range) must give a well-formed image
    assert torch.isfinite(out.data).all() and out.data.shape == (3, 16, 20)


def test_outlying_latents_are_clamped_until_codable():
    torch.manual_seed(0)
    model = CoolChic((12, 16), cc.config_for(PRESETS["500"], 3))
    with torch.no_grad():
        for g in model.latents.grids:
            g.normal_(0, 0.05)
        model.latents.grids[0][3, 4] = 400.0  # far outside any row of the tables
        model.latents.grids[1][2, 2] = -300.0
    iarm = model.integer_arm()
    levels, sched, *_, clamped = cc.codable_latents(model.integer_levels(), iarm)
    assert clamped >= 2
    sections = cc.encode_latents(model.integer_levels(), iarm)
    payloads = [sections[cc.latent_section(i)] for i in range(7)]
    decoded = decode_levels(sched.shapes, iarm, cc._LevelDecoders(build_schedule(sched.shapes, iarm.offsets), payloads, 8))
    assert all(np.array_equal(a, b) for a, b in zip(decoded, levels, strict=True))


# -- the λ search --------------------------------------------------------------------------


def test_search_lands_within_tolerance_on_a_stub_and_warm_starts():
    calls = []

    def fit(lmbda, warm):
        calls.append((lmbda, warm))
        size = round(400 * (lmbda / 1e-3) ** -0.7 + 60)  # a power law plus a fixed overhead
        return bytes(size), lmbda

    result = search_lambda(fit, 2000, 1e-3)
    assert result.converged and abs(result.size - 2000) <= RATE_TOLERANCE * 2000
    assert len(result.trials) <= 4 and calls[0][1] is None
    for lmbda, warm in calls[1:]:  # warm-started from the nearest earlier λ
        earlier = [c[0] for c in calls[: calls.index((lmbda, warm))]]
        assert warm == min(earlier, key=lambda v: abs(math.log(v) - math.log(lmbda)))
    # an unreachable target: the closest file, not converged, at most 4 fits
    result = search_lambda(lambda lmbda, warm: (bytes(100), None), 5000, 1e-3)
    assert not result.converged and result.size == 100 and len(result.trials) <= 4


def test_bpp_search_on_the_measured_file():
    sig = rgb(48, 64)
    codec = cc.CoolChicCodec(preset="500")
    target = 3.0
    data = codec.encode(sig, Rate(bpp=target), EncodeOptions(steps=40, seed=0))
    bpp = 8 * len(data) / (48 * 64)
    trials = codec.last_report["search"]
    assert 1 <= len(trials) <= 4
    # the file returned is the trial closest to the target
    assert min(abs(math.log(8 * s / (48 * 64) / target)) for _, s in trials) == pytest.approx(abs(math.log(bpp / target)))
    assert abs(bpp - target) <= RATE_TOLERANCE * target


# -- the phased loop -----------------------------------------------------------------------


class Quadratic(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor([3.0]))
        self.b = torch.nn.Parameter(torch.tensor([-2.0]))


def quad_loss(m, step):
    loss = (m.a**2 + m.b**2).sum()
    return loss, {"loss": loss.item(), "lr_frac": step.frac}


def test_phases_honour_steps_groups_and_schedules():
    m = Quadratic()
    seen = []

    def loss_fn(model, step):
        seen.append((step.phase.name, step.index, step.temperature, step.noise))
        return quad_loss(model, step)

    phases = [Phase("one", steps=7, lr=0.1, schedule="cosine", lr_floor=0.01, quantize="softround",
                    temperature=(0.3, 0.1), noise=(2.0, 1.0), train=("a",)),
              Phase("two", steps=3, lr=0.1, quantize="ste")]
    b0 = m.b.item()
    result = run_phases(m, loss_fn, phases, groups={"a": [m.a], "b": [m.b]})
    assert [p.steps for p in result.phases] == [7, 3] and result.steps == 10
    assert [s[1] for s in seen] == list(range(7)) + list(range(3))
    assert seen[0][2] == pytest.approx(0.3) and seen[6][2] == pytest.approx(0.3 - 0.2 * 6 / 7)
    assert seen[0][3] == pytest.approx(2.0)
    assert m.b.item() != b0 and abs(m.a.item()) < 3.0
    assert phases[0].lr_at(0) == pytest.approx(0.1) and phases[0].lr_at(1) == pytest.approx(0.01)
    assert result.final.final_terms["loss"] > 0 and result.seconds >= 0


def test_phase_frozen_group_is_untouched_and_time_budget_stops():
    m = Quadratic()
    result = run_phases(m, quad_loss, [Phase("t", seconds=0.05, lr=0.01, train=("a",))], groups={"a": [m.a], "b": [m.b]})
    assert m.b.item() == -2.0 and result.phases[0].steps >= 1 and result.phases[0].seconds < 1.0


def test_keep_best_restores_the_best_state():
    m = Quadratic()
    # a huge learning rate makes the loss oscillate upwards after the first step
    result = run_phases(m, quad_loss, [Phase("kb", steps=20, lr=50.0, keep_best=True)])
    best = result.phases[0]
    assert best.restored_best
    assert (m.a**2 + m.b**2).item() == pytest.approx(best.best_loss)
    assert best.best_loss <= best.final_loss


def test_keyboard_interrupt_propagates():
    m = Quadratic()
    count = []

    def loss_fn(model, step):
        count.append(step.index)
        if step.index == 3:
            raise KeyboardInterrupt
        return quad_loss(model, step)

    with pytest.raises(KeyboardInterrupt):
        run_phases(m, loss_fn, [Phase("p", steps=100, lr=0.1)], progress=True)
    assert count == [0, 1, 2, 3]


def test_bad_phases_are_refused():
    for bad in [dict(), dict(steps=-1), dict(steps=5, lr=0), dict(steps=5, schedule="step"),
                dict(steps=5, quantize="bogus"), dict(steps=5, quantize="softround"), dict(seconds=0)]:
        with pytest.raises(InputError):
            Phase(**bad)
    m = Quadratic()
    with pytest.raises(InputError):
        run_phases(m, quad_loss, [])
    with pytest.raises(InputError):
        run_phases(m, quad_loss, [Phase(steps=1, train=("nope",))])
