"""Every kind of bad input ends in an InputError naming the file, what was expected and what was found."""

import numpy as np
import pytest
import torch
from PIL import Image

from inrkit import InputError
from inrkit.datasets import Signal, load, save
from inrkit.datasets.image import read_image
from inrkit.datasets.limits import DEFAULT_MAX_PIXELS, max_bytes, max_pixels


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.png: no such file; expected a media file"):
        load(tmp_path / "nope.png")
    with pytest.raises(InputError, match=r"nope\.png: no such file; expected an image"):
        load(tmp_path / "nope.png", modality="image")


def test_folder_where_a_file_was_expected(tmp_path):
    with pytest.raises(InputError, match="is a folder; expected an image"):
        load(tmp_path, modality="image")
    with pytest.raises(InputError, match="is a folder; expected an image"):
        read_image(tmp_path)
    with pytest.raises(InputError, match="expected a video file or a folder of image frames, found an empty folder"):
        load(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").touch()
    with pytest.raises(InputError, match=r"empty\.jpg: is an empty file \(0 bytes\); expected a media file"):
        load(tmp_path / "empty.jpg")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fake.png", "expected a PNG image"),
        ("fake.jpg", "expected a JPG image"),
        ("fake.wav", "expected audio, but libsndfile cannot read it"),
        ("fake.mp3", "expected audio, but ffmpeg cannot read it"),
        ("fake.mp4", "expected a video, but ffmpeg cannot read it"),
        ("fake.dat", r"expected a media file \(image, video or audio\)"),
    ],
)
def test_text_file_posing_as_media(tmp_path, name, expected):
    (tmp_path / name).write_text("hello, this is not media\n")
    with pytest.raises(InputError, match=rf"{name}: {expected}.*found 25 bytes of text starting 'hello, this is n'"):
        load(tmp_path / name)


def test_truncated_png(tmp_path, photo):
    path = save(photo, tmp_path / "photo.png")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match=r"photo\.png: expected a PNG image, but it is damaged or truncated"):
        load(path)


def test_unknown_extension_is_sniffed(tmp_path, photo):
    path = save(photo, tmp_path / "photo.png")
    renamed = path.rename(tmp_path / "photo.data")
    assert load(renamed).data.shape == photo.data.shape


@pytest.mark.parametrize(
    ("array", "found"),
    [
        (np.zeros((4, 5), np.float32), "32-bit floating-point samples"),
        (np.zeros((4, 5), np.int32), "32-bit integer samples"),
    ],
)
def test_unsupported_bit_depth(tmp_path, array, found):
    Image.fromarray(array).save(tmp_path / "deep.tif")
    with pytest.raises(InputError, match=rf"deep\.tif: unsupported bit depth: found {found}; expected 1-, 8- or 16-bit"):
        load(tmp_path / "deep.tif")


def test_pixel_limit_argument_and_environment(tmp_path, photo, monkeypatch):
    path = save(photo, tmp_path / "photo.png")  # 48×32 = 1536 px
    with pytest.raises(InputError, match=r"photo\.png: image of 48×32 = 0\.0 Mpx is over the limit of 0\.0 Mpx"):
        load(path, max_pixels=1000)
    assert load(path, max_pixels=1536).data.shape == photo.data.shape
    monkeypatch.setenv("INRKIT_MAX_PIXELS", "1k")
    assert max_pixels() == 1000
    with pytest.raises(InputError, match="INRKIT_MAX_PIXELS"):
        load(path)
    monkeypatch.delenv("INRKIT_MAX_PIXELS")
    video = save(Signal(photo.data[None].repeat(2, 1, 1, 1), "video"), tmp_path / "clip.mp4")
    monkeypatch.setenv("INRKIT_MAX_PIXELS", "1k")
    with pytest.raises(InputError, match=r"clip\.mp4: image of 48×32"):
        load(video)
    monkeypatch.setenv("INRKIT_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="environment variable INRKIT_MAX_PIXELS: expected a number"):
        load(path)
    monkeypatch.delenv("INRKIT_MAX_PIXELS")
    assert max_pixels() == DEFAULT_MAX_PIXELS and max_bytes("2G") == 2 << 30


def test_decompression_bomb_becomes_input_error(tmp_path, photo, monkeypatch):
    path = save(photo, tmp_path / "photo.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1536 px > 2 × 100: Pillow refuses
    with pytest.raises(InputError, match=r"photo\.png: Pillow refuses to open it as a possible decompression bomb"):
        load(path)


def test_modality_mismatch(tmp_path, photo):
    path = save(photo, tmp_path / "photo.png")
    with pytest.raises(InputError, match=r"photo\.png: expected an audio file, found an image"):
        load(path, modality="audio")
    with pytest.raises(InputError, match="frames applies to video and audio"):
        load(path, frames=(0, 2))
    with pytest.raises(InputError, match="modality: expected one of image, video, audio"):
        load(path, modality="picture")


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, photo, monkeypatch):
    target = save(photo, tmp_path / "photo.png")
    before = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(InputError, match=r"photo\.png: cannot write \(disk full\)"):
        save(photo, target)
    with pytest.raises(InputError, match=r"new\.png: cannot write \(disk full\)"):
        save(photo, tmp_path / "new.png")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_saving_onto_a_folder(tmp_path, photo):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(InputError, match=r"out\.png: is a folder; expected a file name to write to"):
        save(photo, tmp_path / "out.png")


def test_save_creates_missing_parent_folders(tmp_path, photo):
    assert load(save(photo, tmp_path / "a" / "b" / "photo.png")).data.shape == photo.data.shape


@pytest.mark.parametrize(
    ("name", "signal"),
    [
        ("x.png", ((3, 4, 4), "image")),
        ("x.mp4", ((2, 3, 4, 4), "video")),
        ("frames", ((2, 3, 4, 4), "video")),
    ],
)
def test_an_output_the_system_refuses_is_one_input_error(tmp_path, name, signal):
    shape, modality = signal
    signal = Signal(torch.zeros(shape), modality, **({"frame_rate": 25.0} if modality == "video" else {}))
    blocker = tmp_path / "file.txt"  # a file where the output's folder would have to be
    blocker.write_text("mine")
    with pytest.raises(InputError, match=r"file\.txt/" + name + r": cannot write \("):
        save(signal, blocker / name)
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_signal_with_non_finite_values_is_refused(bad):
    data = torch.zeros(3, 4, 4)
    data[1, 2, 3] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        Signal(data, "image")


def test_with_values_checks_the_channel_count(photo):
    assert photo.with_values(torch.zeros(5, 7, 3)).data.shape == (3, 5, 7)  # another grid is fine
    with pytest.raises(InputError, match=r"must be \[H, W, 3\], got shape \(3, 5, 5\)"):
        photo.with_values(torch.zeros(3, 5, 5))


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png", ".tiff"])
def test_animated_and_multi_page_images_are_refused(tmp_path, suffix):
    frames = [Image.new("RGB", (8, 8), (60 * i, 0, 0)) for i in range(3)]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="of 3 frames; inrkit reads still images"):
        load(path)
    frames[1].save(tmp_path / f"still{suffix}")  # a colour frame: a black GIF reads as gray
    assert load(tmp_path / f"still{suffix}").data.shape == (3, 8, 8)
