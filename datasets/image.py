"""Images: any picture Pillow reads → :class:`Signal`; a Signal → PNG, JPEG, TIFF, WebP or BMP.

Reading policy (``C×H×W`` float32 in ``[0, 1]``, ``bit_depth`` as stored):

- gray (``L``) stays 1 channel; gray+alpha (``LA``) 2; ``RGB`` 3; ``RGBA`` 4.
  Alpha is kept as a channel, never composited.
- palette (``P``/``PA``) becomes ``L``/``LA`` when every palette entry is gray,
  else ``RGB``, or ``RGBA`` when the palette or ``tRNS`` chunk carries transparency.
- 1-bit images become 8-bit gray (0 → 0, 1 → 255).
- ``CMYK``, ``YCbCr``, ``LAB`` and ``HSV`` become ``RGB`` (Pillow's conversion).
- 16-bit gray (``I;16``) keeps ``bit_depth=16``. Pillow reads 16-bit colour
  PNG/TIFF (and 16-bit gray+alpha) only as 8-bit, so those are decoded with
  PyAV (ffmpeg's PNG/TIFF decoders) instead, keeping all 16 bits.
- 32-bit integer, floating-point and signed samples raise
  :class:`InputError` ("unsupported bit depth").
- EXIF orientation is applied, so the Signal is the picture as viewers show it.
- Animated (GIF, WebP, APNG) and multi-page (TIFF) files raise :class:`InputError`
  rather than silently give their first frame.

Writing policy (by extension; samples are rounded to the output bit depth):

============  ===========  =====================================================
format        bit depth    channels
============  ===========  =====================================================
PNG, TIFF     8 or 16 [1]  1, 2, 3, 4 kept
JPEG          8            1, 3 kept; alpha dropped (LA → L, RGBA → RGB)
WebP          8            3, 4 kept; gray becomes RGB (LA → RGBA): WebP has no gray
BMP           8            1, 3 kept; alpha dropped (LA → L, RGBA → RGB)
============  ===========  =====================================================

[1] 16 bits when the Signal's ``bit_depth`` is above 8 (a 10- or 12-bit
source is stored in 16 bits), else 8. JPEG and WebP take ``quality`` (1–100;
JPEG defaults to 95, WebP without ``quality`` is lossless). Pillow writes the
8-bit files and 16-bit gray; PyAV writes 16-bit multi-channel PNG and TIFF.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

from inrkit.errors import InputError

from .files import atomic_output, check_input_file, describe_content
from .frames import array_to_frame, frame_layout, frame_to_array
from .limits import check_pixels
from .signal import Signal

WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
IMAGE_EXTENSIONS = frozenset(
    {*WRITE_FORMATS, ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".avif"}
)

_EIGHT_BIT = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
_UNSUPPORTED = {
    "I": "32-bit integer samples",
    "F": "32-bit floating-point samples",
    "I;16S": "16-bit signed samples",
}


# -- resizing (shared with video) --------------------------------------------------
def target_size(height: int, width: int, resize) -> tuple[int, int]:
    """The ``(H, W)`` that ``resize`` asks for: ``None`` keeps the size, ``(H, W)`` (or ``"HxW"``)
    is exact, an int ``n`` (or ``"n"``) scales, keeping the aspect ratio and never enlarging,
    so that the longer side is at most n."""
    if resize is None:
        return height, width
    if isinstance(resize, str):
        parts = resize.lower().replace(",", "x").split("x")
        try:
            resize = int(parts[0]) if len(parts) == 1 else tuple(int(p) for p in parts)
        except ValueError:
            raise InputError(f"resize: expected 'HxW' or a maximum side, got {resize!r}") from None
    if isinstance(resize, int) and not isinstance(resize, bool):
        if resize < 1:
            raise InputError(f"resize: expected a positive maximum side, got {resize}")
        scale = min(1.0, resize / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))
    try:
        h, w = (int(v) for v in resize)
    except (TypeError, ValueError):
        raise InputError(f"resize: expected (height, width) or a maximum side, got {resize!r}") from None
    if h < 1 or w < 1:
        raise InputError(f"resize: expected a positive (height, width), got {resize!r}")
    return h, w


def resize_chw(data: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample ``[..., C, H, W]`` values in ``[0, 1]`` to ``size`` (antialiased bicubic)."""
    if tuple(data.shape[-2:]) == tuple(size):
        return data
    lead = data.shape[:-2]
    flat = data.reshape(-1, 1, *data.shape[-2:]).float()
    out = F.interpolate(flat, size=size, mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).reshape(*lead, *size)


# -- arrays ⇄ tensors -----------------------------------------------------------------
def array_to_chw(array: np.ndarray) -> torch.Tensor:
    """``H×W×C`` uint8/uint16 → ``C×H×W`` float32 in ``[0, 1]``."""
    peak = 65535.0 if array.dtype == np.uint16 else 255.0
    values = array.astype(np.float32) * np.float32(1.0 / peak)
    return torch.from_numpy(values).permute(2, 0, 1).contiguous()


def chw_to_array(data: torch.Tensor, bits: int) -> np.ndarray:
    """``[..., C, H, W]`` in ``[0, 1]`` → ``[..., H, W, C]`` uint8 (bits 8) or uint16 (bits 16)."""
    peak = (1 << bits) - 1
    values = torch.round(data.detach().float().clamp(0.0, 1.0) * peak)
    return values.movedim(-3, -1).cpu().numpy().astype(np.uint16 if bits == 16 else np.uint8)


# -- reading ------------------------------------------------------------------------------
def _deep_colour(path: Path, im: Image.Image) -> bool:
    """Whether the file has 16-bit samples and more than one channel (Pillow would truncate)."""
    if im.format == "PNG":
        with open(path, "rb") as f:
            head = f.read(26)
        return len(head) == 26 and head[24] == 16 and head[25] in (2, 4, 6)
    if isinstance(im, TiffImagePlugin.TiffImageFile):
        bits = im.tag_v2.get(258) or ()
        return len(bits) > 1 and max(bits) > 8
    return False


def _decode_with_pyav(path: Path, expected: str, max_pixels) -> tuple[np.ndarray, int]:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            check_pixels(path, stream.codec_context.height, stream.codec_context.width, max_pixels)
            frame = next(container.decode(stream))
    except (av.FFmpegError, StopIteration, IndexError) as err:
        raise InputError(
            f"{path}: expected {expected}, but neither Pillow nor ffmpeg can decode it; "
            f"found {describe_content(path)}"
        ) from err
    channels, bits, _ = frame_layout(frame.format)
    return frame_to_array(frame, channels, bits), bits


def _palette_mode(im: Image.Image) -> str:
    transparent = "transparency" in im.info or im.mode == "PA" or (im.palette and im.palette.mode == "RGBA")
    entries = np.asarray(im.getpalette("RGB") or [], dtype=np.int64).reshape(-1, 3)
    gray = len(entries) > 0 and bool((entries == entries[:, :1]).all())
    return ("LA" if transparent else "L") if gray else ("RGBA" if transparent else "RGB")


def _pillow_pixels(path: Path, im: Image.Image) -> tuple[np.ndarray, int]:
    mode = im.mode
    if mode in _SIXTEEN_BIT:
        return np.asarray(im).astype(np.uint16)[..., None], 16
    if mode in ("P", "PA"):
        target = _palette_mode(im)
    elif mode in _EIGHT_BIT:
        target = _EIGHT_BIT[mode]
    else:
        found = _UNSUPPORTED.get(mode, f"Pillow mode {mode!r}")
        raise InputError(
            f"{path}: unsupported bit depth: found {found}; expected 1-, 8- or 16-bit "
            "unsigned integer samples"
        )
    if mode != target:
        im = im.convert(target)
    array = np.asarray(im)
    return (array[..., None] if array.ndim == 2 else array), 8


def decode_image(path, *, max_pixels=None) -> tuple[np.ndarray, int, dict]:
    """Decode an image file to ``(H×W×C uint8/uint16 array, bit_depth, meta)`` under the
    reading policy above, checking the pixel limit before decoding any pixel."""
    path = check_input_file(path, "an image")
    suffix = path.suffix.lower()
    expected = f"a {suffix.lstrip('.').upper()} image" if suffix in IMAGE_EXTENSIONS else "an image"
    try:
        with warnings.catch_warnings():
            # Our own pixel limit (checked below) replaces Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as err:
        raise InputError(
            f"{path}: Pillow refuses to open it as a possible decompression bomb ({err}); "
            "expected an image below Pillow's Image.MAX_IMAGE_PIXELS"
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        if suffix in (".png", ".tif", ".tiff"):
            array, bits = _decode_with_pyav(path, expected, max_pixels)  # e.g. 16-bit gray+alpha TIFF
            return array, bits, {"format": WRITE_FORMATS[suffix], "decoder": "ffmpeg"}
        raise InputError(f"{path}: expected {expected}, but cannot decode it; found {describe_content(path)}") from err
    with im:
        check_pixels(path, im.height, im.width, max_pixels)
        frames = getattr(im, "n_frames", 1)
        if frames > 1:  # Pillow would give the first frame alone
            raise InputError(
                f"{path}: an animated or multi-page {im.format} of {frames} frames; inrkit reads "
                "still images (write the frames into a folder to load them as a video)"
            )
        meta = {"format": im.format, "mode": im.mode}
        try:
            if _deep_colour(path, im):
                array, bits = _decode_with_pyav(path, expected, max_pixels)
                meta["decoder"] = "ffmpeg"
            else:
                if im.getexif().get(0x0112, 1) != 1:  # EXIF orientation
                    im = ImageOps.exif_transpose(im)
                array, bits = _pillow_pixels(path, im)
        except InputError:
            raise
        except (OSError, ValueError, SyntaxError) as err:
            raise InputError(f"{path}: expected {expected}, but it is damaged or truncated ({err})") from err
    return array, bits, meta


def read_image(path, *, resize=None, max_pixels=None) -> Signal:
    """Load an image file as a ``C×H×W`` :class:`Signal` in ``[0, 1]``; ``resize`` is
    ``(H, W)`` or a maximum side (see :func:`target_size`)."""
    array, bits, meta = decode_image(path, max_pixels=max_pixels)
    data = array_to_chw(array)
    data = resize_chw(data, target_size(data.shape[1], data.shape[2], resize))
    return Signal(data, "image", bit_depth=bits, source=str(path), meta=meta)


# -- writing ------------------------------------------------------------------------------
def _fit_channels(array: np.ndarray, fmt: str) -> np.ndarray:
    channels = array.shape[-1]
    if fmt in ("JPEG", "BMP") and channels in (2, 4):
        return array[..., :-1]  # drop alpha
    if fmt == "WEBP" and channels in (1, 2):
        gray = np.repeat(array[..., :1], 3, axis=-1)
        return gray if channels == 1 else np.concatenate([gray, array[..., 1:]], axis=-1)
    return array


def _write_with_pyav(array: np.ndarray, path: Path, fmt: str) -> None:
    """16-bit multi-channel PNG/TIFF, which Pillow cannot write."""
    channels = array.shape[-1]
    codec, pix_fmt = {
        "PNG": ("png", {2: "ya16be", 3: "rgb48be", 4: "rgba64be"}),
        "TIFF": ("tiff", {2: "ya16le", 3: "rgb48le", 4: "rgba64le"}),
    }[fmt]
    with av.open(str(path), "w", format="image2", options={"update": "1"}) as container:
        stream = container.add_stream(codec, rate=1)
        stream.height, stream.width = array.shape[:2]
        stream.pix_fmt = pix_fmt[channels]
        for packet in stream.encode(array_to_frame(array)):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_image(signal: Signal, path, *, quality: int | None = None) -> Path:
    """Write an image Signal to ``path``, the format chosen by extension (see the table above)."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: cannot write images as {path.suffix or 'a file without extension'!r}; "
            f"expected one of {', '.join(sorted(WRITE_FORMATS))}"
        )
    if signal.modality != "image":
        raise InputError(f"{path}: expected an image signal for {fmt}, found a {signal.modality!r} signal")
    if signal.channels not in (1, 2, 3, 4):
        raise InputError(f"{path}: images have 1 to 4 channels, found {signal.channels}")
    options: dict = {}
    if quality is not None:
        if fmt not in ("JPEG", "WEBP"):
            raise InputError(f"{path}: quality applies to JPEG and WebP only; {fmt} is lossless")
        if not (isinstance(quality, int) and 1 <= quality <= 100):
            raise InputError(f"{path}: quality must be an integer from 1 to 100, got {quality!r}")
        options["quality"] = quality
    elif fmt == "JPEG":
        options["quality"] = 95
    elif fmt == "WEBP":
        options["lossless"] = True

    bits = 16 if signal.bit_depth > 8 and fmt in ("PNG", "TIFF") else 8
    array = _fit_channels(chw_to_array(signal.data, bits), fmt)
    with atomic_output(path) as temp:
        if bits == 16 and array.shape[-1] > 1:
            _write_with_pyav(array, temp, fmt)
        else:
            pixels = array[..., 0] if array.shape[-1] == 1 else array  # L, I;16, LA, RGB, RGBA
            Image.fromarray(pixels).save(temp, format=fmt, **options)
    return path
