import numpy as np
import pytest
import soundfile as sf
import torch

from inrkit import InputError
from inrkit.datasets import Signal, load, save


def _snr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    noise = torch.sum((reference - estimate) ** 2).item()
    return 10 * np.log10(torch.sum(reference**2).item() / max(noise, 1e-20))


@pytest.mark.parametrize(
    ("ext", "bit_depth", "subtype"),
    [("wav", 8, "PCM_U8"), ("wav", 16, "PCM_16"), ("wav", 24, "PCM_24"), ("wav", 32, "PCM_32"),
     ("flac", 16, "PCM_16"), ("flac", 24, "PCM_24")],
)
def test_lossless_round_trip_is_exact(tmp_path, make_tone, ext, bit_depth, subtype):
    tone = make_tone(channels=2, rate=16000, bit_depth=bit_depth)
    path = save(tone, tmp_path / f"tone.{ext}")
    assert sf.info(str(path)).subtype == subtype
    back = load(path)
    assert back.modality == "audio" and back.bit_depth == bit_depth and back.sample_rate == 16000
    assert back.data.shape == tone.data.shape
    assert torch.allclose(back.data, tone.data, atol=2.0**-(bit_depth - 1) / 2 + 1e-7)


@pytest.mark.parametrize(("channels", "rate"), [(1, 8000), (2, 44100), (6, 48000), (3, 96000)])
def test_any_channel_count_and_rate(tmp_path, make_tone, channels, rate):
    tone = make_tone(channels=channels, rate=rate, seconds=0.05)
    for ext in ("wav", "flac"):
        back = load(save(tone, tmp_path / f"tone.{ext}"))
        assert back.data.shape == (channels, int(rate * 0.05)) and back.sample_rate == rate
        assert torch.equal(torch.round(back.data * 32768), torch.round(tone.data * 32768))


def test_float_wav_stays_float(tmp_path):
    samples = np.random.default_rng(0).uniform(-0.9, 0.9, (500, 2)).astype(np.float32)
    sf.write(tmp_path / "float.wav", samples, 22050, subtype="FLOAT")
    back = load(tmp_path / "float.wav")
    assert back.bit_depth == 32 and back.meta["subtype"] == "FLOAT"
    assert torch.equal(back.data, torch.from_numpy(samples.T))
    save(back, tmp_path / "again.wav")
    assert sf.info(str(tmp_path / "again.wav")).subtype == "FLOAT"


@pytest.mark.parametrize(("channels", "rate"), [(1, 22050), (2, 44100), (4, 48000)])
def test_ogg_vorbis_is_close(tmp_path, make_tone, channels, rate):
    tone = make_tone(channels=channels, rate=rate, seconds=0.3)
    back = load(save(tone, tmp_path / "tone.ogg"))
    assert back.data.shape == tone.data.shape and back.sample_rate == rate
    assert _snr(tone.data, back.data) > 20


def test_ogg_quality_sets_the_size(tmp_path, make_tone):
    tone = make_tone(channels=2, rate=44100, seconds=0.5)
    small = save(tone, tmp_path / "low.ogg", quality=0).stat().st_size
    large = save(tone, tmp_path / "high.ogg", quality=100).stat().st_size
    assert small < large


@pytest.mark.parametrize(("channels", "rate"), [(1, 16000), (2, 44100)])
def test_mp3_is_close_and_keeps_length(tmp_path, make_tone, channels, rate):
    tone = make_tone(channels=channels, rate=rate, seconds=0.3)
    back = load(save(tone, tmp_path / "tone.mp3", bitrate=128))
    assert back.data.shape == tone.data.shape and back.sample_rate == rate
    assert _snr(tone.data, back.data) > 15


def test_mp3_limits(tmp_path, make_tone):
    with pytest.raises(InputError, match="MP3 holds mono or stereo; found 6 channels"):
        save(make_tone(channels=6, rate=44100), tmp_path / "six.mp3")
    with pytest.raises(InputError, match="found 96000 Hz"):
        save(make_tone(channels=1, rate=96000), tmp_path / "fast.mp3")
    with pytest.raises(InputError, match="bitrate .* applies to .mp3 only"):
        save(make_tone(), tmp_path / "x.wav", bitrate=128)
    assert not list(tmp_path.iterdir())


def test_sample_range(tmp_path, make_tone):
    tone = make_tone(channels=2, rate=16000)
    for ext in ("flac", "mp3"):
        path = save(tone, tmp_path / f"tone.{ext}")
        part = load(path, frames=(1000, 1500))
        assert part.data.shape == (2, 500)
        if ext == "flac":
            assert torch.equal(part.data, load(path).data[:, 1000:1500])
    with pytest.raises(InputError, match="selects no samples; the file has 4000 samples"):
        load(tmp_path / "tone.flac", frames=(5000, 6000))


def test_audio_track_of_a_video(tmp_path, make_tone):
    import av

    tone = make_tone(channels=2, rate=48000, seconds=0.2)
    path = tmp_path / "with_sound.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264rgb", rate=25)
        video.width, video.height, video.pix_fmt = 16, 16, "rgb24"
        audio = container.add_stream("pcm_s16le", rate=48000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(tone.data.numpy(), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        for packet in [*audio.encode(frame), *audio.encode(None)]:
            container.mux(packet)
        for packet in [*video.encode(av.VideoFrame(16, 16, "rgb24")), *video.encode(None)]:
            container.mux(packet)
    assert load(path).modality == "video"
    back = load(path, modality="audio")
    assert back.data.shape == tone.data.shape and back.sample_rate == 48000
    assert torch.allclose(back.data, tone.data, atol=1e-4)


def test_zero_length_audio(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(InputError, match=r"silent\.wav: expected audio samples, found a zero-length recording"):
        load(tmp_path / "silent.wav")


def test_audio_rejects_resize(tmp_path, make_tone):
    path = save(make_tone(), tmp_path / "t.wav")
    with pytest.raises(InputError, match="resize applies to images and video"):
        load(path, resize=10)


def test_signal_modality_must_match_writer(tmp_path, photo):
    from inrkit.datasets.audio import write_audio

    with pytest.raises(InputError, match="expected an audio signal, found a 'image' signal"):
        write_audio(photo, tmp_path / "x.wav")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("ext", "bit_depth"), [("wav", 16), ("flac", 16), ("wav", 8), ("wav", 24), ("flac", 24)])
def test_samples_between_steps_are_rounded_not_truncated(tmp_path, ext, bit_depth):
    # a decoder's float output lands between the file's steps: the file gets the nearest
    step = 2.0 ** -(bit_depth - 1)
    steps = torch.tensor([[0.7, 0.3, -0.3, -0.7, 1.6, -1.6, 2.4]])
    sig = Signal(steps * step, "audio", bit_depth=bit_depth, sample_rate=8000)
    back = load(save(sig, tmp_path / f"x.{ext}"))
    assert torch.equal(torch.round(back.data / step), torch.tensor([[1.0, 0, 0, -1, 2, -2, 2]]))
    assert torch.equal(back.data, sig.quantized().data)


def test_a_folder_that_refuses_files_is_a_write_error_not_an_encoding_error(tmp_path, make_tone, monkeypatch):
    import pathlib

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "touch", refuse)
    with pytest.raises(InputError, match="cannot write") as err:
        save(make_tone(), tmp_path / "x.wav")
    assert "encode" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
