"""Weight quantization (Strümpler et al. 2022): error bounds, serialization, QAT, pruning."""

import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from inrkit.codecs.bitstream.container import Container, pack, unpack
from inrkit.codecs.bitstream.entropy import encode_integers
from inrkit.codecs.bitstream.quantize import (
    dequantize,
    deserialize_quantized,
    fake_quantize,
    load_quantized_state,
    prune_by_magnitude,
    quantization_aware_finetune,
    quantize_state,
    quantize_tensor,
    serialize_quantized,
    spec_of,
    widen_small_tensors,
)
from inrkit.datasets.grids import coordinate_grid
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.field import build_field


class Sine(nn.Module):
    def __init__(self, omega_0: float):
        super().__init__()
        self.omega_0 = omega_0

    def forward(self, x):
        return torch.sin(self.omega_0 * x)


def small_siren(width: int = 24, omega_0: float = 30.0) -> nn.Sequential:
    """A 3-layer SIREN with the reference initialisation (Sitzmann et al. 2020)."""
    layers = [nn.Linear(2, width), nn.Linear(width, width), nn.Linear(width, 3)]
    with torch.no_grad():
        layers[0].weight.uniform_(-1 / 2, 1 / 2)
        for layer in layers[1:]:
            bound = math.sqrt(6 / width) / omega_0
            layer.weight.uniform_(-bound, bound)
    return nn.Sequential(layers[0], Sine(omega_0), layers[1], Sine(omega_0), layers[2])


def photo_crop(size: int = 16) -> torch.Tensor:
    """``size × size × 3`` crop of the sample photograph, in [-1, 1]."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    pixels = np.asarray(Image.open(path).convert("RGB"))[100 : 100 + size, 200 : 200 + size]
    return torch.from_numpy(pixels.copy()).float() / 255 * 2 - 1


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12, 16])
@pytest.mark.parametrize("per_channel", [False, True])
def test_error_at_most_half_a_step(bits, per_channel):
    t = torch.randn(17, 9) * torch.linspace(0.01, 3, 17)[:, None]
    q = quantize_tensor(t, bits, per_channel, name="w")
    levels = 2 ** (bits - 1) - 1
    assert q.symbols.dtype == np.int64 and q.steps.dtype == np.float32
    assert np.abs(q.symbols).max() == levels  # the largest weight maps to the top level
    err = (dequantize(q) - t).abs()
    step = torch.from_numpy(q.steps).reshape(-1, 1) if per_channel else torch.tensor(float(q.steps[0]))
    assert (err <= step / 2 * (1 + 1e-5) + 1e-12).all()


def test_per_channel_steps():
    t = torch.randn(6, 4, 3)
    q = quantize_tensor(t, 8, per_channel=True)
    assert q.per_channel and q.steps.shape == (6,)
    expected = t.reshape(6, -1).abs().amax(dim=1) / 127
    np.testing.assert_allclose(q.steps, expected.numpy(), rtol=1e-6)
    bias = quantize_tensor(torch.randn(6), 8, per_channel=True)
    assert not bias.per_channel and bias.steps.shape == (1,)


def test_extremes_and_zero_tensor():
    t = torch.tensor([-1.0, -0.4, 0.0, 0.3, 1.0])
    two = quantize_tensor(t, 2)
    assert set(two.symbols.tolist()) <= {-1, 0, 1} and float(two.steps[0]) == 1.0
    sixteen = quantize_tensor(t, 16)
    assert (dequantize(sixteen) - t).abs().max() <= 1 / 32767 / 2 + 1e-9
    zero = quantize_tensor(torch.zeros(3, 3), 8, per_channel=True)
    assert (zero.steps == 0).all() and (zero.symbols == 0).all()
    assert (dequantize(zero) == 0).all()
    for bad in (1, 17, 8.0):
        with pytest.raises(InputError):
            quantize_tensor(t, bad)
    with pytest.raises(InputError, match="non-finite"):
        quantize_tensor(torch.tensor([1.0, float("nan")]), 8)


def test_dequantize_is_integer_times_float32_step():
    q = quantize_tensor(torch.randn(5, 7), 10, per_channel=True)
    expected = (q.symbols.reshape(5, 7).astype(np.float32) * q.steps[:, None]).astype(np.float32)
    assert np.array_equal(dequantize(q).numpy(), expected)


def test_fake_quantize_forward_and_straight_through_gradient():
    t = torch.randn(8, 5, requires_grad=True)
    out = fake_quantize(t, 4, per_channel=True)
    q = dequantize(quantize_tensor(t, 4, per_channel=True))
    torch.testing.assert_close(out.detach(), q, rtol=0, atol=1e-6)
    (out * torch.arange(40.0).reshape(8, 5)).sum().backward()
    torch.testing.assert_close(t.grad, torch.arange(40.0).reshape(8, 5))


def round_trip(module: nn.Module, bits, per_channel: bool) -> nn.Module:
    qts = quantize_state(module, bits, per_channel)
    header, sections = serialize_quantized(qts)
    data = pack(Container("test", 1, "image", [3, 4, 4], {"q": header}, sections))
    c = unpack(data)
    rebuilt = small_siren()
    load_quantized_state(rebuilt, deserialize_quantized(c.header["q"], c.sections, spec_of(rebuilt)))
    for p, q in zip(rebuilt.parameters(), qts, strict=True):
        assert torch.equal(p.detach(), dequantize(q))
    return rebuilt


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bits", [2, 8, 16])
def test_serialize_round_trip(bits, per_channel):
    round_trip(small_siren(), bits, per_channel)


def test_mixed_bit_widths_and_table_choice():
    model = small_siren()
    widths = {name: (6 if name.endswith("bias") else 9) for name, _ in model.named_parameters()}
    round_trip(model, widths, per_channel=False)
    qts = quantize_state(model, widths)
    header, sections = serialize_quantized(qts)
    assert header["b"] == [widths[q.name] for q in qts]
    # the chosen coding is never larger than either fixed choice
    groups = {}
    for q in qts:
        groups.setdefault(q.bits, []).append(q.symbols)
    split = sum(len(encode_integers(s)) + 2 for g in groups.values() for s in g)
    shared = sum(len(encode_integers(np.concatenate(g))) + 2 for g in groups.values())
    assert len(sections["q.sym"]) <= min(split, shared) + len(groups)


def test_deserialize_rejects_inconsistent_files():
    model = small_siren()
    header, sections = serialize_quantized(quantize_state(model, 8))
    spec = spec_of(model)
    bad_cases = [
        ({**header, "b": 40}, sections),
        ({**header, "b": [8, 8]}, sections),
        ({**header, "pc": 2}, sections),
        (header, {**sections, "q.steps": sections["q.steps"][:-4]}),
        (header, {**sections, "q.steps": np.full(6, np.nan, "<f4").tobytes()}),
        (header, {**sections, "q.sym": sections["q.sym"] + b"\0"}),
        (header, {**sections, "q.sym": sections["q.sym"][:-1]}),
        (header, {"q.steps": sections["q.steps"]}),
        ({**header, "b": 2}, sections),  # 8-bit symbols exceed the 2-bit range
    ]
    for h, s in bad_cases:
        with pytest.raises(BitstreamError):
            deserialize_quantized(h, s, spec)
    wrong = nn.Sequential(nn.Linear(2, 5))
    with pytest.raises(BitstreamError):
        load_quantized_state(wrong, deserialize_quantized(header, sections, spec))


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_qat_beats_post_training_quantization(one_thread):
    torch.manual_seed(0)
    values = photo_crop(16).reshape(-1, 3)
    coords = coordinate_grid((16, 16)).reshape(-1, 2)
    field = small_siren()
    optim = torch.optim.Adam(field.parameters(), lr=1e-3)
    for _ in range(200):
        loss = torch.mean((field(coords) - values) ** 2)
        optim.zero_grad()
        loss.backward()
        optim.step()
    history = quantization_aware_finetune(field, coords, values, bits=4, steps=40, lr=3e-4, eval_every=5)
    assert history["psnr_float"] > 30
    assert history["psnr_ptq"] < history["psnr_float"] - 3  # 4 bits hurt
    assert history["psnr_qat"] > history["psnr_ptq"] + 2
    # the returned field is the best one: quantizing it gives the reported PSNR
    rebuilt = small_siren()
    load_quantized_state(rebuilt, quantize_state(field, 4))
    with torch.no_grad():
        mse = torch.mean((rebuilt(coords).clamp(-1, 1) - values) ** 2).item()
    assert 10 * math.log10(4 / mse) == pytest.approx(history["psnr_qat"], abs=1e-3)


def test_prune_by_magnitude():
    model = small_siren()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    masks = prune_by_magnitude(model, 0.75)
    assert set(masks) == {"0.weight", "2.weight", "4.weight"}  # biases untouched
    for name, p in model.named_parameters():
        if name in masks:
            zeros = int((p == 0).sum())
            assert zeros == round(0.75 * p.numel())
            kept = before[name].abs()[masks[name]]
            dropped = before[name].abs()[~masks[name]]
            assert kept.min() >= dropped.max()
        else:
            assert torch.equal(p, before[name])
    size_pruned = len(encode_integers(np.concatenate([q.symbols for q in quantize_state(model, 8)])))
    dense = small_siren()
    size_dense = len(encode_integers(np.concatenate([q.symbols for q in quantize_state(dense, 8)])))
    assert size_pruned < 0.6 * size_dense
    with pytest.raises(InputError):
        prune_by_magnitude(model, 1.0)


def test_small_tensors_get_four_more_bits():
    siren = build_field("siren", in_dim=2, out_channels=3, depth=3, width=65)
    plan = widen_small_tensors(siren, 8)
    assert plan["layers.1.weight"] == plan["layers.3.weight"] == 8  # 65×65 hidden weights
    assert plan["layers.0.weight"] == plan["layers.4.weight"] == 12  # input and output layers
    assert all(plan[n] == 12 for n, p in siren.named_parameters() if p.ndim == 1)  # biases
    assert set(widen_small_tensors(siren, 14).values()) == {14, 16}  # capped at 16 bits
    narrow = build_field("siren", in_dim=2, out_channels=3, depth=3, width=12)
    assert set(widen_small_tensors(narrow, 8).values()) == {8}  # small tensors: 25 % of the entries


def test_widening_the_small_siren_tensors_removes_most_of_the_quantization_loss():
    # A SIREN's first layer and biases sit inside sin(30·…): at one width for every
    # tensor they carry most of the error.
    torch.manual_seed(0)
    siren = build_field("siren", in_dim=2, out_channels=1, depth=2, width=48)
    coords = coordinate_grid((32, 32)).reshape(-1, 2)
    with torch.no_grad():
        before = siren(coords)

    def error(bits):
        q = build_field("siren", in_dim=2, out_channels=1, depth=2, width=48)
        load_quantized_state(q, quantize_state(siren, bits))
        with torch.no_grad():
            return float(((q(coords) - before) ** 2).mean())

    assert error(widen_small_tensors(siren, 6)) < error(6) / 4
