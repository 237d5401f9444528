"""The adacode codec: masked codebook symbols in .inrk, rate by m, strict header checks."""

import numpy as np
import pytest
import torch

from inrkit.cli import main as cli_main
from inrkit.codecs import Rate
from inrkit.codecs.adacode import AdaCodeCodec
from inrkit.codecs.bitstream.container import pack, unpack
from inrkit.codecs.bitstream.entropy import encode_integers
from inrkit.datasets import Signal
from inrkit.datasets.samples import load_sample_image
from inrkit.errors import BitstreamError, InputError, ModelError
from inrkit.inr.learned.adacode import AdaCode, AdaCodeConfig, save_model
from inrkit.registry import CODECS

TINY = dict(widths=(8, 8, 16), codebooks=3, codebook_size=16, code_dim=4, filler_width=8)


def _save(path, seed):
    torch.manual_seed(seed)
    model = AdaCode(AdaCodeConfig(**TINY))
    with torch.no_grad():  # spread the codebooks so that every codeword can be chosen
        for vq in model.quantizers:
            vq.embedding.weight.normal_()
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("adacode") / "tiny.safetensors", 0)


@pytest.fixture(scope="module")
def image():
    return load_sample_image((150, 120, 37, 53))  # sizes not multiples of 4


def test_registered():
    assert CODECS.get("adacode") is AdaCodeCodec


def test_round_trip_every_m(model_path, image):
    codec = AdaCodeCodec(model=model_path)
    model = codec._model()[0]
    sizes = []
    for m in (1, 2, 3):
        data = codec.encode(image, Rate(quality=m))
        c = unpack(data)
        assert c.codec == "adacode" and c.header["m"] == m
        assert c.header["grid"] == [10, 14] and c.header["pad"] == [3, 3]
        assert len(c.header["model"]["sha256"]) == 64
        out = codec.decode(data)
        assert out.data.shape == image.data.shape and 0 <= out.data.min() and out.data.max() <= 1
        # the decoder reproduces the model's own masked forward pass
        x = torch.nn.functional.pad(image.data[None], (0, 3, 0, 3), mode="replicate")
        with torch.no_grad():
            ref = model(x, m=m).image[0, :, :37, :53].clamp(0, 1)
        # ... rounded to the image's 8 bits (at most one step off, where the float
        # forward pass lands within its error of a rounding boundary)
        assert (out.data * 255 - torch.round(out.data * 255)).abs().max() < 1e-4
        assert (out.data - ref).abs().max() <= 0.5 / 255 + 1e-5
        assert torch.equal(AdaCodeCodec(model=model_path).decode(data).data, out.data)
        sizes.append(len(data))
    assert sizes[0] < sizes[2]


def test_bpp_target_picks_largest_m_that_fits(model_path, image):
    codec = AdaCodeCodec(model=model_path)
    pixels = 37 * 53
    bpp = [8 * len(codec.encode(image, Rate(quality=m))) / pixels for m in (1, 2, 3)]
    for target, m in ((bpp[1] + 1e-6, 2), (bpp[2] + 1, 3), (bpp[0] / 2, 1)):
        assert unpack(codec.encode(image, Rate(bpp=target))).header["m"] == m
    assert [r.quality for r in codec.ladder(8)] == [1, 2, 3]
    assert [r.quality for r in codec.ladder(2)] == [1, 3]


def test_gray_accepted_rgba_refused(model_path, image):
    codec = AdaCodeCodec(model=model_path)
    gray = Signal(image.data.mean(0, keepdim=True), "image")
    assert codec.decode(codec.encode(gray, Rate(quality=2))).data.shape == (1, 37, 53)
    rgba = Signal(torch.cat([image.data, torch.ones(1, 37, 53)]), "image")
    with pytest.raises(InputError, match="4 channels"):
        codec.encode(rgba, Rate(quality=1))
    with pytest.raises(InputError, match="1..3"):
        codec.encode(image, Rate(quality=4))


def test_missing_and_mismatched_model(model_path, image, tmp_path):
    with pytest.raises(ModelError, match="needs a trained model"):
        AdaCodeCodec().encode(image, Rate(quality=1))
    with pytest.raises(ModelError, match="not found"):
        AdaCodeCodec(model=tmp_path / "nope.safetensors").encode(image, Rate(quality=1))
    with pytest.raises(ModelError, match="is a folder; give the .safetensors file"):
        AdaCodeCodec(model=tmp_path).encode(image, Rate(quality=1))
    data = AdaCodeCodec(model=model_path).encode(image, Rate(quality=2))
    other = _save(tmp_path / "other.safetensors", 1)
    with pytest.raises(ModelError, match="sha256"):
        AdaCodeCodec(model=other).decode(data)


def _edit(data, header=None, sections=None):
    c = unpack(data)
    c.header.update(header or {})
    c.sections.update(sections or {})
    return pack(c)


@pytest.mark.parametrize(
    "header, match",
    [
        ({"m": 0}, "m must be"),
        ({"m": 2.0}, "m must be"),
        ({"grid": [10, 13]}, "grid"),
        ({"pad": [3, 2]}, "padding"),
        ({"model": "x"}, "model description"),
    ],
)
def test_bad_header_fields(model_path, image, header, match):
    codec = AdaCodeCodec(model=model_path)
    data = codec.encode(image, Rate(quality=2))
    with pytest.raises(BitstreamError, match=match):
        codec.decode(_edit(data, header))


def test_bad_model_fields_and_sections(model_path, image):
    codec = AdaCodeCodec(model=model_path)
    data = codec.encode(image, Rate(quality=2))
    described = dict(unpack(data).header["model"], codebook_size=32)
    with pytest.raises(BitstreamError, match="does not match"):
        codec.decode(_edit(data, {"model": described}))
    # a position keeping one codebook where m = 2
    bits = np.full(140, 0b011)
    bits[5] = 0b001
    with pytest.raises(BitstreamError, match="exactly m=2"):
        codec.decode(_edit(data, sections={"keep": encode_integers(bits)}))
    with pytest.raises(BitstreamError, match="keep masks outside"):
        codec.decode(_edit(data, sections={"keep": encode_integers(np.full(140, 9))}))
    c = unpack(data)
    del c.sections["weights"]
    with pytest.raises(BitstreamError, match="sections"):
        codec.decode(pack(c))
    with pytest.raises(BitstreamError, match="weights outside"):
        codec.decode(_edit(data, sections={"weights": encode_integers(np.full(280, 16))}))
    with pytest.raises(BitstreamError):
        codec.decode(data[:-9])
    c = unpack(data)
    c.codec = "rvqgan"
    with pytest.raises(BitstreamError, match="not 'adacode'"):
        codec.decode(pack(c))


def test_cli_encode_decode(model_path, tmp_path):
    from inrkit.datasets import save

    src = tmp_path / "in.png"
    save(load_sample_image((40, 60, 32, 48)), src)
    enc, dec = tmp_path / "a.inrk", tmp_path / "b.png"
    assert (
        cli_main(
            [
                "encode",
                str(src),
                "-o",
                str(enc),
                "--codec",
                "adacode",
                "--quality",
                "2",
                "--model",
                str(model_path),
            ]
        )
        == 0
    )
    assert cli_main(["decode", str(enc), "-o", str(dec), "--model", str(model_path)]) == 0
    assert dec.is_file()


@pytest.mark.slow
def test_train_then_encode_decode_end_to_end(tmp_path):
    from PIL import Image

    from inrkit.eval.metrics import image_metrics
    from inrkit.inr.train.adacode import main as train_main

    sig = load_sample_image()
    data = tmp_path / "data"
    data.mkdir()
    for i, (top, left) in enumerate([(60, 80), (300, 200), (180, 350), (420, 60)]):
        x = sig.data[:, top : top + 96, left : left + 96]
        Image.fromarray((x.permute(1, 2, 0) * 255).round().byte().numpy()).save(data / f"c{i}.png")
    out = tmp_path / "model.safetensors"
    argv = [
        "--data", str(data), "--out", str(out), "--crop", "32", "--widths", "8,16,16",
        "--codebooks", "3", "--codebook-size", "32", "--code-dim", "4", "--batch-size", "6",
        "--stage1-steps", "150", "--stage2-steps", "150", "--lr", "2e-3",
        "--refresh-every", "25", "--threads", "1", "--no-progress",
    ]  # fmt: skip
    assert train_main(argv) == 0
    untrained = _save(tmp_path / "untrained.safetensors", 0)
    image = load_sample_image((200, 150, 64, 64))
    psnr, sizes = [], []
    for m in (1, 2, 3):
        data_ = AdaCodeCodec(model=out).encode(image, Rate(quality=m))
        sizes.append(len(data_))
        psnr.append(image_metrics(image, AdaCodeCodec(model=out).decode(data_))["psnr-rgb"])
    base = AdaCodeCodec(model=untrained)
    base_psnr = image_metrics(image, base.decode(base.encode(image, Rate(quality=3))))["psnr-rgb"]
    assert sizes[0] < sizes[1] < sizes[2]
    assert min(psnr) > base_psnr + 3, (psnr, base_psnr)
