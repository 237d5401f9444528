import numpy as np
import pytest
import torch
from PIL import Image

from inrkit import InputError
from inrkit.datasets import Signal, load, load_sample_image, sample_image_path, save


def _image(channels: int, bit_depth: int = 8, height: int = 12, width: int = 20) -> Signal:
    data = torch.rand(channels, height, width)
    return Signal(data, "image", bit_depth=bit_depth).quantized()


@pytest.mark.parametrize("ext", ["png", "tif", "bmp", "webp"])
def test_lossless_round_trip_is_exact(tmp_path, photo, ext):
    path = save(photo, tmp_path / f"photo.{ext}")
    back = load(path)
    assert back.modality == "image" and back.bit_depth == 8
    assert back.data.shape == photo.data.shape
    assert torch.equal(torch.round(back.data * 255), torch.round(photo.data * 255))


@pytest.mark.parametrize(("ext", "quality", "min_psnr"), [("jpg", None, 35), ("jpg", 50, 27), ("webp", 80, 27)])
def test_lossy_round_trip_within_psnr(tmp_path, photo, psnr, ext, quality, min_psnr):
    back = load(save(photo, tmp_path / f"photo.{ext}", quality=quality))
    assert back.data.shape == photo.data.shape
    assert min_psnr < psnr(back.data, photo.data) < 60


def test_lower_quality_gives_smaller_jpeg(tmp_path, photo):
    small = save(photo, tmp_path / "q20.jpg", quality=20).stat().st_size
    large = save(photo, tmp_path / "q95.jpg", quality=95).stat().st_size
    assert small < large


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_sixteen_bit_round_trip_is_exact(tmp_path, ext, channels):
    image = _image(channels, bit_depth=16)
    back = load(save(image, tmp_path / f"deep.{ext}"))
    assert back.bit_depth == 16 and back.channels == channels
    assert torch.equal(torch.round(back.data * 65535), torch.round(image.data * 65535))


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_eight_bit_channels_are_kept(tmp_path, ext, channels):
    image = _image(channels)
    back = load(save(image, tmp_path / f"img.{ext}"))
    assert back.channels == channels and back.bit_depth == 8
    assert torch.allclose(back.data, image.data, atol=1e-6)


@pytest.mark.parametrize(
    ("ext", "channels", "expected"),
    [("jpg", 2, 1), ("jpg", 4, 3), ("bmp", 2, 1), ("bmp", 4, 3), ("webp", 1, 3), ("webp", 2, 4), ("jpg", 1, 1)],
)
def test_formats_without_the_layout_follow_the_documented_rule(tmp_path, ext, channels, expected):
    image = _image(channels, bit_depth=16)
    back = load(save(image, tmp_path / f"img.{ext}"))
    assert back.channels == expected and back.bit_depth == 8
    if ext == "webp" and channels == 1:  # gray replicated into R, G and B
        assert torch.allclose(back.data, image.data.expand(3, -1, -1), atol=1 / 255)


def test_sixteen_bit_gray_keeps_values_pillow_writes(tmp_path):
    values = (np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 271).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    back = load(tmp_path / "g16.png")
    assert back.bit_depth == 16 and back.channels == 1
    assert np.array_equal(np.round(back.data[0].numpy() * 65535).astype(np.uint16), values)


def test_palette_becomes_rgb_or_rgba_and_gray_palette_stays_gray(tmp_path):
    rgb = Image.fromarray((np.random.default_rng(0).random((10, 14, 3)) * 255).astype(np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "p.png")
    back = load(tmp_path / "p.png")
    assert back.channels == 3
    assert torch.allclose(back.data, torch.from_numpy(np.asarray(palette.convert("RGB")) / 255.0).permute(2, 0, 1).float())

    palette.save(tmp_path / "pt.png", transparency=0)
    assert load(tmp_path / "pt.png").channels == 4

    gray = Image.fromarray((np.arange(140).reshape(10, 14) % 256).astype(np.uint8)).convert("P")
    gray.putpalette([v for i in range(256) for v in (i, i, i)])
    gray.save(tmp_path / "pg.gif")
    assert load(tmp_path / "pg.gif").channels == 1


def test_one_bit_becomes_eight_bit_gray(tmp_path):
    bits = (np.indices((9, 11)).sum(0) % 2).astype(bool)
    Image.fromarray(bits).save(tmp_path / "bw.png")
    back = load(tmp_path / "bw.png")
    assert back.channels == 1 and back.bit_depth == 8
    assert torch.equal(back.data[0] > 0.5, torch.from_numpy(bits))
    assert set(back.data.unique().tolist()) == {0.0, 1.0}


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    back = load(tmp_path / "cmyk.jpg")
    assert back.channels == 3
    red = back.data.mean(dim=(1, 2))
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1


def test_exif_orientation_is_applied(tmp_path):
    tall = Image.new("RGB", (6, 10), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    tall.save(tmp_path / "rotated.jpg", exif=exif)
    assert load(tmp_path / "rotated.jpg").data.shape == (3, 6, 10)


def test_resize_exact_and_max_side(tmp_path, photo):
    path = save(photo, tmp_path / "photo.png")
    assert load(path, resize=(16, 20)).data.shape == (3, 16, 20)
    assert load(path, resize=24).data.shape == (3, 16, 24)
    assert load(path, resize=1000).data.shape == photo.data.shape  # never enlarged
    small = load(path, resize=(16, 24))
    assert 0 <= small.data.min() and small.data.max() <= 1
    assert torch.allclose(small.data.mean(), photo.data.mean(), atol=0.02)


def test_sample_image_and_crop():
    full = load(sample_image_path())
    assert full.data.shape == (3, 600, 512)
    crop = load_sample_image((5, 7, 16, 24))
    assert torch.equal(crop.data, full.data[:, 5:21, 7:31])
    with pytest.raises(InputError, match="inside the 600×512 sample image"):
        load_sample_image((590, 0, 20, 20))


def test_quality_rules(tmp_path, photo):
    with pytest.raises(InputError, match="JPEG and WebP only"):
        save(photo, tmp_path / "x.png", quality=90)
    with pytest.raises(InputError, match="from 1 to 100"):
        save(photo, tmp_path / "x.jpg", quality=0)
    with pytest.raises(InputError, match=r"cannot write images as '\.xyz'"):
        save(photo, tmp_path / "x.xyz")
    assert not list(tmp_path.iterdir())
