"""Video: files PyAV decodes, raw ``.yuv`` and folders of frames → :class:`Signal`; a Signal →
H.264 in mp4/mkv/mov/avi, ``.y4m``, or a folder of PNG frames.

Reading. Frames are decoded one at a time and the decoder stops as soon as the
requested range is done, so ``frames=(start, stop)`` on a long clip costs only
``stop`` decoded frames. Each kept frame is resized at once when ``resize`` is
given, so memory holds only the frames asked for at the size asked for. Before
decoding, the frame size is checked against ``max_pixels`` and the estimated
``T×C×H×W×4`` bytes against ``max_bytes`` (:mod:`inrkit.datasets.limits`); the
count is checked again while decoding, as containers may not know their length.

- Layout ``T×C×H×W`` in ``[0, 1]``: gray pixel formats give 1 channel, formats
  with alpha 4, everything else RGB. YUV is converted by ffmpeg's swscale with
  the stream's colour matrix, or BT.601 limited range when untagged (ffmpeg's
  default, what ``ffmpeg -i x.y4m x.png`` does).
- ``bit_depth`` is the source's: 8, or 10/12/16 for deep formats (decoded via
  16-bit RGB).
- ``frame_rate`` is the stream's average rate, divided by the range's step.
- ``frames=(start, stop)`` must lie within the clip: a ``stop`` past the last frame
  raises :class:`InputError` (as decoding a ``.inrk`` does), rather than giving
  fewer frames than asked for; ``stop=None`` means to the end.
- Raw ``.yuv`` has no header, so its geometry comes from the file name in the
  UVG style ``Beauty_1920x1080_120fps_420_8bit_YUV.yuv``: ``WxH`` is required;
  fps (default 25), chroma ``420``/``422``/``444`` (default 420) and ``8bit``/
  ``10bit`` (default 8) are optional.
- A folder of frames is its image files (any format :mod:`~inrkit.datasets.image`
  reads) in natural order (``f2.png`` before ``f10.png``); all must share size,
  channels and bit depth.

Writing (by extension):

- ``.mp4``, ``.mkv``, ``.mov``, ``.avi``: H.264, 8-bit RGB. Without ``crf`` it is
  lossless and exact (``libx264rgb``, CRF 0, RGB planes, no chroma subsampling);
  with ``crf`` (0–51) it is ``libx264`` 4:2:0 (4:4:4 if a side is odd) at that CRF.
- ``.y4m``: uncompressed 8-bit 4:4:4 YUV (``Cmono`` for gray), so close to but not
  exactly the RGB input (≈50 dB PSNR from the RGB→YUV rounding).
- no extension: a folder of ``frame_00000.png`` … through the image writer,
  which keeps channels and 16-bit depth.

Gray video becomes RGB in H.264 files; alpha is dropped in every video file.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from inrkit.errors import InputError

from .files import atomic_folder, atomic_output, check_input_file, describe_content, natural_key
from .frames import array_to_frame, frame_layout, frame_to_array
from .image import (
    IMAGE_EXTENSIONS,
    array_to_chw,
    chw_to_array,
    decode_image,
    resize_chw,
    target_size,
    write_image,
)
from .limits import check_memory, check_pixels
from .signal import Signal

CONTAINER_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts"})
VIDEO_EXTENSIONS = CONTAINER_EXTENSIONS | {".y4m", ".yuv"}
H264_EXTENSIONS = frozenset({".mp4", ".mkv", ".mov", ".avi"})

_HINT = "select fewer frames with frames=(start, stop) (--frames) or a smaller size with resize=... (--resize)"
_FRAME_NAME = re.compile(r"frame_\d+\.png")


def frame_range(frames) -> tuple[int, int | None, int]:
    """``(start, stop, step)`` from ``None`` (all), an int ``n`` (the first n), ``(start, stop)``,
    ``(start, stop, step)``, a ``slice``/``range``, or a string ``"start:stop[:step]"``.
    ``stop`` may be ``None`` (to the end); negative indices are not accepted, as the
    length of a stream is not known before it is decoded."""
    if frames is None:
        return 0, None, 1
    try:
        if isinstance(frames, str):
            parts = [int(p) if p.strip() else None for p in frames.split(":")]
            if len(parts) == 1:
                parts = [0, *parts]
        elif isinstance(frames, int) and not isinstance(frames, bool):
            parts = [0, frames]
        elif isinstance(frames, (slice, range)):
            parts = [frames.start, frames.stop, frames.step]
        else:
            parts = [None if p is None else int(p) for p in frames]
        if not 2 <= len(parts) <= 3:
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(
            f"frames: expected (start, stop), (start, stop, step), a slice or 'start:stop', got {frames!r}"
        ) from None
    start, stop, step = (parts + [None])[:3]
    start, step = start or 0, step or 1
    if start < 0 or (stop is not None and stop <= start) or step < 1:
        raise InputError(
            f"frames: expected 0 ≤ start < stop and step ≥ 1, got {frames!r}"
        )
    return start, stop, step


def _count_selected(total: int, start: int, stop: int | None, step: int) -> int:
    return len(range(start, total if stop is None else min(stop, total), step))


# -- raw YUV ------------------------------------------------------------------------------
def raw_yuv_options(path: Path) -> dict:
    """PyAV ``rawvideo`` demuxer options from a UVG-style ``.yuv`` file name."""
    name = path.name
    size = re.search(r"(\d+)x(\d+)", name)
    if not size:
        raise InputError(
            f"{path}: a raw .yuv file has no header, so its name must give the frame size; "
            "expected a name like Beauty_1920x1080_120fps_420_8bit_YUV.yuv, found no WxH in it"
        )
    fps = re.search(r"(\d+(?:\.\d+)?)fps", name, re.IGNORECASE)
    chroma = re.search(r"(?<!\d)(420|422|444)(?!\d)", name)
    bits = re.search(r"(?<!\d)(8|10|12|16)bit", name, re.IGNORECASE)
    depth = int(bits.group(1)) if bits else 8
    pix_fmt = f"yuv{chroma.group(1) if chroma else '420'}p" + ("" if depth == 8 else f"{depth}le")
    return {
        "format": "rawvideo",
        "options": {
            "video_size": f"{size.group(1)}x{size.group(2)}",
            "pixel_format": pix_fmt,
            "framerate": fps.group(1) if fps else "25",
        },
    }


# -- reading ------------------------------------------------------------------------------
def _estimated_frames(container, stream) -> int | None:
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return None
    if stream.duration and stream.time_base:
        return round(float(stream.duration * stream.time_base * rate))
    if container.duration:
        return round(container.duration / av.time_base * float(rate))
    return None


def _assemble(items: list, shape: tuple[int, ...]) -> torch.Tensor:
    """Stack decoded frames (raw arrays or resized tensors) into one float32 tensor,
    releasing each source frame as soon as it is copied."""
    out = torch.empty(shape, dtype=torch.float32)
    for i in range(len(items)):
        item, items[i] = items[i], None
        out[i] = item if isinstance(item, torch.Tensor) else array_to_chw(item)
    return out


def read_video(path, *, frames=None, resize=None, max_pixels=None, max_bytes=None) -> Signal:
    """Decode a video file to a ``T×C×H×W`` :class:`Signal` (see the module docstring)."""
    path = check_input_file(path, "a video")
    start, stop, step = frame_range(frames)
    open_args = raw_yuv_options(path) if path.suffix.lower() == ".yuv" else {}
    try:
        container = av.open(str(path), **open_args)
    except (av.FFmpegError, ValueError) as err:
        raise InputError(
            f"{path}: expected a video, but ffmpeg cannot read it; found {describe_content(path)}"
        ) from err
    with container:
        if not container.streams.video:
            kinds = ", ".join(s.type for s in container.streams) or "no streams"
            raise InputError(f"{path}: expected a video stream, found {kinds}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        height, width = stream.codec_context.height, stream.codec_context.width
        if height and width:
            check_pixels(path, height, width, max_pixels)
        size: tuple[int, int] | None = target_size(height, width, resize) if height and width else None
        layout = frame_layout(stream.codec_context.format) if stream.codec_context.format else None
        total = _estimated_frames(container, stream)
        if total and size:
            wanted = _count_selected(total, start, stop, step)
            check_memory(path, (wanted, layout[0] if layout else 3, *size), max_bytes, hint=_HINT)

        items: list = []
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if stop is not None and index >= stop:
                    break
                if index < start or (index - start) % step:
                    continue
                if not items:
                    layout = frame_layout(frame.format)
                    height, width = frame.height, frame.width
                    check_pixels(path, height, width, max_pixels)
                    size = target_size(height, width, resize)
                elif (frame.height, frame.width) != (height, width):
                    raise InputError(
                        f"{path}: frame {index} is {frame.width}×{frame.height}; expected every frame "
                        f"to be {width}×{height} like the first"
                    )
                array = frame_to_array(frame, layout[0], layout[1])
                items.append(resize_chw(array_to_chw(array), size) if size != (height, width) else array)
                check_memory(path, (len(items), layout[0], *size), max_bytes, hint=_HINT)  # type: ignore[misc]  # set by the first frame
        except av.FFmpegError as err:
            raise InputError(f"{path}: expected a decodable video, but frame {index + 1} is damaged ({err})") from err
        if not items:
            if index < 0:
                raise InputError(f"{path}: expected at least one video frame, found 0 frames")
            raise InputError(
                f"{path}: frames={frames!r} selects no frames; the video has {index + 1} frames"
            )
        if stop is not None and index + 1 < stop:  # no silent truncation of the range
            raise InputError(
                f"{path}: frames={frames!r} reaches past the end; the video has {index + 1} frames"
            )
        rate = stream.average_rate or stream.guessed_rate
        meta = {
            "format": container.format.name,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.format.name if stream.codec_context.format else None,
            "frames": (start, start + len(items) * step, step),
        }
    data = _assemble(items, (len(items), layout[0], *size))  # type: ignore[misc]  # set by the first frame
    bit_depth = layout[2] if layout[2] > 8 else 8
    frame_rate = float(rate) / step if rate else None
    return Signal(data, "video", bit_depth=bit_depth, frame_rate=frame_rate, source=str(path), meta=meta)


def frame_files(folder: Path) -> list[Path]:
    """The image files of a folder of frames, in natural order (hidden files skipped)."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
         and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=natural_key,
    )


def read_frame_folder(folder, *, frames=None, resize=None, max_pixels=None, max_bytes=None,
                      frame_rate: float | None = None) -> Signal:
    """Load a folder of image frames as a video :class:`Signal`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: expected a folder of image frames, found no such folder")
    files = frame_files(folder)
    if not files:
        found = sorted(p.name for p in folder.iterdir())
        what = f"only {', '.join(found[:3])}{', ...' if len(found) > 3 else ''}" if found else "an empty folder"
        raise InputError(f"{folder}: expected a video file or a folder of image frames, found {what}")
    start, stop, step = frame_range(frames)
    chosen = files[start:stop:step]
    if not chosen:
        raise InputError(f"{folder}: frames={frames!r} selects no frames; the folder has {len(files)} frames")
    if stop is not None and stop > len(files):
        raise InputError(f"{folder}: frames={frames!r} reaches past the end; the folder has {len(files)} frames")
    first, bits, meta = decode_image(chosen[0], max_pixels=max_pixels)
    height, width, channels = first.shape
    size = target_size(height, width, resize)
    check_memory(folder, (len(chosen), channels, *size), max_bytes, hint=_HINT)
    data = torch.empty((len(chosen), channels, *size), dtype=torch.float32)
    for t, file in enumerate(chosen):
        array, file_bits, _ = (first, bits, None) if t == 0 else decode_image(file, max_pixels=max_pixels)
        if array.shape != first.shape or file_bits != bits:
            raise InputError(
                f"{file}: expected a {width}×{height} frame with {channels} channels at {bits} bits like "
                f"{chosen[0].name}, found {array.shape[1]}×{array.shape[0]} with {array.shape[2]} "
                f"channels at {file_bits} bits"
            )
        data[t] = resize_chw(array_to_chw(array), size)
    meta = {"format": "frames", "frame_format": meta.get("format"),
            "frames": (start, start + len(chosen) * step, step)}
    return Signal(data, "video", bit_depth=bits, frame_rate=frame_rate, source=str(folder), meta=meta)


# -- writing ------------------------------------------------------------------------------
def _rgb_or_gray(array: np.ndarray, *, gray_ok: bool) -> np.ndarray:
    """``T×H×W×C`` → 3 channels (or 1 when ``gray_ok`` and the input is gray), alpha dropped."""
    channels = array.shape[-1]
    if channels in (2, 4):
        array = array[..., :-1]
    if array.shape[-1] == 1 and not gray_ok:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def _encode(path: Path, array: np.ndarray, *, fmt: str | None, codec: str, pix_fmt: str,
            rate: Fraction, options: dict) -> None:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.height, stream.width = array.shape[1:3]
        stream.pix_fmt = pix_fmt
        for t in range(array.shape[0]):
            frame = array_to_frame(array[t])
            frame.pts = t
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_video(signal: Signal, path, *, crf: int | None = None) -> Path:
    """Write a video Signal to ``path`` (see the module docstring for the formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if signal.modality != "video":
        raise InputError(f"{path}: expected a video signal, found a {signal.modality!r} signal")
    if suffix and suffix not in H264_EXTENSIONS | {".y4m"}:
        raise InputError(
            f"{path}: cannot write video as {suffix!r}; expected .mp4, .mkv, .mov, .avi, .y4m, "
            "or a path without extension for a folder of PNG frames"
        )
    if crf is not None and (suffix not in H264_EXTENSIONS or not isinstance(crf, int) or not 0 <= crf <= 51):
        raise InputError(f"{path}: crf must be an integer from 0 to 51 and applies to H.264 files, got {crf!r}")
    rate = Fraction(signal.frame_rate or 25).limit_denominator(1001)

    if not suffix:
        return _write_frame_folder(signal, path)
    if suffix == ".y4m":
        array = _rgb_or_gray(chw_to_array(signal.data, 8), gray_ok=True)
        pix_fmt = "gray" if array.shape[-1] == 1 else "yuv444p"
        with atomic_output(path) as temp:
            _encode(temp, array, fmt="yuv4mpegpipe", codec="rawvideo", pix_fmt=pix_fmt, rate=rate, options={})
        return path
    array = _rgb_or_gray(chw_to_array(signal.data, 8), gray_ok=False)
    if crf is None:
        codec, pix_fmt, options = "libx264rgb", "rgb24", {"crf": "0"}
    else:
        even = array.shape[1] % 2 == 0 and array.shape[2] % 2 == 0
        codec, pix_fmt, options = "libx264", "yuv420p" if even else "yuv444p", {"crf": str(crf)}
    with atomic_output(path) as temp:
        _encode(temp, array, fmt=None, codec=codec, pix_fmt=pix_fmt, rate=rate, options=options)
    return path


def _write_frame_folder(signal: Signal, folder: Path) -> Path:
    digits = max(5, len(str(signal.data.shape[0] - 1)))
    with atomic_folder(folder, replaceable=lambda p: bool(_FRAME_NAME.fullmatch(p.name))) as temp:
        for t, frame in enumerate(signal.data):
            image = Signal(frame, "image", bit_depth=signal.bit_depth)
            write_image(image, temp / f"frame_{t:0{digits}d}.png")
    return folder
