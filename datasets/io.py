"""One entry point for media: :func:`load` (file or folder → :class:`Signal`) and :func:`save`.

The modality comes from the extension (tables in :mod:`.image`, :mod:`.video`,
:mod:`.audio`); a file with an unknown extension is sniffed: Pillow, then
libsndfile, then ffmpeg. A folder is a video made of its image frames. Passing
``modality="audio"`` for a video file reads its audio track. The format-specific
rules (channels, bit depth, lossless or not) live in the module of each modality.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import soundfile as sf
from PIL import Image

from inrkit.errors import InputError

from .audio import AUDIO_EXTENSIONS, read_audio, write_audio
from .audio import WRITE_EXTENSIONS as AUDIO_WRITE_EXTENSIONS
from .files import check_input_file, describe_content
from .image import IMAGE_EXTENSIONS, WRITE_FORMATS, read_image, write_image
from .signal import MODALITIES, Signal
from .video import H264_EXTENSIONS, VIDEO_EXTENSIONS, read_frame_folder, read_video, write_video

_ARTICLE = {"image": "an image", "video": "a video", "audio": "an audio file", None: "a media file"}


def modality_of(path) -> str | None:
    """``"image"``, ``"video"`` or ``"audio"`` from a file's extension, ``None`` if unknown."""
    suffix = Path(path).suffix.lower()
    for modality, extensions in (("image", IMAGE_EXTENSIONS), ("video", VIDEO_EXTENSIONS),
                                 ("audio", AUDIO_EXTENSIONS)):
        if suffix in extensions:
            return modality
    return None


def sniff_modality(path) -> str:
    """The modality of a file judged by its content (for unknown extensions)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                return "image"
    except Image.DecompressionBombError:
        return "image"  # read_image reports it properly
    except Exception:  # noqa: BLE001 - any failure just means "not an image"
        pass
    try:
        sf.info(str(path))
        return "audio"
    except Exception:  # noqa: BLE001
        pass
    try:
        with av.open(str(path)) as container:
            if container.streams.video:
                return "video"
            if container.streams.audio:
                return "audio"
    except (av.FFmpegError, ValueError, OSError):
        pass
    raise InputError(
        f"{path}: expected a media file (image, video or audio), found {describe_content(path)}"
    )


def load(path, *, modality: str | None = None, frames=None, resize=None, max_pixels=None,
         max_bytes=None) -> Signal:
    """Read an image, video or audio file (or a folder of frames) into a :class:`Signal`.

    Args:
        path: a media file, or a folder of image frames (a video).
        modality: ``"image"``, ``"video"`` or ``"audio"`` to insist on one (the default
            is the file's own); ``"audio"`` on a video file reads its audio track.
        frames: video frames or audio samples to keep: ``(start, stop)``,
            ``(start, stop, step)`` (video), a ``slice``, ``"start:stop"``, or ``n`` for the first n.
        resize: images and video: ``(height, width)``, or an int for the longest side
            (aspect kept, never enlarged).
        max_pixels: pixel limit per image or frame (default ``$INRKIT_MAX_PIXELS`` or 64 Mpx).
        max_bytes: memory limit for the decoded float32 video or audio
            (default ``$INRKIT_MAX_BYTES`` or 4 GiB).

    Raises:
        InputError: the path is missing or unreadable, the content is not what was
            expected, or a limit is exceeded; the message names the file.
    """
    path = Path(path)
    if modality not in (None, *MODALITIES):
        raise InputError(f"modality: expected one of {', '.join(MODALITIES)}, got {modality!r}")
    if path.is_dir():
        if modality not in (None, "video"):
            raise InputError(f"{path}: is a folder; expected {_ARTICLE[modality]}")
        return read_frame_folder(path, frames=frames, resize=resize, max_pixels=max_pixels,
                                 max_bytes=max_bytes)
    check_input_file(path, _ARTICLE[modality])
    kind = modality_of(path) or sniff_modality(path)
    if modality is not None and modality != kind and not (modality == "audio" and kind == "video"):
        raise InputError(f"{path}: expected {_ARTICLE[modality]}, found {_ARTICLE[kind]}")
    modality = modality or kind
    if modality == "image":
        if frames is not None:
            raise InputError(f"{path}: frames applies to video and audio, not to an image")
        return read_image(path, resize=resize, max_pixels=max_pixels)
    if modality == "video":
        return read_video(path, frames=frames, resize=resize, max_pixels=max_pixels, max_bytes=max_bytes)
    if resize is not None:
        raise InputError(f"{path}: resize applies to images and video, not to audio")
    return read_audio(path, frames=frames, max_bytes=max_bytes)


def check_writable_as(path, modality: str) -> None:
    """Refuse, before any work, an output whose extension the ``modality``'s writer does
    not take (the writers refuse it too, but only once there is a signal to write)."""
    suffix = Path(path).suffix.lower()
    takes = {
        "image": sorted(WRITE_FORMATS),
        "video": [*sorted(H264_EXTENSIONS | {".y4m"}), "a path without extension (PNG frames)"],
        "audio": sorted(AUDIO_WRITE_EXTENSIONS),
    }[modality]
    if suffix in takes or (modality == "video" and not suffix):
        return
    raise InputError(f"{path}: cannot write {modality} as {suffix or 'a file without extension'!r}; "
                     f"{modality} is written as {', '.join(takes)}")


def save(signal: Signal, path, *, quality: int | None = None, crf: int | None = None,
         bitrate: int | None = None) -> Path:
    """Write a :class:`Signal` to ``path`` atomically, the format chosen by extension.

    Images: ``.png .tif .jpg .webp .bmp`` (``quality`` 1–100 for JPEG/WebP).
    Video: ``.mp4 .mkv .mov .avi`` (lossless H.264 unless ``crf`` 0–51 is given),
    ``.y4m``, or a path without extension for a folder of PNG frames.
    Audio: ``.wav .flac .ogg .mp3`` (``quality`` 0–100 for Ogg, ``bitrate`` kbps for MP3).
    Returns the path written.
    """
    if not isinstance(signal, Signal):
        raise InputError(f"{path}: expected a Signal to save, got {type(signal).__name__}")
    given = {"quality": quality, "crf": crf, "bitrate": bitrate}
    accepted = {"image": {"quality"}, "video": {"crf"}, "audio": {"quality", "bitrate"}}[signal.modality]
    for name, value in given.items():
        if value is not None and name not in accepted:
            raise InputError(f"{path}: {name} does not apply to {signal.modality}; "
                             f"{signal.modality} takes {', '.join(sorted(accepted))}")
    if signal.modality == "image":
        return write_image(signal, path, quality=quality)
    if signal.modality == "video":
        return write_video(signal, path, crf=crf)
    return write_audio(signal, path, quality=quality, bitrate=bitrate)
