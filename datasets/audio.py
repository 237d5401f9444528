"""Audio: files soundfile or ffmpeg decode → :class:`Signal`; a Signal → WAV, FLAC, Ogg Vorbis or MP3.

Reading gives a ``C×N`` float32 Signal in ``[-1, 1]`` with any channel count and
sample rate. WAV, FLAC, Ogg, AIFF and AU go through soundfile (libsndfile);
MP3 and everything else (m4a, aac, opus, the audio track of a video) through
PyAV (ffmpeg), whose MP3 decoder trims the encoder delay so lengths survive a
round trip. ``frames=(start, stop)`` reads only that range of samples.

``bit_depth`` comes from the stored sample type: ``PCM_U8``/``PCM_S8`` → 8,
``PCM_16`` → 16, ``PCM_24`` → 24, ``PCM_32`` → 32, and ``FLOAT``/``DOUBLE`` →
32 (meaning "as precise as float32", which is what the Signal holds; the subtype
is kept in ``meta["subtype"]`` so WAV files are written back as float). Lossy and
compressed-integer codecs (Vorbis, Opus, MP3, AAC, µ-law, A-law) have no bit
depth of their own; they report 16, what a decoder writes to PCM. Floating-point
samples beyond ±1 are clipped to the Signal's range.

Writing (by extension): ``.wav`` as ``PCM_U8``/``PCM_16``/``PCM_24``/``PCM_32``
by ``bit_depth`` (float if the source was float); ``.flac`` as 8/16/24-bit (FLAC
stops at 24); ``.ogg`` as Vorbis (``quality`` 0–100, default libsndfile's; note that
Vorbis takes 6 channels as 5.1 and low-passes the 6th, LFE); ``.mp3`` with LAME at
``bitrate`` kbps (default 192), mono or stereo at an MP3 sample rate.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch

from inrkit.errors import InputError

from .files import atomic_output, check_input_file, describe_content
from .limits import check_memory
from .signal import Signal
from .video import frame_range

SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au"})
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | {".mp3", ".m4a", ".aac", ".opus", ".wma"}
WRITE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3"})

_SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 32}
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_HINT = "read a shorter range with frames=(start, stop) (--frames)"


def _sample_range(path: Path, frames, total: int | None) -> tuple[int, int | None]:
    if frames is None:
        return 0, None
    start, stop, step = frame_range(frames)
    if step != 1:
        raise InputError(f"{path}: frames for audio is a sample range (start, stop) without a step, got {frames!r}")
    if total is not None and start >= total:
        raise InputError(f"{path}: frames={frames!r} selects no samples; the file has {total} samples")
    return start, stop


def _finite(path: Path, samples: torch.Tensor) -> torch.Tensor:
    """``samples`` unless some are NaN or infinite (clipping to ±1 would hide an infinity)."""
    if not torch.isfinite(samples).all():
        raise InputError(f"{path}: expected finite audio samples, found NaN or infinite values")
    return samples


def _read_soundfile(path: Path, frames, max_bytes) -> Signal:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise InputError(f"{path}: expected audio, but libsndfile cannot read it; found {describe_content(path)}") from err
    if info.frames == 0:
        raise InputError(f"{path}: expected audio samples, found a zero-length recording")
    start, stop = _sample_range(path, frames, info.frames)
    count = (info.frames if stop is None else min(stop, info.frames)) - start
    check_memory(path, (info.channels, count), max_bytes, hint=_HINT)
    try:
        samples, rate = sf.read(str(path), start=start, stop=start + count, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise InputError(f"{path}: expected decodable audio, but it is damaged ({err})") from err
    if samples.shape[0] == 0:
        raise InputError(f"{path}: expected audio samples, found none in the requested range")
    data = _finite(path, torch.from_numpy(np.ascontiguousarray(samples.T))).clamp_(-1.0, 1.0)
    meta = {"format": info.format, "subtype": info.subtype}
    bits = _SUBTYPE_BITS.get(info.subtype, 16)
    return Signal(data, "audio", bit_depth=bits, sample_rate=float(rate), source=str(path), meta=meta)


def _read_pyav(path: Path, frames, max_bytes) -> Signal:
    start, stop = _sample_range(path, frames, None)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, ValueError) as err:
        raise InputError(f"{path}: expected audio, but ffmpeg cannot read it; found {describe_content(path)}") from err
    with container:
        if not container.streams.audio:
            kinds = ", ".join(s.type for s in container.streams) or "no streams"
            raise InputError(f"{path}: expected an audio stream, found {kinds}")
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        chunks, decoded = [], 0
        try:
            for frame in container.decode(stream):
                for chunk in resampler.resample(frame):
                    array = chunk.to_ndarray()
                    lo, hi = max(start - decoded, 0), array.shape[1] if stop is None else min(array.shape[1], stop - decoded)
                    decoded += array.shape[1]
                    if hi > lo:
                        chunks.append(array[:, lo:hi])
                        check_memory(path, (channels, sum(c.shape[1] for c in chunks)), max_bytes, hint=_HINT)
                if stop is not None and decoded >= stop:
                    break
        except av.FFmpegError as err:
            raise InputError(f"{path}: expected decodable audio, but it is damaged after {decoded} samples ({err})") from err
        codec = stream.codec_context.name
    if not chunks:
        if decoded == 0:
            raise InputError(f"{path}: expected audio samples, found a zero-length recording")
        raise InputError(f"{path}: frames={frames!r} selects no samples; the file has {decoded} samples")
    data = _finite(path, torch.from_numpy(np.concatenate(chunks, axis=1))).clamp_(-1.0, 1.0)
    meta = {"format": container.format.name, "codec": codec}
    return Signal(data, "audio", bit_depth=16, sample_rate=float(rate), source=str(path), meta=meta)


def read_audio(path, *, frames=None, max_bytes=None) -> Signal:
    """Decode an audio file (or a video's audio track) to a ``C×N`` :class:`Signal` in ``[-1, 1]``."""
    path = check_input_file(path, "an audio file")
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        return _read_soundfile(path, frames, max_bytes)
    return _read_pyav(path, frames, max_bytes)


def _subtype(signal: Signal, fmt: str) -> str:
    bits = signal.bit_depth
    if fmt == "WAV":
        if signal.meta.get("subtype") in ("FLOAT", "DOUBLE"):
            return "FLOAT"
        return "PCM_U8" if bits <= 8 else "PCM_16" if bits <= 16 else "PCM_24" if bits <= 24 else "PCM_32"
    return "PCM_S8" if bits <= 8 else "PCM_16" if bits <= 16 else "PCM_24"


def _check_mp3(signal: Signal, path: Path) -> None:
    channels, rate = signal.channels, signal.sample_rate
    if channels not in (1, 2):
        raise InputError(f"{path}: MP3 holds mono or stereo; found {channels} channels (use .wav, .flac or .ogg)")
    if rate not in _MP3_RATES:
        raise InputError(f"{path}: MP3 sample rates are {', '.join(map(str, _MP3_RATES))} Hz; found {rate:g} Hz")


def _write_mp3(signal: Signal, path: Path, bitrate: int) -> None:
    rate = int(signal.sample_rate)
    layout = "mono" if signal.channels == 1 else "stereo"
    samples = np.ascontiguousarray(signal.data.clamp(-1, 1).numpy())
    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout=layout)
        stream.bit_rate = bitrate * 1000
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_audio(signal: Signal, path, *, quality: int | None = None, bitrate: int | None = None) -> Path:
    """Write an audio Signal to ``path`` (``.wav``, ``.flac``, ``.ogg`` or ``.mp3``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if signal.modality != "audio":
        raise InputError(f"{path}: expected an audio signal, found a {signal.modality!r} signal")
    if suffix not in WRITE_EXTENSIONS:
        raise InputError(f"{path}: cannot write audio as {suffix or 'a file without extension'!r}; expected one of "
                         f"{', '.join(sorted(WRITE_EXTENSIONS))}")
    if quality is not None and (suffix != ".ogg" or not 0 <= quality <= 100):
        raise InputError(f"{path}: quality (0–100) applies to .ogg only, got {quality!r}")
    if bitrate is not None and (suffix != ".mp3" or not 8 <= bitrate <= 320):
        raise InputError(f"{path}: bitrate (8–320 kbps) applies to .mp3 only, got {bitrate!r}")
    if suffix == ".mp3":
        _check_mp3(signal, path)
    samples = signal.data.clamp(-1, 1).t().contiguous().numpy()
    rate = int(round(signal.sample_rate))
    with atomic_output(path) as temp:
        temp.touch()  # a folder that refuses files fails here, as an OS error, not in the encoder
        try:
            if suffix == ".mp3":
                _write_mp3(signal, temp, bitrate or 192)
            elif suffix == ".ogg":
                level = None if quality is None else 1.0 - quality / 100.0
                sf.write(temp, samples, rate, format="OGG", subtype="VORBIS", compression_level=level)
            else:
                fmt = suffix.lstrip(".").upper()
                subtype = _subtype(signal, fmt)
                data = samples if subtype == "FLOAT" else _pcm_words(signal, subtype)
                sf.write(temp, data, rate, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, av.FFmpegError, RuntimeError, ValueError) as err:
            raise InputError(f"{path}: cannot encode {signal.channels} channels at {rate} Hz as {suffix} ({err})") from err
    return path


def _pcm_words(signal: Signal, subtype: str) -> np.ndarray:
    """Samples rounded to the file's bit depth, as int32 words whose top bits are the
    sample: libsndfile stores the top 8/16/24 bits of an int32 exactly, where from
    floats it truncates for PCM WAV (and rounds for FLAC)."""
    bits = _SUBTYPE_BITS[subtype]
    full = 1 << (bits - 1)
    words = torch.round(signal.data.double().clamp(-1, 1) * full).clamp(-full, full - 1)
    return (words.to(torch.int64) << (32 - bits)).to(torch.int32).t().contiguous().numpy()
