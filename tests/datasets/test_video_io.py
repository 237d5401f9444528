import numpy as np
import pytest
import torch
from PIL import Image

from inrkit import InputError
from inrkit.datasets import Signal, load, save


@pytest.fixture(scope="module")
def video(make_clip) -> Signal:
    return make_clip(frames=4, height=32, width=48, frame_rate=24.0)


@pytest.mark.parametrize("ext", ["mp4", "mkv", "mov", "avi"])
def test_lossless_h264_round_trip_is_exact(tmp_path, video, ext):
    back = load(save(video, tmp_path / f"clip.{ext}"))
    assert back.modality == "video" and back.data.shape == (4, 3, 32, 48)
    assert back.frame_rate == pytest.approx(24.0)
    assert torch.equal(torch.round(back.data * 255), torch.round(video.data * 255))


def test_crf_h264_is_lossy_but_close(tmp_path, video, psnr):
    lossless = save(video, tmp_path / "lossless.mp4").stat().st_size
    lossy_path = save(video, tmp_path / "lossy.mp4", crf=28)
    back = load(lossy_path)
    assert back.data.shape == video.data.shape
    assert 25 < psnr(back.data, video.data) < 60
    assert lossy_path.stat().st_size < lossless


def test_y4m_round_trip_is_close(tmp_path, video, psnr):
    back = load(save(video, tmp_path / "clip.y4m"))
    assert back.data.shape == video.data.shape and back.frame_rate == pytest.approx(24.0)
    assert psnr(back.data, video.data) > 42  # 4:4:4 YUV rounding only


def test_gray_y4m_is_exact(tmp_path, make_clip):
    gray = make_clip(frames=2, channels=1, height=16, width=24)
    back = load(save(gray, tmp_path / "gray.y4m"))
    assert back.channels == 1 and torch.equal(torch.round(back.data * 255), torch.round(gray.data * 255))


@pytest.mark.parametrize(("channels", "bit_depth"), [(3, 8), (1, 16), (4, 16)])
def test_png_folder_round_trip_is_exact(tmp_path, make_clip, channels, bit_depth):
    clip = make_clip(frames=3, channels=channels, height=10, width=14, bit_depth=bit_depth)
    folder = save(clip, tmp_path / "frames")
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    back = load(folder)
    assert back.bit_depth == bit_depth and back.channels == channels
    peak = (1 << bit_depth) - 1
    assert torch.equal(torch.round(back.data * peak), torch.round(clip.data * peak))
    save(clip, folder)  # a folder of our own frames may be replaced


def test_png_folder_refuses_to_clobber_other_files(tmp_path, video):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="already holds other files"):
        save(video, tmp_path / "frames")
    assert (tmp_path / "frames" / "notes.txt").read_text() == "keep me"


def test_frame_range_step_and_resize(tmp_path, make_clip):
    clip = make_clip(frames=8, height=32, width=48)
    path = save(clip, tmp_path / "clip.mp4")
    part = load(path, frames=(2, 5))
    assert torch.equal(torch.round(part.data * 255), torch.round(clip.data[2:5] * 255))
    assert part.meta["frames"] == (2, 5, 1)
    stepped = load(path, frames=slice(1, None, 3))
    assert torch.equal(torch.round(stepped.data * 255), torch.round(clip.data[1::3] * 255))
    assert stepped.frame_rate == pytest.approx(24.0 / 3)
    assert load(path, frames="6:").data.shape[0] == 2
    assert load(path, frames=3).data.shape[0] == 3
    small = load(path, frames=(0, 2), resize=24)
    assert small.data.shape == (2, 3, 16, 24)
    assert load(path, resize=(8, 8)).data.shape == (8, 3, 8, 8)
    assert load(path, frames="0:1", resize="12x16").data.shape == (1, 3, 12, 16)


def test_frame_range_beyond_the_end(tmp_path, video):
    path = save(video, tmp_path / "clip.mp4")
    with pytest.raises(InputError, match=r"selects no frames; the video has 4 frames"):
        load(path, frames=(10, 20))
    with pytest.raises(InputError, match="0 ≤ start < stop"):
        load(path, frames=(3, 1))
    with pytest.raises(InputError, match="reaches past the end; the video has 4 frames"):
        load(path, frames=(2, 9))  # was silently 2 frames
    assert load(path, frames=(2, 4)).data.shape[0] == 2 and load(path, frames="2:").data.shape[0] == 2
    save(video, tmp_path / "frames")
    with pytest.raises(InputError, match="reaches past the end; the folder has 4 frames"):
        load(tmp_path / "frames", frames=(1, 5))


def test_memory_limit_suggests_frames_and_resize(tmp_path, video, monkeypatch):
    path = save(video, tmp_path / "clip.mp4")
    with pytest.raises(InputError, match=r"clip\.mp4: decoding needs .*--frames.*--resize"):
        load(path, max_bytes=4 * 3 * 32 * 48 * 2)  # room for two frames
    assert load(path, frames=(0, 2), max_bytes=4 * 3 * 32 * 48 * 2).data.shape[0] == 2
    monkeypatch.setenv("INRKIT_MAX_BYTES", "10K")
    with pytest.raises(InputError, match="limit of 10.0 KiB"):
        load(path)


def test_frame_folder_reads_natural_order(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in (1, 2, 10):
        Image.new("L", (6, 4), i * 10).save(folder / f"f{i}.png")
    (folder / "readme.txt").write_text("not a frame")
    back = load(folder)
    assert back.data.shape == (3, 1, 4, 6)
    assert [round(v * 255) for v in back.data[:, 0, 0, 0].tolist()] == [10, 20, 100]


def test_frame_folder_with_mismatched_frame(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    Image.new("RGB", (6, 4)).save(folder / "a.png")
    Image.new("RGB", (8, 4)).save(folder / "b.png")
    with pytest.raises(InputError, match=r"b\.png: expected a 6×4 frame .* found 8×4"):
        load(folder)


def test_raw_yuv_geometry_from_uvg_style_name(tmp_path):
    width, height, frames = 8, 6, 3
    rng = np.random.default_rng(0)
    y = rng.integers(16, 235, (frames, height, width), dtype=np.uint8)
    uv = np.full((frames, 2, height // 2, width // 2), 128, np.uint8)
    raw = b"".join(y[t].tobytes() + uv[t].tobytes() for t in range(frames))
    path = tmp_path / f"Test_{width}x{height}_50fps_420_8bit_YUV.yuv"
    path.write_bytes(raw)
    back = load(path)
    assert back.data.shape == (frames, 3, height, width) and back.frame_rate == pytest.approx(50)
    # neutral chroma: R = G = B = (Y − 16) · 255/219 (BT.601 limited range)
    expected = torch.from_numpy((y.astype(np.float32) - 16) / 219)
    assert torch.allclose(back.data[:, 1], expected, atol=2 / 255)
    with pytest.raises(InputError, match="must give the frame size"):
        (tmp_path / "nosize.yuv").write_bytes(raw)
        load(tmp_path / "nosize.yuv")


def test_ten_bit_raw_yuv_keeps_its_bit_depth(tmp_path):
    width, height, frames = 8, 4, 2
    luma = np.full((height, width), 64 + 438, "<u2")  # 10-bit limited range, half way
    chroma = np.full((2, height // 2, width // 2), 512, "<u2")
    path = tmp_path / f"Deep_{width}x{height}_30fps_420_10bit_YUV.yuv"
    path.write_bytes((luma.tobytes() + chroma.tobytes()) * frames)
    back = load(path)
    assert back.bit_depth == 10 and back.data.shape == (frames, 3, height, width)
    assert torch.allclose(back.data, torch.full_like(back.data, 0.5), atol=2 / 1023)


def test_zero_frame_video(tmp_path):
    path = tmp_path / "empty.y4m"
    path.write_bytes(b"YUV4MPEG2 W16 H16 F25:1 Ip A1:1 C420jpeg\n")  # a header and no frame
    with pytest.raises(InputError, match=r"empty\.y4m: expected at least one video frame, found 0"):
        load(path)


def test_video_write_rules(tmp_path, video, photo):
    with pytest.raises(InputError, match="cannot write video as '.gif'"):
        save(video, tmp_path / "clip.gif")
    with pytest.raises(InputError, match="crf must be an integer from 0 to 51"):
        save(video, tmp_path / "clip.mp4", crf=80)
    with pytest.raises(InputError, match="quality does not apply to video"):
        save(video, tmp_path / "clip.mp4", quality=90)
    with pytest.raises(InputError, match="expected an image signal"):
        from inrkit.datasets.image import write_image

        write_image(video, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())
