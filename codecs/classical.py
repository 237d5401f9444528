"""Classical codecs behind the :class:`~inrkit.codecs.Codec` interface, for rate–distortion baselines.

Every codec returns the real file its library writes, so the rate is measured
from ``len(bytes)`` like any other codec's, and decodes it with the same
library. Nothing is stored beside the native stream: size, frame rate and
sample rate come back from the stream itself.

Images (Pillow, 8 bits per channel, gray or RGB):

* ``jpeg`` — libjpeg(-turbo) baseline, 4:2:0 chroma subsampling (libjpeg's
  default), standard quantization tables scaled by ``quality`` 1…100,
  optimized Huffman tables.
* ``webp`` — libwebp lossy, ``quality`` 1…100, ``method`` 6 (slowest, best).
* ``avif`` — libavif (AV1 intra) through Pillow, ``quality`` 1…100, 4:4:4,
  speed 6 (Pillow's default).
* ``jpeg2000`` — OpenJPEG, one quality layer with a target PSNR (OpenJPEG's
  "fixed quality" mode); the ladder is 20…60 dB in 0.5-dB steps, irreversible
  9/7 wavelet with the colour transform.
* ``hevc`` — HEVC intra, the codec inside BPG (Bellard's "Better Portable
  Graphics"; CompressAI's ``bpg_444_x265_ycbcr`` anchor): libx265 through the
  ffmpeg binary, one frame, 4:4:4 YCbCr (BT.601), constant QP 51…0, preset
  medium. The rate counts the raw HEVC Annex-B stream (``-f hevc``) with
  x265's version SEI switched off (``info=0``), i.e. BPG's payload without
  its small picture header.

Video (ffmpeg binary from imageio-ffmpeg; raw RGB frames piped in, converted
to 4:2:0 YCbCr (BT.601); MP4 container, whose bytes all count):

* ``x264`` — libx264, CRF 51…0, preset medium.
* ``x265`` — libx265, CRF 51…0, preset medium.
* ``av1`` — libsvtav1 (SVT-AV1), CRF 63…1, the encoder's default preset.

Audio (ffmpeg; float samples piped in), bitrate ladders in kbps:

* ``mp3`` — libmp3lame CBR, MPEG-1 Layer III bitrates 32…320 kbps (32, 44.1,
  48 kHz input), with the LAME/Xing tag that lets the decoder drop the
  encoder delay and padding.
* ``opus`` — libopus (VBR) in Ogg, 6…256 kbps. Opus runs at 8/12/16/24/48 kHz;
  other rates are resampled to 48 kHz (SoX resampler, 28-bit precision) and
  the source rate and length are kept in Ogg comments so decoding resamples
  back to the same samples.
* ``aac`` — ffmpeg's native AAC-LC encoder in an MP4 (.m4a) container, whose
  edit list carries the priming delay, 16…320 kbps.

Rates: ``Rate(quality=k)`` picks the k-th setting of the codec's ladder
(1 = smallest file); ``Rate(bpp=…)`` / ``Rate(kbps=…)`` bisect over that
ladder on the measured size and keep the largest setting whose rate does not
exceed the target (the smallest setting when even that one is over). The
classical codecs ignore :class:`~inrkit.codecs.EncodeOptions`.
"""

from __future__ import annotations

import functools
import io
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.registry import register_codec

from .base import Codec, EncodeOptions, Rate


class ClassicalCodec(Codec):
    """A codec whose quality is one of ``levels`` native settings, smallest file first."""

    levels: ClassVar[tuple] = ()
    #: quality indices (1-based, inclusive) that :meth:`ladder` spreads its points over
    ladder_range: ClassVar[tuple[int, int]] = (1, 1)

    # -- rate control ------------------------------------------------------------
    def ladder(self, n: int) -> list[Rate]:
        if n < 1:
            raise InputError(f"the number of rate points must be at least 1, got {n}")
        lo, hi = self.ladder_range
        if n == 1:
            return [Rate(quality=round((lo + hi) / 2))]
        picks = sorted({round(lo + (hi - lo) * i / (n - 1)) for i in range(n)})
        return [Rate(quality=q) for q in picks]

    def setting(self, quality: int):
        """The native setting (quality, QP, CRF, dB, kbps) for a 1-based quality index."""
        if not 1 <= quality <= len(self.levels):
            raise InputError(
                f"codec {self.name!r} takes quality 1…{len(self.levels)}, got {quality}"
            )
        return self.levels[quality - 1]

    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        self.check(signal, rate)
        self._check_signal(signal)
        if rate.kind == "quality":
            return self._encode(signal, self.setting(int(rate.value)))
        return self.find_quality(signal, rate.value)[1]

    def find_quality(self, signal: Signal, target: float) -> tuple[int, bytes]:
        """The largest quality whose measured rate is at most ``target`` (bpp or kbps),
        by bisection on the ladder, and its bytes; the smallest quality if none fits."""
        self._check_signal(signal)
        cache: dict[int, bytes] = {}

        def encoded(q: int) -> bytes:
            if q not in cache:
                cache[q] = self._encode(signal, self.setting(q))
            return cache[q]

        lo, hi = 1, len(self.levels)
        if self.measured_rate(signal, encoded(lo)) > target:
            return lo, encoded(lo)
        while lo < hi:  # invariant: rate(lo) <= target
            mid = (lo + hi + 1) // 2
            if self.measured_rate(signal, encoded(mid)) <= target:
                lo = mid
            else:
                hi = mid - 1
        return lo, encoded(lo)

    # -- to implement --------------------------------------------------------------
    def _check_signal(self, signal: Signal) -> None:
        pass

    def _encode(self, signal: Signal, setting) -> bytes:
        raise NotImplementedError


# -- helpers -------------------------------------------------------------------------
def _image_u8(signal: Signal, codec: str) -> np.ndarray:
    """H×W (gray) or H×W×3 uint8 array of an image Signal."""
    if signal.channels not in (1, 3):
        raise InputError(
            f"codec {codec!r} codes gray or RGB images; got {signal.channels} channels "
            f"(from {signal.source or 'an in-memory signal'}); drop the alpha channel first"
        )
    u8 = torch.round(signal.data.clamp(0, 1) * 255).to(torch.uint8)
    return u8[0].numpy() if signal.channels == 1 else u8.permute(1, 2, 0).contiguous().numpy()


def _image_signal(array: np.ndarray, source: str) -> Signal:
    data = torch.from_numpy(np.array(array)).float() / 255.0
    data = data.unsqueeze(0) if data.ndim == 2 else data.permute(2, 0, 1)
    return Signal(data.contiguous(), "image", bit_depth=8, source=source)


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def _encoder_list() -> str:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True)
    return out.stdout


def has_encoder(name: str) -> bool:
    """Whether the ffmpeg binary was built with encoder ``name`` (e.g. ``libx265``)."""
    return any(line.split()[1:2] == [name] for line in _encoder_list().splitlines())


def _ffmpeg(args: list[str], stdin: bytes | None, what: str, error=InputError) -> bytes:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        tail = " | ".join(message[-3:]) or f"exit status {proc.returncode}"
        raise error(f"ffmpeg could not {what}: {tail}")
    return proc.stdout


def _require(encoder: str, codec: str) -> None:
    if not has_encoder(encoder):
        raise InputError(f"codec {codec!r} needs ffmpeg's {encoder} encoder, which {ffmpeg_exe()} lacks")


def _probe(data: bytes, codec: str):
    """PyAV container of encoded bytes, for the stream parameters (size, rates, tags)."""
    import av

    try:
        return av.open(io.BytesIO(data), mode="r")
    except Exception as exc:  # PyAV raises its own error types per failure
        raise BitstreamError(f"not a valid {codec} stream: {exc}") from None


# -- images through Pillow -----------------------------------------------------------
class _PillowCodec(ClassicalCodec):
    modalities = ("image",)
    rate_kinds = ("bpp", "quality")
    pil_format: ClassVar[str] = ""
    pil_feature: ClassVar[str] = ""
    gray_ok: ClassVar[bool] = True

    def _check_signal(self, signal: Signal) -> None:
        from PIL import features

        if self.pil_feature and not features.check(self.pil_feature):
            raise InputError(f"codec {self.name!r}: this Pillow was built without {self.pil_feature}")

    def _save_options(self, setting) -> dict:
        raise NotImplementedError

    def _encode(self, signal: Signal, setting) -> bytes:
        from PIL import Image

        array = _image_u8(signal, self.name)
        image = Image.fromarray(array)
        if image.mode == "L" and not self.gray_ok:
            image = image.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format=self.pil_format, **self._save_options(setting))
        return buffer.getvalue()

    def decode(self, data: bytes, **options) -> Signal:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data), formats=[self.pil_format]) as image:
                image.load()
                if image.mode not in ("L", "RGB"):
                    image = image.convert("RGB")
                array = np.asarray(image)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise BitstreamError(f"not a valid {self.name} file: {exc}") from None
        return _image_signal(array, source=f"{self.name} stream")


@register_codec("jpeg")
class JPEG(_PillowCodec):
    name = "jpeg"
    pil_format = "JPEG"
    levels = tuple(range(1, 101))
    ladder_range = (10, 95)

    def _save_options(self, setting) -> dict:
        return {"quality": setting, "subsampling": "4:2:0", "optimize": True}


@register_codec("webp")
class WebP(_PillowCodec):
    name = "webp"
    pil_format = "WEBP"
    pil_feature = "webp"
    gray_ok = False  # libwebp codes RGB(A) only; a gray image goes in as RGB
    levels = tuple(range(1, 101))
    ladder_range = (10, 95)

    def _save_options(self, setting) -> dict:
        return {"quality": setting, "method": 6, "lossless": False}


@register_codec("avif")
class AVIF(_PillowCodec):
    name = "avif"
    pil_format = "AVIF"
    pil_feature = "avif"
    gray_ok = False
    levels = tuple(range(1, 101))
    ladder_range = (10, 90)

    def _save_options(self, setting) -> dict:
        return {"quality": setting, "subsampling": "4:4:4", "speed": 6}


@register_codec("jpeg2000")
class JPEG2000(_PillowCodec):
    name = "jpeg2000"
    pil_format = "JPEG2000"
    pil_feature = "jpg_2000"
    levels = tuple(20.0 + 0.5 * k for k in range(81))  # target PSNR of the single layer, dB
    ladder_range = (13, 49)  # 26…44 dB

    def _save_options(self, setting) -> dict:
        return {"quality_mode": "dB", "quality_layers": [setting], "irreversible": True,
                "no_jp2": True}


# -- HEVC intra through ffmpeg ----------------------------------------------------------
@register_codec("hevc")
class HEVCIntra(ClassicalCodec):
    name = "hevc"
    modalities = ("image",)
    rate_kinds = ("bpp", "quality")
    levels = tuple(range(51, -1, -1))  # QP, smallest file first
    ladder_range = (52 - 45, 52 - 20)  # QP 45…20

    def _check_signal(self, signal: Signal) -> None:
        _require("libx265", self.name)

    def _encode(self, signal: Signal, qp) -> bytes:
        array = _image_u8(signal, self.name)
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        height, width = array.shape[:2]
        with tempfile.TemporaryDirectory(prefix="inrkit-hevc-") as tmp:
            out = Path(tmp) / "image.hevc"
            _ffmpeg(
                ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-i", "pipe:0",
                 "-frames:v", "1", "-c:v", "libx265", "-preset", "medium", "-pix_fmt", "yuv444p",
                 "-x265-params", f"qp={qp}:keyint=1:info=0:log-level=error", "-f", "hevc", str(out)],
                array.tobytes(), f"encode HEVC at QP {qp}",
            )
            return out.read_bytes()

    def decode(self, data: bytes, **options) -> Signal:
        frames, _ = _decode_video(data, "hevc", suffix=".hevc", input_format="hevc")
        return _image_signal(frames[0], source="hevc stream")


# -- video through ffmpeg ----------------------------------------------------------------
def _decode_video(data: bytes, codec: str, suffix: str, input_format: str | None = None):
    """Frames (list of H×W×3 uint8) and frame rate of an encoded video."""
    with _probe(data, codec) as container:
        if not container.streams.video:
            raise BitstreamError(f"{codec} file has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        fps = stream.average_rate or stream.guessed_rate
    if not width or not height:
        raise BitstreamError(f"{codec} stream has no picture size")
    with tempfile.TemporaryDirectory(prefix="inrkit-dec-") as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        args = (["-f", input_format] if input_format else []) + [
            "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        raw = _ffmpeg(args, None, f"decode the {codec} stream", error=BitstreamError)
    frame_bytes = width * height * 3
    if len(raw) == 0 or len(raw) % frame_bytes:
        raise BitstreamError(f"{codec} stream decoded to {len(raw)} bytes, not whole {width}×{height} frames")
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return frames, (float(fps) if fps else None)


class _FFmpegVideoCodec(ClassicalCodec):
    """Video through an ffmpeg encoder, in YCbCr 4:2:0 (``chroma="420"``, what players
    expect) or 4:4:4 (``chroma="444"``: full-resolution chroma, where the encoder has it)."""

    modalities = ("video",)
    rate_kinds = ("bpp", "quality")
    encoder: ClassVar[str] = ""
    chroma_formats: ClassVar[tuple[str, ...]] = ("420", "444")

    def __init__(self, chroma: str = "420") -> None:
        if chroma not in self.chroma_formats:
            raise InputError(f"codec {self.name!r} codes chroma as {' or '.join(self.chroma_formats)}, "
                             f"not {chroma!r}")
        self.chroma = chroma

    def _check_signal(self, signal: Signal) -> None:
        _require(self.encoder, self.name)
        if signal.channels not in (1, 3):
            raise InputError(f"codec {self.name!r} codes gray or RGB video, got {signal.channels} channels")
        _, _, height, width = signal.data.shape
        if height % 2 or width % 2:  # 4:2:0 needs it; x265 refuses odd sizes in 4:4:4 too
            raise InputError(f"codec {self.name!r} needs an even frame size, got {width}×{height}")

    def _encoder_args(self, setting) -> list[str]:
        raise NotImplementedError

    def _encode(self, signal: Signal, setting) -> bytes:
        frames = torch.round(signal.data.clamp(0, 1) * 255).to(torch.uint8)
        if frames.shape[1] == 1:
            frames = frames.expand(-1, 3, -1, -1)
        raw = frames.permute(0, 2, 3, 1).contiguous().numpy().tobytes()
        _, _, height, width = signal.data.shape
        fps = Fraction(signal.frame_rate or 25.0).limit_denominator(1001)
        with tempfile.TemporaryDirectory(prefix=f"inrkit-{self.name}-") as tmp:
            out = Path(tmp) / "video.mp4"
            _ffmpeg(
                ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                 "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0",
                 "-c:v", self.encoder, *self._encoder_args(setting), "-pix_fmt", f"yuv{self.chroma}p",
                 "-map_metadata", "-1", "-fflags", "+bitexact", "-f", "mp4", str(out)],
                raw, f"encode {self.name} at {setting}",
            )
            return out.read_bytes()

    def decode(self, data: bytes, **options) -> Signal:
        frames, fps = _decode_video(data, self.name, suffix=".mp4")
        video = torch.from_numpy(frames.copy()).permute(0, 3, 1, 2).float() / 255.0
        return Signal(video.contiguous(), "video", bit_depth=8, frame_rate=fps,
                      source=f"{self.name} stream")


@register_codec("x264")
class X264(_FFmpegVideoCodec):
    name = "x264"
    encoder = "libx264"
    levels = tuple(range(51, -1, -1))  # CRF
    ladder_range = (52 - 40, 52 - 18)

    def _encoder_args(self, crf) -> list[str]:
        return ["-preset", "medium", "-crf", str(crf)]


@register_codec("x265")
class X265(_FFmpegVideoCodec):
    name = "x265"
    encoder = "libx265"
    levels = tuple(range(51, -1, -1))  # CRF
    ladder_range = (52 - 40, 52 - 18)

    def _encoder_args(self, crf) -> list[str]:
        return ["-preset", "medium", "-crf", str(crf), "-x265-params", "log-level=error",
                "-tag:v", "hvc1"]


@register_codec("av1")
class AV1(_FFmpegVideoCodec):
    name = "av1"
    encoder = "libsvtav1"
    chroma_formats = ("420",)  # SVT-AV1 encodes 4:2:0 only
    levels = tuple(range(63, 0, -1))  # CRF
    ladder_range = (64 - 55, 64 - 25)

    def _encoder_args(self, crf) -> list[str]:
        return ["-crf", str(crf), "-svtav1-params", "verbosity=0"]


# -- audio through ffmpeg ------------------------------------------------------------------
_ORIGINAL_RATE_TAG = "ORIGINAL_SAMPLE_RATE"
_ORIGINAL_LENGTH_TAG = "ORIGINAL_SAMPLES"  # resampling back may be a sample off


class _FFmpegAudioCodec(ClassicalCodec):
    modalities = ("audio",)
    rate_kinds = ("kbps", "quality")
    encoder: ClassVar[str] = ""
    container: ClassVar[str] = ""
    suffix: ClassVar[str] = ""
    native_rates: ClassVar[tuple[int, ...] | None] = None  # None: any rate

    def _check_signal(self, signal: Signal) -> None:
        _require(self.encoder, self.name)
        if signal.channels > 2:
            raise InputError(f"codec {self.name!r} codes mono or stereo audio, got {signal.channels} channels")

    def _encode(self, signal: Signal, kbps) -> bytes:
        rate = int(round(signal.sample_rate))
        if rate != signal.sample_rate:
            raise InputError(f"codec {self.name!r} needs an integer sample rate, got {signal.sample_rate}")
        samples = signal.data.clamp(-1, 1).t().contiguous().numpy().astype("<f4").tobytes()
        extra = []
        if self.native_rates is not None and rate not in self.native_rates:
            extra = ["-af", "aresample=48000:resampler=soxr:precision=28", "-metadata", f"{_ORIGINAL_RATE_TAG}={rate}",
                     "-metadata", f"{_ORIGINAL_LENGTH_TAG}={signal.data.shape[1]}"]
        with tempfile.TemporaryDirectory(prefix=f"inrkit-{self.name}-") as tmp:
            out = Path(tmp) / f"audio{self.suffix}"
            _ffmpeg(
                ["-f", "f32le", "-ar", str(rate), "-ac", str(signal.channels), "-i", "pipe:0",
                 "-c:a", self.encoder, "-b:a", f"{kbps}k", *extra, "-fflags", "+bitexact",
                 "-f", self.container, str(out)],
                samples, f"encode {self.name} at {kbps} kbps",
            )
            return out.read_bytes()

    def _input_rate(self, extradata: bytes) -> int | None:
        """The sample rate the stream was encoded from, where its header records one
        that its decoder does not output."""
        return None

    def decode(self, data: bytes, **options) -> Signal:
        with _probe(data, self.name) as container:
            if not container.streams.audio:
                raise BitstreamError(f"{self.name} file has no audio stream")
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels
            rate = stream.codec_context.sample_rate
            input_rate = self._input_rate(stream.codec_context.extradata or b"")
            tags = {k.upper(): v for k, v in {**container.metadata, **stream.metadata}.items()}
        length = None
        resample = False
        if _ORIGINAL_RATE_TAG in tags:
            try:
                rate = int(tags[_ORIGINAL_RATE_TAG])
                length = int(tags.get(_ORIGINAL_LENGTH_TAG, 0)) or None
            except ValueError:
                raise BitstreamError(f"{self.name} file has a bad sample-rate or length tag") from None
            resample = length is not None
        elif input_rate and input_rate != rate:
            rate, resample = input_rate, True
        if not channels or not rate:
            raise BitstreamError(f"{self.name} stream has no channel count or sample rate")
        with tempfile.TemporaryDirectory(prefix="inrkit-dec-") as tmp:
            path = Path(tmp) / f"in{self.suffix}"
            path.write_bytes(data)
            soxr = ["-af", f"aresample={rate}:resampler=soxr:precision=28"] if resample else []
            raw = _ffmpeg(["-i", str(path), *soxr, "-f", "f32le", "-ar", str(rate),
                           "-ac", str(channels), "pipe:1"], None, f"decode the {self.name} stream", error=BitstreamError)
        samples = np.frombuffer(raw, "<f4")
        if samples.size == 0 or samples.size % channels:
            raise BitstreamError(f"{self.name} stream decoded to {samples.size} samples for {channels} channels")
        audio = torch.from_numpy(samples.reshape(-1, channels).T.copy())
        if length is not None:  # trim or pad the resampler's rounding
            audio = torch.nn.functional.pad(audio[:, :length], (0, max(0, length - audio.shape[1])))
        return Signal(audio.clamp(-1, 1), "audio", bit_depth=16, sample_rate=float(rate),
                      source=f"{self.name} stream")

@register_codec("mp3")
class MP3(_FFmpegAudioCodec):
    name = "mp3"
    encoder = "libmp3lame"
    container = "mp3"
    suffix = ".mp3"
    levels = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
    ladder_range = (1, len(levels))


@register_codec("opus")
class Opus(_FFmpegAudioCodec):
    name = "opus"
    encoder = "libopus"
    container = "ogg"
    suffix = ".opus"
    native_rates = (8000, 12000, 16000, 24000, 48000)
    levels = (6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 256)
    ladder_range = (1, len(levels))

    def _input_rate(self, extradata: bytes) -> int | None:
        # libopus always decodes at 48 kHz; the OpusHead (RFC 7845 §5.1) keeps the
        # input rate, bytes 12-15 little-endian, so 8/12/16/24 kHz come back as given.
        if len(extradata) >= 16 and extradata[:8] == b"OpusHead":
            return int.from_bytes(extradata[12:16], "little") or None
        return None


@register_codec("aac")
class AAC(_FFmpegAudioCodec):
    name = "aac"
    encoder = "aac"
    container = "ipod"  # MP4 audio (.m4a): the edit list carries the encoder delay
    suffix = ".m4a"
    levels = (16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320)
    ladder_range = (1, len(levels))


IMAGE_CODECS = ("jpeg", "webp", "avif", "jpeg2000", "hevc")
VIDEO_CODECS = ("x264", "x265", "av1")
AUDIO_CODECS = ("mp3", "opus", "aac")

__all__ = ["AUDIO_CODECS", "IMAGE_CODECS", "VIDEO_CODECS", "ClassicalCodec", "ffmpeg_exe",
           "has_encoder"]
