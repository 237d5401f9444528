import pytest
from PIL import Image

from inrkit import InputError
from inrkit.datasets import list_media


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_kodak_style_images_in_natural_order(tmp_path):
    _touch(tmp_path, "kodim10.png", "kodim2.png", "kodim1.png", "README.txt", ".DS_Store", ".hidden/kodim3.png")
    assert [p.name for p in list_media(tmp_path)] == ["kodim1.png", "kodim2.png", "kodim10.png"]
    assert [p.name for p in list_media(tmp_path, "image")] == ["kodim1.png", "kodim2.png", "kodim10.png"]


def test_uvg_style_videos(tmp_path):
    _touch(tmp_path, "ShakeNDry_1920x1080_120fps_420_8bit_YUV.yuv", "Beauty_1920x1080_120fps_420_8bit_YUV.yuv",
           "Bosphorus.y4m", "Jockey.mp4", "notes.md")
    names = [p.name for p in list_media(tmp_path, "video")]
    assert names == ["Beauty_1920x1080_120fps_420_8bit_YUV.yuv", "Bosphorus.y4m", "Jockey.mp4",
                     "ShakeNDry_1920x1080_120fps_420_8bit_YUV.yuv"]


def test_librispeech_style_nested_audio(tmp_path):
    _touch(tmp_path, "19/198/19-198-0001.flac", "19/198/19-198-0000.flac", "19/198/19-198.trans.txt",
           "19/227/19-227-0000.flac", "103/1240/103-1240-0000.flac")
    found = list_media(tmp_path, "audio")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "19/198/19-198-0000.flac",
        "19/198/19-198-0001.flac",
        "19/227/19-227-0000.flac",
        "103/1240/103-1240-0000.flac",
    ]


def test_frame_folders_count_as_videos(tmp_path):
    for seq in ("seqB", "seqA"):
        (tmp_path / seq).mkdir()
        for i in range(2):
            Image.new("RGB", (4, 4)).save(tmp_path / seq / f"{i}.png")
    _touch(tmp_path, "clip.mp4")
    assert [p.name for p in list_media(tmp_path, "video")] == ["clip.mp4", "seqA", "seqB"]
    assert len(list_media(tmp_path, "image")) == 4


def test_modality_filter_and_single_file(tmp_path):
    _touch(tmp_path, "a.png", "b.wav", "c.mkv")
    assert [p.name for p in list_media(tmp_path)] == ["a.png", "b.wav", "c.mkv"]
    assert [p.name for p in list_media(tmp_path, "audio")] == ["b.wav"]
    assert list_media(tmp_path / "a.png") == [tmp_path / "a.png"]
    with pytest.raises(InputError, match=r"a\.png: expected one of the audio files, found an image file"):
        list_media(tmp_path / "a.png", "audio")


def test_empty_or_mediafree_folder(tmp_path):
    with pytest.raises(InputError, match="expected media files .*, found no files"):
        list_media(tmp_path)
    _touch(tmp_path, "x.txt", "y.txt", "z.csv")
    with pytest.raises(InputError, match=r"expected image files, found 3 other files \(2 \.txt, 1 \.csv\)"):
        list_media(tmp_path, "image")
    with pytest.raises(InputError, match="no such file or folder"):
        list_media(tmp_path / "missing")
