"""The "nerv", "hnerv" and "nervpp" video codecs: round trip, rate, frame ranges, bad input."""

import math
import random

import pytest
import torch

from inrkit.codecs import video as video_codecs
from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.codecs.bitstream.container import Container, pack, unpack
from inrkit.codecs.bitstream.quantize import deserialize_quantized, spec_of
from inrkit.codecs.video import (
    clip_mse,
    decoder_view,
    dequantize_embeddings,
    finetune_pruned,
    prune,
    quantize_embeddings,
)
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr import field_from_config
from inrkit.inr.frames.hnerv import HNeRV
from inrkit.inr.frames.nerv import NeRV
from inrkit.inr.frames.nervpp import NeRVPlusPlus
from inrkit.inr.frames.video_fit import VideoFitConfig, fit_frames
from inrkit.registry import CODECS, FIELDS

EPOCHS = 60
SMALL = {  # tiny architectures so that a 4-frame 32×64 clip trains in seconds
    "nerv": dict(pe_levels=16, strides=(4, 2), lower_width=6),
    "hnerv": dict(lower_width=6, encoder_dim=16),
    "nervpp": dict(pe_levels=16, strides=(4, 2), lower_width=6),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def clip(frames: int = 4, height: int = 32, width: int = 60) -> Signal:
    """Smooth moving colour ramps (width 60 also exercises the pad-to-8 path)."""
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)
    data = torch.stack(
        [torch.stack([0.2 + 0.6 * x, 0.8 - 0.5 * y, 0.3 + 0.4 * x * y + 0.05 * t]) for t in range(frames)]
    )
    return Signal(data, "video", frame_rate=25.0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(((a - b) ** 2).mean().item())


@pytest.fixture(scope="module", params=sorted(SMALL))
def encoded(request):
    torch.set_num_threads(1)
    codec = CODECS.get(request.param)(lr=5e-3, **SMALL[request.param])
    signal = clip()
    data = codec.encode(signal, Rate(bpp=8.0), EncodeOptions(steps=EPOCHS, seed=1))
    return codec, signal, data


def test_round_trip_quality_and_rate(encoded):
    codec, signal, data = encoded
    decoded = codec.decode(data)
    assert decoded.data.shape == signal.data.shape and decoded.frame_rate == 25.0
    assert psnr(decoded.data, signal.data) > 24
    bpp = 8 * len(data) / signal.num_samples
    assert 5.0 < bpp <= 8.0 * 1.02
    assert codec.last_report.bytes == len(data) and codec.last_report.epochs == EPOCHS


def test_frame_range_equals_full_decode(encoded):
    codec, _, data = encoded
    full = codec.decode(data)
    assert torch.equal(codec.decode(data, frames=(1, 3)).data, full.data[1:3])
    assert torch.equal(codec.decode(data, frames=(3, 4)).data, full.data[3:])
    assert torch.equal(codec.decode(data, frames=(2, None)).data, full.data[2:])  # to the end
    assert torch.equal(full.data, full.quantized().data)  # already rounded to 8 bits


def test_the_api_refuses_an_image_option_for_video(encoded):
    from inrkit import api

    with pytest.raises(InputError, match=r"video files decode with frames, not scale"):
        api.decode(encoded[2], scale=2.0)


def test_decoding_is_deterministic(encoded):
    codec, _, data = encoded
    fresh = CODECS.get(codec.name)()
    assert torch.equal(codec.decode(data).data, fresh.decode(data).data)


def test_version_2_files_still_decode(encoded):
    # Version 2 differed only in padding every clip to a multiple of 8 pixels, which this one is.
    codec, _, data = encoded
    c = unpack(data)
    assert c.codec_version == 3
    old = pack(Container(c.codec, 2, c.modality, c.shape, c.header, c.sections))
    assert torch.equal(codec.decode(old).data, codec.decode(data).data)
    with pytest.raises(BitstreamError, match="reads version 2, 3"):
        codec.decode(pack(Container(c.codec, 1, c.modality, c.shape, c.header, c.sections)))


def test_awkward_frame_sizes_are_padded_to_a_small_embedding_grid():
    # 36 and 64 share only the divisor 4; padding the width to 72 gives HNeRV's 2×4 grid
    # (a multiple of 8, 40×64, would have left 5×8 embedding cells).
    codec = CODECS.get("hnerv")(**SMALL["hnerv"])
    signal = clip(frames=2, height=36, width=64)
    data = codec.encode(signal, Rate(bpp=16.0), EncodeOptions(steps=EPOCHS, seed=1))
    config = unpack(data).header["arch"]["config"]
    assert (config["height"], config["width"]) == (36, 72)
    model = field_from_config(unpack(data).header["arch"])
    assert model.embedding_shape() == (16, 2, 4)
    decoded = codec.decode(data)
    assert decoded.data.shape == signal.data.shape and psnr(decoded.data, signal.data) > 24


def test_strides_too_large_for_the_frame_are_refused():
    codec = CODECS.get("nerv")(strides=(4, 4, 4), pe_levels=16)  # 64 > 32 rows + the most padding allowed
    with pytest.raises(InputError, match="strides"):
        codec.encode(clip(), Rate(bpp=8.0), EncodeOptions(steps=1))


def test_bad_frame_range(encoded):
    codec, _, data = encoded
    for frames in [(2, 2), (-1, 2), (0, 5)]:
        with pytest.raises(InputError, match="frame range"):
            codec.decode(data, frames=frames)


def repack(data: bytes, header=None, sections=None) -> bytes:
    """``data`` with its header and/or sections replaced (a valid container, CRC included)."""
    c = unpack(data)
    return pack(Container(c.codec, c.codec_version, c.modality, c.shape, header or c.header, sections or c.sections))


def with_arch(data: bytes, **changes) -> bytes:
    header = unpack(data).header
    arch = {**header["arch"], "config": {**header["arch"]["config"], **changes}}
    return repack(data, {**header, "arch": arch})


def test_corrupt_or_foreign_files_are_bitstream_errors(encoded):
    codec, _, data = encoded
    with pytest.raises(BitstreamError):
        codec.decode(data[:-10])
    other = "hnerv" if codec.name != "hnerv" else "nerv"
    with pytest.raises(BitstreamError):
        CODECS.get(other)().decode(data)
    c = unpack(data)
    for mutate in (
        lambda h: h.pop("arch"),
        lambda h: h.pop("q"),
        lambda h: h.__setitem__("arch", [h["arch"]]),
        lambda h: h["q"].__setitem__("b", 40),
        lambda h: h["q"].__setitem__("b", True),
        lambda h: h["arch"].__setitem__("name", "siren"),
        lambda h: h["arch"]["config"].pop("height"),
        lambda h: h["arch"]["config"].__setitem__("bogus", 1),
    ):
        header = {**c.header, "q": dict(c.header["q"]),
                  "arch": {**c.header["arch"], "config": dict(c.header["arch"]["config"])}}
        mutate(header)
        with pytest.raises(BitstreamError):
            codec.decode(repack(data, header))
    for name, payload in c.sections.items():
        for bad in (payload[:-2], payload + b"\0\0", b""):
            with pytest.raises(BitstreamError):
                codec.decode(repack(data, sections={**c.sections, name: bad}))


@pytest.mark.parametrize(
    "changes",
    [
        {"fc_dim": True},  # JSON true is an int to Python
        {"fc_dim": 2.0},
        {"fc_dim": -3},
        {"fc_dim": "8"},
        {"fc_dim": 10**6},
        {"fc_dim": 2**70},
        {"lower_width": 60_000},  # ~10^11 parameters: refused before anything is allocated
        {"strides": [True, 2]},
        {"strides": [4, 2.0]},
        {"strides": [1] * 40},
        {"strides": 8},
        {"strides": [3, 3]},  # does not divide the frame size
        {"height": 1 << 20},
        {"height": 64},  # more padding than a clip of 32 rows may have
        {"height": 31},  # fewer rows than the clip
        {"channels": 1},
        {"reduce": 0},
        {"reduce": 1e300},
        {"fc_dim": None},
    ],
)
def test_hostile_architectures_are_bitstream_errors(encoded, changes):
    codec, _, data = encoded
    with pytest.raises(BitstreamError):
        codec.decode(with_arch(data, **changes))


def test_random_header_values_never_escape_as_other_errors(encoded):
    codec, _, data = encoded
    config = unpack(data).header["arch"]["config"]
    values = [True, False, None, -1, 0, 1, 3, 2.5, 1e30, 2**63, "x", [], [2], {}, [4, 2, 2]]
    rng = random.Random(0)
    for _ in range(40):
        changes = {key: rng.choice(values) for key in rng.sample(sorted(config), 2)}
        try:
            codec.decode(with_arch(data, **changes))
        except BitstreamError:
            pass


def test_decode_limits_come_from_the_environment(encoded, monkeypatch):
    codec, _, data = encoded
    monkeypatch.setenv("INRKIT_MAX_PIXELS", "1000")
    with pytest.raises(BitstreamError, match="pixels"):
        codec.decode(data)
    monkeypatch.delenv("INRKIT_MAX_PIXELS")
    monkeypatch.setenv("INRKIT_MAX_BYTES", "50K")  # the 90 KB clip does not fit
    with pytest.raises(BitstreamError, match="frames="):
        codec.decode(data)
    monkeypatch.setenv("INRKIT_MAX_BYTES", "100K")  # the clip fits, the network's activations do not
    with pytest.raises(BitstreamError, match="activations"):
        codec.decode(data)


def test_frame_decoders_are_registered_fields():
    assert (FIELDS.get("nerv"), FIELDS.get("hnerv"), FIELDS.get("nervpp")) == (NeRV, HNeRV, NeRVPlusPlus)


def test_pruned_rung_holds_its_zeros_through_the_file(monkeypatch):
    """A rung with pruning: the stored body weights keep the pruned fraction of exact zeros
    (fine-tuning held the mask) and the clip still decodes well."""
    monkeypatch.setattr(video_codecs, "PRUNE_LADDER", ((8, 0.3),))
    codec = CODECS.get("nerv")(lr=5e-3, prune_finetune=0.2, **SMALL["nerv"])
    signal = clip()
    data = codec.encode(signal, Rate(bpp=8.0), EncodeOptions(steps=EPOCHS, seed=1))
    assert codec.last_report.prune == 0.3 and codec.last_report.finetune_epochs in (0, EPOCHS // 5)
    assert psnr(codec.decode(data).data, signal.data) > 24
    c = unpack(data)
    network = decoder_view(field_from_config(c.header["arch"]))
    stored = deserialize_quantized(c.header["q"], c.sections, spec_of(network))
    body = [q for q in stored if len(q.shape) > 1 and not q.name.startswith("head.")]
    assert body and all((q.symbols == 0).mean() >= 0.3 for q in body)


def test_finetuning_holds_the_mask_and_the_parameter_order():
    torch.manual_seed(0)
    frames = clip(width=64).data
    model = NeRV(NeRV.Config(height=32, width=64, fc_dim=8, **SMALL["nerv"]))
    fit_frames(model, frames, VideoFitConfig(epochs=40, lr=5e-3))
    pruned, masks = prune(model, 0.5)
    assert "head.weight" not in masks and "stem.0.weight" in masks
    before = clip_mse(pruned, frames)
    finetune_pruned(pruned, masks, frames, VideoFitConfig(epochs=6, lr=1e-3, warmup=0.0))
    params = dict(pruned.named_parameters())
    assert list(params) == [n for n, _ in model.named_parameters()]  # the order the file stores
    assert all((params[name][~mask] == 0).all() for name, mask in masks.items())
    assert clip_mse(pruned, frames) < before
    assert clip_mse(model, frames) < before  # pruning cost something; the original is untouched


def test_embedding_quantization_uses_each_channel_range():
    torch.manual_seed(0)
    embeddings = torch.rand(5, 4, 2, 3) * torch.tensor([0.1, 1, 10, 100]).view(1, 4, 1, 1) + 7
    centre, q = quantize_embeddings(embeddings, 6)
    restored = dequantize_embeddings(centre, q)
    span = (embeddings.amax(dim=(0, 2, 3)) - embeddings.amin(dim=(0, 2, 3))).view(1, 4, 1, 1)
    assert restored.shape == embeddings.shape
    assert ((restored - embeddings).abs() <= span / 62 / 2 * 1.0001).all()  # half a step of the range


def test_quality_ladder_orders_the_budget():
    codec = CODECS.get("hnerv")()
    signal = clip(8, 64, 128)
    budgets = [codec.parameter_budget(signal, Rate(quality=q)) for q in range(1, 9)]
    assert budgets == sorted(budgets) and budgets[0] < budgets[-1]


def test_a_budget_below_the_smallest_model_names_the_bpp_to_ask_for():
    codec = CODECS.get("nerv")()
    signal = clip(2, 17, 33)
    with pytest.raises(InputError, match=r"2 frames of 17×33: .* give --bpp ([\d.]+) or more") as error:
        codec.encode(signal, Rate(bpp=0.5), EncodeOptions(steps=1))
    need = float(error.value.args[0].split("--bpp ")[1].split()[0])
    assert codec.encode(signal, Rate(bpp=need * 1.01), EncodeOptions(steps=1))  # enough now


def test_refuses_other_modalities_and_rates():
    codec = CODECS.get("nerv")()
    image = Signal(torch.rand(3, 8, 8), "image")
    with pytest.raises(InputError, match="video"):
        codec.encode(image, Rate(bpp=1.0))
    with pytest.raises(InputError, match="bpp or quality"):
        codec.encode(clip(), Rate(kbps=10.0))


def test_zero_frame_video_is_an_input_error():
    with pytest.raises(InputError, match="empty"):
        Signal(torch.zeros(0, 3, 16, 16), "video")


def test_too_large_clip_is_refused_before_training():
    codec = CODECS.get("hnerv")(memory_limit=1 << 20)
    with pytest.raises(InputError, match="GiB"):
        codec.encode(clip(8, 64, 128), Rate(bpp=8.0), EncodeOptions(steps=1))


@pytest.mark.parametrize(
    ("options", "match"),
    [({"bogus": 1}, "unknown option.s. bogus"), ({"fc_dim": 4}, "unknown option.s. fc_dim"),
     ({"strides": [0]}, "strides must be whole numbers"), ({"bits_per_param": 0}, "bits_per_param"),
     ({"lr": -1}, "lr must be a positive number"), ({"batch_size": 1.5}, "batch_size"),
     ({"memory_limit": -5}, "memory_limit"), ({"reduce": float("nan")}, "reduce must be a finite")],
)  # fmt: skip
def test_constructor_options_are_checked_at_construction(options, match):
    with pytest.raises(InputError, match=match):
        CODECS.get("nerv")(**options)
