"""The coordinate backbones: shapes, initialisation, SPDER's gradient, Poly-INR's degree."""

import json
import math

import numpy as np
import pytest
import torch

from inrkit.errors import InputError
from inrkit.inr import build_field, field_from_config
from inrkit.inr.fields.spder import spder_arctan, spder_sqrt

SMALL = {
    "siren": {"width": 16, "depth": 2},
    "spder": {"width": 16, "depth": 2},
    "polyinr": {"width": 16, "levels": 3},
    "fourier": {"width": 16, "depth": 1, "num_features": 8},
}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: one thread avoids OpenMP stalls on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("in_dim", [1, 2, 3])
def test_forward_and_render_shapes(name, in_dim):
    field = build_field(name, in_dim=in_dim, out_channels=2, **SMALL[name])
    coords = torch.rand(5, 7, in_dim) * 2 - 1
    out = field(coords)
    assert out.shape == (5, 7, 2)
    assert torch.isfinite(out).all()
    assert out.abs().max() < 10  # a freshly initialised field starts near the fitting range
    grid = (6, 4, 3)[:in_dim]
    rendered = field.render(grid)
    assert rendered.shape == (*grid, 2)
    double = tuple(2 * n for n in grid)
    assert field.render(double).shape == (*double, 2)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_render_matches_forward_on_the_sample_centre_grid(name):
    field = build_field(name, in_dim=2, out_channels=3, **SMALL[name])
    from inrkit.datasets import coordinate_grid

    expected = field(coordinate_grid((5, 9)))
    torch.testing.assert_close(field.render((5, 9), batch_size=7), expected)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_config_round_trip_rebuilds_the_same_function(name):
    field = build_field(name, in_dim=2, out_channels=3, **SMALL[name])
    description = json.loads(json.dumps(field.config_dict()))
    rebuilt = field_from_config(description)
    rebuilt.load_state_dict(field.state_dict())
    coords = torch.rand(11, 2) * 2 - 1
    torch.testing.assert_close(rebuilt(coords), field(coords), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["siren", "spder"])
def test_siren_initialisation_statistics(name):
    width, omega = 256, 30.0
    field = build_field(name, in_dim=2, out_channels=3, width=width, depth=2)
    first, *hidden = field.layers
    assert first.weight.abs().max() <= 1 / 2
    # Uniform on ±b has variance b²/3.
    assert first.weight.var().item() == pytest.approx((1 / 2) ** 2 / 3, rel=0.15)
    bound = math.sqrt(6 / width) / omega
    for layer in hidden:  # the hidden sine layers and the linear output layer
        assert layer.weight.abs().max() <= bound
        assert layer.weight.var().item() == pytest.approx(bound**2 / 3, rel=0.15)
    for layer in field.layers:  # PyTorch's default nn.Linear bias, as in the reference
        assert layer.bias.abs().max() <= 1 / math.sqrt(layer.in_features)
    assert field.layers[1].bias.var().item() == pytest.approx(1 / (3 * width), rel=0.3)


def test_siren_first_layer_spans_several_periods():
    field = build_field("siren", in_dim=1, out_channels=1, width=64, depth=0)
    pre = 30.0 * field.layers[0](torch.linspace(-1, 1, 101)[:, None])
    assert pre.abs().max() > math.pi  # ω0 = 30 with U(±1/n) weights: beyond one half period


def test_siren_positional_encoding_follows_struempler():
    from inrkit.inr.fields.siren import positional_encoding

    x = torch.tensor([[0.5, -0.25]])
    got = positional_encoding(x, 2, 1.4)[0].tolist()
    # [x, y, then per frequency k: sin x, cos x, sin y, cos y at 1.4^k π]
    want = [0.5, -0.25]
    for k in range(2):
        for c in (0.5, -0.25):
            want += [math.sin(1.4**k * math.pi * c), math.cos(1.4**k * math.pi * c)]
    assert got == pytest.approx(want, abs=1e-6)
    field = build_field("siren", width=8, depth=1, pe_frequencies=16)
    assert field.layers[0].in_features == 2 * (1 + 2 * 16)
    assert field.layers[0].weight.abs().max() <= 1 / 66  # SIREN's first-layer init on the encoding
    assert build_field("siren", width=8, depth=1).layers[0].in_features == 2  # off by default
    with pytest.raises(InputError, match="pe_frequencies"):
        build_field("siren", pe_frequencies=64)


def test_spder_activation_gradient_is_finite_at_zero():
    z = torch.tensor([0.0, -0.0, 1e-30, -1e-20, 1e-7, 0.5, -2.0, 40.0], requires_grad=True)
    spder_sqrt(z).sum().backward()
    assert torch.isfinite(z.grad).all()
    away = z.detach()[5:]
    exact = torch.cos(away) * away.abs().sqrt() + torch.sin(away) * away.sign() / (2 * away.abs().sqrt())
    torch.testing.assert_close(z.grad[5:], exact)
    assert z.grad[:5].abs().max() < 1e-3  # the true derivative tends to 0 at the origin

    z = torch.tensor([0.0, 1.0], requires_grad=True)
    spder_arctan(z).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_spder_values_and_field_gradient_at_zero_preactivation():
    z = torch.linspace(-5, 5, 41)
    torch.testing.assert_close(spder_sqrt(z), torch.sin(z) * z.abs().sqrt())
    field = build_field("spder", in_dim=2, out_channels=1, width=8, depth=1)
    with torch.no_grad():
        for layer in field.layers[:-1]:
            layer.weight.zero_()
            layer.bias.zero_()
    field(torch.rand(16, 2)).sum().backward()
    for p in field.parameters():
        assert torch.isfinite(p.grad).all()


def test_spder_rejects_unknown_activation():
    with pytest.raises(InputError, match="activation"):
        build_field("spder", in_dim=2, out_channels=3, activation="relu")


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_polyinr_is_a_polynomial_of_degree_levels(levels):
    # With slope 1 the leaky ReLU is the identity and the field is an exact
    # polynomial of degree `levels` in the coordinate.
    field = build_field("polyinr", in_dim=1, out_channels=1, width=8, levels=levels,
                        negative_slope=1.0).double()
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)
    y = field(x[:, None])[:, 0].detach().numpy()

    def residual(degree):
        fit = np.polynomial.polynomial.Polynomial.fit(x.numpy(), y, degree)
        return np.abs(fit(x.numpy()) - y).max() / np.abs(y).max()

    assert residual(levels) < 1e-9
    assert residual(levels - 1) > 1e-4  # the top degree is really there


def test_polyinr_with_leaky_relu_is_not_polynomial():
    field = build_field("polyinr", in_dim=1, out_channels=1, width=16, levels=3).double()
    x = torch.linspace(-1, 1, 400, dtype=torch.float64)
    y = field(x[:, None])[:, 0].detach().numpy()
    fit = np.polynomial.polynomial.Polynomial.fit(x.numpy(), y, 3)
    assert np.abs(fit(x.numpy()) - y).max() / np.abs(y).max() > 1e-6


def test_fourier_encodings():
    gaussian = build_field("fourier", in_dim=2, out_channels=3, num_features=16, sigma=4.0)
    assert gaussian.encoding.out_dim == 32
    assert gaussian.mlp[0].in_features == 32
    again = build_field("fourier", in_dim=2, out_channels=3, num_features=16, sigma=4.0)
    other = build_field("fourier", in_dim=2, out_channels=3, num_features=16, sigma=4.0,
                        encoding_seed=1)
    torch.testing.assert_close(gaussian.encoding.frequencies, again.encoding.frequencies)
    assert not torch.equal(gaussian.encoding.frequencies, other.encoding.frequencies)
    # B ~ N(0, σ²), applied as π B v on [-1, 1] coordinates (= 2π B u on [0, 1]).
    big = build_field("fourier", in_dim=2, out_channels=3, num_features=4096, sigma=4.0)
    assert (big.encoding.frequencies / math.pi).std().item() == pytest.approx(4.0, rel=0.05)
    assert "encoding.frequencies" not in gaussian.state_dict()  # rebuilt from the seed

    positional = build_field("fourier", in_dim=3, out_channels=1, encoding="positional",
                             num_frequencies=4)
    assert positional.encoding.out_dim == 3 * (1 + 2 * 4)
    p = torch.tensor([[0.25, -0.5, 1.0]])
    features = positional.encoding(p)
    torch.testing.assert_close(features[0, :3], p[0])
    # sin(2^k π p) for coordinate 0 (p=0.25) at k=1 is sin(π/2) = 1.
    assert features[0, 3 + 1].item() == pytest.approx(1.0)

    plain = build_field("fourier", in_dim=2, out_channels=3, encoding="none", width=8)
    assert plain.mlp[0].in_features == 2


@pytest.mark.parametrize(
    ("name", "config", "match"),
    [
        ("siren", {"width": 0}, "width"),
        ("siren", {"depth": -1}, "depth"),
        ("siren", {"first_omega_0": 0.0}, "first_omega_0"),
        ("siren", {"in_dim": 4}, "in_dim"),
        ("fourier", {"encoding": "hash"}, "encoding"),
        ("fourier", {"sigma": -1.0}, "sigma"),
        ("polyinr", {"levels": 0}, "levels"),
        ("siren", {"colour": 3}, "colour"),
    ],
)
def test_bad_configs_raise_input_error(name, config, match):
    config = {"in_dim": 2, "out_channels": 3, **config}
    with pytest.raises(InputError, match=match):
        build_field(name, **config)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_default_learning_rate_is_declared(name):
    from inrkit.registry import FIELDS

    assert FIELDS.get(name).default_lr > 0


def test_render_refuses_bad_shapes_and_oversized_grids():
    field = build_field("siren", in_dim=2, out_channels=3, width=8)
    for shape in [(-1, 16), (0, 16), (2.5, 4), 16, (4, 4, 4)]:
        with pytest.raises(InputError):
            field.render(shape)
    with pytest.raises(InputError, match="batch_size"):
        field.render((4, 4), batch_size=0)
    with pytest.raises(InputError, match="over the limit"):  # refused before any allocation
        field.render((10**5, 10**5))
    assert field.render(torch.Size([4, 5])).shape == (4, 5, 3)


@pytest.mark.parametrize(
    ("description", "match"),
    [({"name": "siren", "config": None}, "not a field description"),
     ({"name": ["siren"], "config": {}}, "not a field description"),
     ({"name": "siren", "config": {1: 2}}, "not a field description"),
     ({"name": "nerv", "config": {}}, "'nerv' needs the option.s. height, width")],
)  # fmt: skip
def test_malformed_field_descriptions_are_input_errors(description, match):
    with pytest.raises(InputError, match=match):
        field_from_config(description)
