"""PyAV video frames ⇄ numpy arrays ``H×W×C`` of 8- or 16-bit samples.

PyAV's own ``to_ndarray``/``from_ndarray`` lack the gray+alpha layouts and
16-bit gray+alpha, so this module reads and fills the single plane of the
packed pixel formats below directly, honouring the plane's row padding
(``line_size``). Every frame is converted to one of these formats by swscale
(``VideoFrame.reformat``), which is exact between packed/planar layouts of the
same colour model and uses ffmpeg's defaults (BT.601, limited range unless the
stream says otherwise) between YUV and RGB.
"""

from __future__ import annotations

import av
import numpy as np

PACKED_FORMATS = {
    (1, 8): "gray",
    (2, 8): "ya8",
    (3, 8): "rgb24",
    (4, 8): "rgba",
    (1, 16): "gray16le",
    (2, 16): "ya16le",
    (3, 16): "rgb48le",
    (4, 16): "rgba64le",
}


def frame_layout(fmt: av.VideoFormat) -> tuple[int, int, int]:
    """``(channels, container_bits, source_bits)`` for a pixel format: gray formats keep
    one channel (two with alpha), palette and colour formats become RGB (RGBA with
    alpha); samples deeper than 8 bits are held in 16 bits."""
    alpha = any(c.is_alpha for c in fmt.components)
    gray = not fmt.has_palette and not fmt.is_rgb and len(fmt.components) - alpha == 1
    if fmt.has_palette:
        alpha = True  # palettes may carry transparency; ffmpeg decodes them to RGBA
    bits = max(c.bits for c in fmt.components)
    return (1 if gray else 3) + alpha, (16 if bits > 8 else 8), bits


def frame_to_array(frame: av.VideoFrame, channels: int, bits: int) -> np.ndarray:
    """The frame as an ``H×W×channels`` array of ``uint8`` (bits 8) or ``uint16`` (bits 16)."""
    packed = frame.reformat(format=PACKED_FORMATS[channels, bits])
    plane = packed.planes[0]
    row_bytes = packed.width * channels * bits // 8
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(packed.height, plane.line_size)
    dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    array = rows[:, :row_bytes].copy().view(dtype).reshape(packed.height, packed.width, channels)
    return array.astype(np.uint16) if bits == 16 else array


def array_to_frame(array: np.ndarray) -> av.VideoFrame:
    """A packed frame holding an ``H×W×C`` ``uint8`` or ``uint16`` array (C in 1..4)."""
    height, width, channels = array.shape
    bits = 16 if array.dtype == np.uint16 else 8
    frame = av.VideoFrame(width, height, PACKED_FORMATS[channels, bits])
    plane = frame.planes[0]
    data = np.ascontiguousarray(array, dtype=np.uint8 if bits == 8 else "<u2")
    rows = np.zeros((height, plane.line_size), np.uint8)
    rows[:, : width * channels * bits // 8] = data.reshape(height, -1).view(np.uint8)
    plane.update(rows.tobytes())
    return frame
