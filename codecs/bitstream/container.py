"""The ``.inrk`` container: one self-contained file per encoded signal.

Layout (integers are unsigned LEB128 varints unless noted; the full
description with every limit is in ``docs/bitstream.md``)::

    magic          4 bytes   b"INRK"
    version        1 byte    format version (FORMAT_VERSION)
    encoder        3 varints inrkit version that wrote the file (major, minor, patch)
    codec          1 byte length + ASCII name, then varint codec version
    modality       1 byte    0 image, 1 video, 2 audio
    shape          1 byte ndim + ndim varints
    header_len     varint    0 for an empty header
    header         bytes     compact UTF-8 JSON object: the codec's own parameters
    section_count  varint
    per section:   name_len (1 byte), name (ASCII), data_len (varint), data
    crc32          4 bytes   little-endian CRC-32 (zlib) of every byte before it

A file with an empty header and no sections takes about 25 bytes.

The parser is written for hostile input: the magic, the version, the total
size and the CRC are checked before anything is parsed; every length is checked
against the bytes that remain before it is used; the header's size and JSON
nesting depth are bounded before ``json.loads`` sees it; NaN, Infinity,
duplicate keys and a non-object root are refused; trailing bytes are an error.
Anything malformed ends in :class:`inrkit.BitstreamError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inrkit.datasets.modalities import MODALITIES
from inrkit.errors import BitstreamError, InputError
from inrkit.version import __version__

if TYPE_CHECKING:  # torch and the Signal type load only where samples are made: `inrkit info` stays fast
    import torch

    from inrkit.datasets.signal import Signal

MAGIC = b"INRK"
FORMAT_VERSION = 1
ENCODER_VERSION = __version__

MAX_FILE_BYTES = 1 << 30
MAX_HEADER_BYTES = 1 << 20
MAX_JSON_DEPTH = 32
MAX_SECTIONS = 4096
MAX_NAME_LEN = 64
MAX_SHAPE_DIMS = 8
MIN_FILE_BYTES = 20  # the smallest well-formed file
_NAME_RE = re.compile(rb"[A-Za-z0-9_.:/\-]{1,64}")

__all__ = [
    "Container",
    "FORMAT_VERSION",
    "MAGIC",
    "meta_to_signal",
    "pack",
    "read_file",
    "read_file_bytes",
    "section_sizes",
    "signal_meta",
    "unpack",
    "values_to_signal",
    "write_file",
]


# -- varints -----------------------------------------------------------------


def write_varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, high bit set on all but the last byte."""
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes | memoryview, pos: int, what: str, limit: int = (1 << 64) - 1) -> tuple[int, int]:
    """Read a canonical varint of at most 10 bytes at ``pos``; returns ``(value, new_pos)``.

    Overlong encodings (a final 0x00 continuation byte) are refused so that every
    value has exactly one encoding. ``limit`` is the largest acceptable value.
    """
    value = shift = 0
    for i in range(10):
        if pos + i >= len(data):
            raise BitstreamError(f"truncated {what}: the data ends inside a length field")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise BitstreamError(f"malformed {what}: overlong varint")
            if value > limit:
                raise BitstreamError(f"{what} is {value}, more than the limit {limit}")
            return value, pos + i + 1
    raise BitstreamError(f"malformed {what}: varint longer than 10 bytes")


# -- the container -------------------------------------------------------------


@dataclass
class Container:
    """The parsed content of a ``.inrk`` file.

    ``header`` holds codec-specific JSON-safe parameters (architecture config,
    quantization parameters, the signal's metadata under ``"signal"``);
    ``sections`` maps short ASCII names to payload bytes, in file order.
    """

    codec: str
    codec_version: int
    modality: str
    shape: list[int]
    header: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, bytes] = field(default_factory=dict)
    encoder_version: str = ENCODER_VERSION

    @classmethod
    def for_signal(
        cls,
        codec: str,
        codec_version: int,
        signal: Signal,
        header: dict[str, Any] | None = None,
        sections: dict[str, bytes] | None = None,
    ) -> Container:
        """A container for ``signal``: modality and shape in the fixed fields, the
        rest of :func:`signal_meta` under ``header["signal"]`` (omitted when empty)."""
        meta = signal_meta(signal)
        extra = {k: v for k, v in meta.items() if k not in ("modality", "shape")}
        header = dict(header or {})
        if extra:
            header["signal"] = extra
        return cls(codec, int(codec_version), meta["modality"], meta["shape"], header, dict(sections or {}))

    def signal_meta(self) -> dict[str, Any]:
        """The :func:`signal_meta` dict this container was made from (see :meth:`for_signal`)."""
        extra = self.header.get("signal", {})
        if not isinstance(extra, dict):
            raise BitstreamError(f"header field 'signal' must be an object, found {type(extra).__name__}")
        return {"modality": self.modality, "shape": list(self.shape), **extra}

    def section(self, name: str) -> bytes:
        """The payload of section ``name``; BitstreamError if the file lacks it."""
        try:
            return self.sections[name]
        except KeyError:
            have = ", ".join(self.sections) or "none"
            raise BitstreamError(
                f"{self.codec} file has no section {name!r} (sections: {have})"
            ) from None


def pack(c: Container) -> bytes:
    """Serialise a container to bytes (the exact file content)."""
    if c.modality not in MODALITIES:
        raise InputError(f"container modality must be one of {MODALITIES}, got {c.modality!r}")
    _check_shape(c.shape, InputError)
    codec = c.codec.encode("ascii", "replace")
    if not _NAME_RE.fullmatch(codec):
        raise InputError(f"codec name {c.codec!r} must be 1–{MAX_NAME_LEN} characters of [A-Za-z0-9_.:/-]")
    if not isinstance(c.codec_version, int) or c.codec_version < 0:
        raise InputError(f"codec version must be a non-negative integer, got {c.codec_version!r}")
    head_bytes = _dump_header(c.header)
    if len(c.sections) > MAX_SECTIONS:
        raise InputError(f"{len(c.sections)} sections, more than the limit {MAX_SECTIONS}")

    out = bytearray(MAGIC)
    out.append(FORMAT_VERSION)
    out += b"".join(write_varint(v) for v in _parse_version(c.encoder_version, InputError))
    out += bytes([len(codec)]) + codec + write_varint(c.codec_version)
    out.append(MODALITIES.index(c.modality))
    out += bytes([len(c.shape)]) + b"".join(write_varint(int(v)) for v in c.shape)
    out += write_varint(len(head_bytes)) + head_bytes
    out += write_varint(len(c.sections))
    for name, payload in c.sections.items():
        raw = name.encode("ascii", "replace")
        if not _NAME_RE.fullmatch(raw):
            raise InputError(
                f"section name {name!r} must be 1–{MAX_NAME_LEN} characters of [A-Za-z0-9_.:/-]"
            )
        out.append(len(raw))
        out += raw + write_varint(len(payload)) + bytes(payload)
    out += struct.pack("<I", zlib.crc32(out))
    if len(out) > MAX_FILE_BYTES:
        raise InputError(f"container would be {len(out)} bytes, over the {MAX_FILE_BYTES} limit")
    return bytes(out)


def unpack(data: bytes) -> Container:
    """Parse and validate a ``.inrk`` file; any malformation raises BitstreamError."""
    view, fixed, _, sections = _parse(data)
    return Container(
        **fixed,
        sections={name: bytes(view[a:b]) for name, (a, b) in sections.items()},
    )


def section_sizes(data: bytes) -> dict[str, int]:
    """Bits taken by each part of a file, summing to ``8 * len(data)``.

    Keys: ``"framing"`` (magic, version, the fixed fields, counts, section
    names and lengths, CRC), ``"header"`` (the JSON header and its length
    field) and one entry per section (its payload). Used by ``inrkit info``.
    """
    view, _, (a, b), sections = _parse(data)
    sizes = {"framing": 0, "header": 8 * (b - a)}
    for name, (start, end) in sections.items():
        sizes[name] = 8 * (end - start)
    sizes["framing"] = 8 * len(data) - sum(sizes.values())
    return sizes


def read_file(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> Container:
    """Read and :func:`unpack` a ``.inrk`` file; the size is checked before reading."""
    return read_file_bytes(path, max_bytes)[1]


def read_file_bytes(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, Container]:
    """Like :func:`read_file`, and also the file's bytes (one read serves both)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a .inrk file")
    if not path.is_file():  # a FIFO would block, /dev/zero never end
        raise InputError(f"{path}: is not a regular file (a device, FIFO or socket); expected a .inrk file")
    if size > max_bytes:
        raise BitstreamError(f"{path}: {size} bytes, more than the {max_bytes}-byte limit for a .inrk file")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    try:
        return data, unpack(data)
    except BitstreamError as e:
        raise BitstreamError(f"{path}: {e}") from None


def write_file(path: str | os.PathLike, data: bytes | Container) -> None:
    """Write bytes (or a packed container) atomically: a failure never leaves a partial file."""
    from inrkit.datasets.files import atomic_write_bytes

    atomic_write_bytes(path, pack(data) if isinstance(data, Container) else data)


# -- parsing -------------------------------------------------------------------


def _parse(data: bytes):
    """Validate framing and header. Returns the view, the Container fields except
    sections, the byte span of the header (with its length field), and the
    section spans."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    view = memoryview(data).cast("B")
    n = len(view)
    if n > MAX_FILE_BYTES:
        raise BitstreamError(f"file is {n} bytes, more than the {MAX_FILE_BYTES}-byte limit")
    if n < 4 or bytes(view[:4]) != MAGIC:
        raise BitstreamError(f"not an .inrk file: expected magic {MAGIC!r}, found {bytes(view[:4])!r}")
    if n < 5:
        raise BitstreamError("truncated .inrk file: no format version byte")
    if view[4] != FORMAT_VERSION:
        raise BitstreamError(
            f"unsupported .inrk format version {view[4]}; this inrkit ({ENCODER_VERSION}) "
            f"reads version {FORMAT_VERSION}"
        )
    if n < MIN_FILE_BYTES:
        raise BitstreamError(f"truncated .inrk file: {n} bytes, the smallest valid file is {MIN_FILE_BYTES}")
    stored = struct.unpack("<I", view[n - 4 :])[0]
    if zlib.crc32(view[: n - 4]) != stored:
        raise BitstreamError("checksum mismatch: the file is corrupted or truncated")
    end = n - 4
    view = view[:end]  # nothing below may read the CRC as data

    pos = 5
    version = []
    for part in ("major", "minor", "patch"):
        v, pos = read_varint(view, pos, f"encoder {part} version", 1 << 16)
        version.append(v)
    codec, pos = _read_name(view, pos, "codec name")
    codec_version, pos = read_varint(view, pos, "codec version", (1 << 31) - 1)
    if pos + 2 > end:
        raise BitstreamError("truncated: the file ends inside the fixed fields")
    if view[pos] >= len(MODALITIES):
        raise BitstreamError(f"unknown modality code {view[pos]}; expected 0..{len(MODALITIES) - 1}")
    modality = MODALITIES[view[pos]]
    ndim = view[pos + 1]
    pos += 2
    if not 1 <= ndim <= MAX_SHAPE_DIMS:
        raise BitstreamError(f"shape must have 1–{MAX_SHAPE_DIMS} dimensions, found {ndim}")
    shape = []
    for i in range(ndim):
        v, pos = read_varint(view, pos, f"shape dimension {i}", (1 << 31) - 1)
        shape.append(v)
    _check_shape(shape, BitstreamError)

    header_start = pos
    header_len, pos = read_varint(view, pos, "header length", MAX_HEADER_BYTES)
    if header_len > end - pos:
        raise BitstreamError(f"header length {header_len} exceeds the {end - pos} bytes left")
    header = _parse_header(bytes(view[pos : pos + header_len])) if header_len else {}
    pos += header_len
    header_span = (header_start, pos)

    count, pos = read_varint(view, pos, "section count", MAX_SECTIONS)
    sections: dict[str, tuple[int, int]] = {}
    for i in range(count):
        name, pos = _read_name(view, pos, f"name of section {i} of {count}")
        if name in sections:
            raise BitstreamError(f"duplicate section name {name!r}")
        length, pos = read_varint(view, pos, f"length of section {name!r}")
        if length > end - pos:
            raise BitstreamError(f"section {name!r} declares {length} bytes but only {end - pos} remain")
        sections[name] = (pos, pos + length)
        pos += length
    if pos != end:
        raise BitstreamError(f"{end - pos} unexpected bytes after the last section")
    fixed = {
        "codec": codec,
        "codec_version": codec_version,
        "modality": modality,
        "shape": shape,
        "header": header,
        "encoder_version": ".".join(map(str, version)),
    }
    return view, fixed, header_span, sections


def _read_name(view: memoryview, pos: int, what: str) -> tuple[str, int]:
    if pos >= len(view):
        raise BitstreamError(f"truncated: the file ends before the {what}")
    size = view[pos]
    pos += 1
    if not 1 <= size <= MAX_NAME_LEN or size > len(view) - pos:
        raise BitstreamError(f"bad length {size} for the {what}")
    raw = bytes(view[pos : pos + size])
    if not _NAME_RE.fullmatch(raw):
        raise BitstreamError(f"{what} {raw!r} is not 1–{MAX_NAME_LEN} characters of [A-Za-z0-9_.:/-]")
    return raw.decode("ascii"), pos + size


def _parse_version(text: str, error: type[Exception]) -> tuple[int, int, int]:
    parts = str(text).split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 1 << 16 for p in parts):
        raise error(f"encoder version must look like '0.1.0', got {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _dump_header(header: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON of the codec header; an empty header takes no bytes."""
    if not isinstance(header, dict):
        raise InputError(f"container header must be a dict, got {type(header).__name__}")
    if not header:
        return b""
    _check_keys(header)
    try:
        raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise InputError(f"container header is not JSON-safe (finite numbers, str keys): {e}") from None
    if len(raw) > MAX_HEADER_BYTES:
        raise InputError(f"container header is {len(raw)} bytes, over the {MAX_HEADER_BYTES} limit")
    if _json_depth(raw) > MAX_JSON_DEPTH:
        raise InputError(f"container header nests deeper than {MAX_JSON_DEPTH} levels")
    return raw


def _check_keys(obj: Any, depth: int = 0) -> None:
    """JSON would silently turn non-str keys into strings; refuse them instead."""
    if depth > MAX_JSON_DEPTH:
        raise InputError(f"container header nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise InputError(f"container header keys must be strings, found {k!r}")
            _check_keys(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_keys(v, depth + 1)


def _json_depth(text: bytes) -> int:
    """Maximum nesting depth of JSON text, computed without recursion: strings
    are blanked out, then brackets are summed cumulatively."""
    stripped = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", text)
    import numpy as np

    arr = np.frombuffer(stripped, dtype=np.uint8)
    if arr.size == 0:
        return 0
    steps = np.isin(arr, (0x5B, 0x7B)).astype(np.int64) - np.isin(arr, (0x5D, 0x7D))
    return int(np.cumsum(steps).max(initial=0))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        dup = next(k for k in keys if keys.count(k) > 1)
        raise BitstreamError(f"header JSON has a duplicate key {dup!r}")
    return obj


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BitstreamError(f"header JSON has a non-finite number {text}")
    return value


def _reject_constant(name: str) -> None:
    raise BitstreamError(f"header JSON contains {name}, which is not valid JSON")


def _parse_header(raw: bytes) -> dict[str, Any]:
    if _json_depth(raw) > MAX_JSON_DEPTH:
        raise BitstreamError(f"header JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        head = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_finite_float,
            parse_constant=_reject_constant,
        )
    except BitstreamError:
        raise
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BitstreamError(f"header is not valid UTF-8 JSON: {e}") from None
    if not isinstance(head, dict):
        raise BitstreamError(f"header must be a JSON object, found {type(head).__name__}")
    return head


def _check_shape(shape: Any, error: type[Exception]) -> None:
    if (
        not isinstance(shape, (list, tuple))
        or not 1 <= len(shape) <= MAX_SHAPE_DIMS
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 31 for v in shape)
    ):
        raise error(f"shape must be 1–{MAX_SHAPE_DIMS} positive integers below 2^31, found {shape!r}")


# -- signal metadata ---------------------------------------------------------------


def signal_meta(signal: Signal) -> dict[str, Any]:
    """What a decoder needs to rebuild ``signal`` apart from its samples.

    Keys: ``modality``, ``shape`` (of ``signal.data``), ``bit_depth``, and when
    set ``sample_rate``, ``frame_rate`` and ``channels`` (the source file's
    channel count, from ``signal.meta["channels"]``, when it differs from the
    data's) and ``float`` (true for float WAV sources, so they are written back as
    float). Every codec stores signals this way, so files decode alike.
    """
    meta: dict[str, Any] = {
        "modality": signal.modality,
        "shape": [int(v) for v in signal.data.shape],
        "bit_depth": int(signal.bit_depth),
    }
    if signal.sample_rate:
        meta["sample_rate"] = _number(signal.sample_rate)
    if signal.frame_rate:
        meta["frame_rate"] = _number(signal.frame_rate)
    channels = signal.meta.get("channels")
    if isinstance(channels, int) and channels != signal.channels:
        meta["channels"] = channels
    if signal.meta.get("subtype") in ("FLOAT", "DOUBLE"):
        meta["float"] = True  # a float WAV is written back as float
    return meta


def meta_to_signal(meta: dict[str, Any], data: torch.Tensor) -> Signal:
    """Rebuild a Signal from :func:`signal_meta` output and decoded samples.

    The samples must have the stored shape; malformed metadata is a BitstreamError.
    """
    from inrkit.datasets.signal import Signal

    if not isinstance(meta, dict):
        raise BitstreamError(f"signal metadata must be an object, found {type(meta).__name__}")
    modality, shape = meta.get("modality"), meta.get("shape")
    if modality not in MODALITIES:
        raise BitstreamError(f"signal metadata: unknown modality {modality!r}")
    _check_shape(shape, BitstreamError)
    if list(data.shape) != list(shape):
        raise BitstreamError(f"decoded samples have shape {list(data.shape)}, the file says {shape}")
    bit_depth = meta.get("bit_depth", 8)
    if not isinstance(bit_depth, int) or isinstance(bit_depth, bool) or not 1 <= bit_depth <= 32:
        raise BitstreamError(f"signal metadata: bit_depth must be an integer in 1..32, found {bit_depth!r}")
    rates = {}
    for key in ("sample_rate", "frame_rate"):
        value = meta.get(key)
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1e7
        ):
            raise BitstreamError(f"signal metadata: {key} must be a positive number, found {value!r}")
        rates[key] = value
    extra = {"channels": meta["channels"]} if isinstance(meta.get("channels"), int) else {}
    if not isinstance(meta.get("float", False), bool):
        raise BitstreamError(f"signal metadata: float must be true or false, found {meta['float']!r}")
    if meta.get("float"):
        extra["subtype"] = "FLOAT"
    try:
        return Signal(data, modality, bit_depth=bit_depth, meta=extra, **rates)
    except InputError as e:
        raise BitstreamError(f"signal metadata: {e}") from None


def values_to_signal(template: Signal, values: torch.Tensor) -> Signal:
    """``template.with_values(values)`` for a decoder (``template`` from
    :func:`meta_to_signal`): samples that are not finite can only come from a damaged or
    hostile file (a huge quantization step, say), so they are a BitstreamError."""
    import torch

    if not torch.isfinite(values).all():
        raise BitstreamError("the file decodes to samples that are not finite (NaN or infinite)")
    return template.with_values(values)


def _number(value: float) -> int | float:
    """Integral rates are stored as JSON integers (``44100``, not ``44100.0``)."""
    value = float(value)
    return int(value) if value.is_integer() else value
