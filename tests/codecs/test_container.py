"""The .inrk container: round trips, overhead, and hostile files."""

import json
import os
import struct
import tracemalloc
import zlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inrkit.codecs.bitstream import container as ct
from inrkit.codecs.bitstream.container import (
    Container,
    meta_to_signal,
    pack,
    read_file,
    section_sizes,
    signal_meta,
    unpack,
    write_file,
    write_varint,
)
from inrkit.datasets import Signal
from inrkit.errors import BitstreamError, InputError


def sample() -> Container:
    return Container(
        codec="siren",
        codec_version=2,
        modality="image",
        shape=[3, 16, 24],
        header={"arch": {"width": 32, "depth": 3, "w0": 30.0}, "q": {"b": 8, "pc": 0}, "note": "Grüße"},
        sections={"q.steps": b"\x00\x01\x02\x03", "q.sym": bytes(range(256)) * 3, "empty": b""},
    )


def refix(data: bytes | bytearray) -> bytes:
    """Recompute the CRC so that a mutation reaches the parser behind it."""
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


FIXED = b"\x00\x01\x00" + b"\x01x\x01" + b"\x00" + b"\x03\x03\x04\x04"  # 0.1.0, codec x v1, image, [3, 4, 4]


def build(header_json: bytes, sections: bytes = b"\x00", fixed: bytes = FIXED) -> bytes:
    """A file with hand-written fixed fields, header and section block, valid CRC."""
    body = ct.MAGIC + bytes([ct.FORMAT_VERSION]) + fixed + write_varint(len(header_json)) + header_json + sections
    return body + struct.pack("<I", zlib.crc32(body))


GOOD_HEAD = {"arch": {"width": 32}, "q": {"b": 8}}


def head_bytes(**changes) -> bytes:
    return json.dumps({**GOOD_HEAD, **changes}, separators=(",", ":")).encode()


def test_round_trip_is_exact():
    c = sample()
    data = pack(c)
    back = unpack(data)
    assert back == c
    assert list(back.sections) == list(c.sections)  # order kept
    assert pack(back) == data


def test_fixed_overhead_is_small():
    c = Container("x", 1, "image", [3, 4, 4], {}, {"a": b""})
    data = pack(c)
    sizes = section_sizes(data)
    assert sum(sizes.values()) == 8 * len(data)
    assert sizes["header"] == 8  # an empty header is its one length byte
    assert sizes["framing"] == 8 * 24  # magic, versions, codec, modality, shape, count, section, CRC
    assert len(data) == 25


def test_section_sizes_of_sample():
    data = pack(sample())
    sizes = section_sizes(data)
    assert sizes["q.sym"] == 8 * 768 and sizes["empty"] == 0
    assert sum(sizes.values()) == 8 * len(data)


def test_every_truncation_and_bit_flip_is_detected():
    data = pack(sample())
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            unpack(data[:n])
    for i in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                unpack(bytes(flipped))


def test_extension_is_detected_even_with_fixed_crc():
    data = pack(sample())
    with pytest.raises(BitstreamError):
        unpack(data + b"\0")
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        unpack(refix(data[:-4] + b"junk" + data[-4:]))


def test_magic_and_version_messages():
    data = pack(sample())
    with pytest.raises(BitstreamError, match="magic"):
        unpack(b"\x89PNG" + data[4:])
    future = bytearray(data)
    future[4] = 7
    with pytest.raises(BitstreamError, match=r"version 7.*reads version 1"):
        unpack(refix(future))
    with pytest.raises(BitstreamError):
        unpack(b"")
    with pytest.raises(BitstreamError):
        unpack("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "header, match",
    [
        (b'{"c":NaN}', "NaN"),
        (head_bytes()[:-1] + b',"x":Infinity}', "Infinity"),
        (head_bytes(lr=1).replace(b'"lr":1', b'"lr":1e999'), "non-finite"),
        (head_bytes()[:-1] + b',"q":{}}', "duplicate"),
        (b"[1,2,3]", "object"),
        (b'"text"', "object"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"c":', "JSON"),
        (head_bytes(a=json.loads("[" * 40 + "0" + "]" * 40)), "nests"),
        (b"[" * 100_000 + b"]" * 100_000, "nests"),
        (b'{"n":' + b"9" * 5000 + b"}", "JSON"),  # int parsing limit, a ValueError inside json
    ],
    ids=lambda v: v[:16].decode("ascii", "replace") if isinstance(v, bytes) else None,
)
def test_header_is_parsed_strictly(header, match):
    with pytest.raises(BitstreamError, match=match):
        unpack(build(header))


@pytest.mark.parametrize(
    "fixed, match",
    [
        (FIXED.replace(b"\x01x", b"\x00x"), "codec name"),
        (FIXED.replace(b"\x01x", b"\x01 "), "codec name"),
        (FIXED[:6] + b"\x07" + FIXED[7:], "modality"),
        (FIXED[:7] + b"\x00", "dimensions"),
        (FIXED[:7] + b"\x09" + b"\x01" * 9, "dimensions"),
        (FIXED[:-1] + b"\x00", "shape"),
        (b"\x80\x00" + FIXED[1:], "overlong"),
        (FIXED[:3] + b"\x01\xff" + FIXED[5:], "codec name"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_fixed_fields_are_checked(fixed, match):
    with pytest.raises(BitstreamError, match=match):
        unpack(build(head_bytes(), fixed=fixed))


def test_hand_built_file_parses():
    c = unpack(build(head_bytes()))
    assert (c.codec, c.codec_version, c.modality, c.shape, c.encoder_version) == ("x", 1, "image", [3, 4, 4], "0.1.0")
    assert c.header == GOOD_HEAD and c.sections == {}
    assert unpack(build(b"")).header == {}


def test_huge_declared_lengths_do_not_allocate():
    tracemalloc.start()
    try:
        cases = [
            ct.MAGIC + b"\x01" + FIXED + write_varint(1 << 60),  # header length
            ct.MAGIC + b"\x01" + FIXED + b"\xff" * 9 + b"\x7f",  # 2^70-ish varint
            build(head_bytes(), write_varint(1 << 40)),  # section count
            build(head_bytes(), b"\x01\x01a" + write_varint(1 << 62)),  # section length
            build(head_bytes(), b"\x01\xffa"),  # name length
        ]
        for body in cases:
            with pytest.raises(BitstreamError):
                unpack(refix(body + b"\0\0\0\0"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_section_name_rules():
    with pytest.raises(BitstreamError, match="duplicate section"):
        unpack(build(head_bytes(), b"\x02\x01a\x00\x01a\x00"))
    with pytest.raises(BitstreamError, match="name of section 0 of 1 .* is not 1–64 characters"):
        unpack(build(head_bytes(), b"\x01\x02a\x00\x00"))
    for bad in ("", "x" * 65, "sp ace", "é"):
        with pytest.raises(InputError):
            pack(Container("x", 1, "image", [1, 1, 1], {}, {bad: b""}))


def test_pack_rejects_unsafe_headers():
    for header in ({"x": float("nan")}, {"x": object()}, {1.5: 2}):
        with pytest.raises(InputError):
            pack(Container("x", 1, "image", [1, 1, 1], header, {}))
    with pytest.raises(InputError):
        pack(Container("x", 1, "sound", [1, 1], {}, {}))
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(InputError, match="nests"):
        pack(Container("x", 1, "image", [1, 1, 1], deep, {}))


MUTATIONS = st.sampled_from(["flip", "truncate", "extend", "splice", "overwrite", "random"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=MUTATIONS, fix_crc=st.booleans(), seed=st.integers(0, 2**32 - 1), junk=st.binary(max_size=64))
def test_mutated_files_only_raise_bitstream_error(kind, fix_crc, seed, junk):
    import random

    rnd = random.Random(seed)
    data = bytearray(pack(sample()))
    if kind == "flip":
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
    elif kind == "truncate":
        del data[rnd.randrange(len(data)) :]
    elif kind == "extend":
        data[-4:-4] = junk
    elif kind == "splice":
        a = rnd.randrange(len(data))
        data[a : a + rnd.randrange(1, 32)] = junk
    elif kind == "overwrite":  # aim at the framing and header, where the parser works hardest
        a = rnd.randrange(min(len(data), 200))
        data[a : a + len(junk)] = junk
    else:
        data = bytearray(ct.MAGIC + b"\x01" + junk + os.urandom(4))
    if fix_crc and len(data) >= 4:
        data = bytearray(refix(data))
    try:
        c = unpack(bytes(data))
    except BitstreamError:
        return
    assert isinstance(c, Container) and unpack(pack(c)) == c


def test_read_and_write_file(tmp_path):
    path = tmp_path / "a.inrk"
    write_file(path, sample())
    assert read_file(path) == sample()
    assert os.listdir(tmp_path) == ["a.inrk"]  # no temp file left behind
    with pytest.raises(InputError, match="no such file"):
        read_file(tmp_path / "missing.inrk")
    with pytest.raises(InputError, match="directory"):
        read_file(tmp_path)
    with pytest.raises(BitstreamError, match="limit"):
        read_file(path, max_bytes=100)
    (tmp_path / "bad.inrk").write_bytes(b"INRK\x01garbage")
    with pytest.raises(BitstreamError, match="bad.inrk"):
        read_file(tmp_path / "bad.inrk")


@pytest.mark.parametrize(
    "signal",
    [
        Signal(torch.rand(3, 5, 7), "image", bit_depth=16),
        Signal(torch.rand(2, 3, 4, 5), "video", frame_rate=29.97),
        Signal(torch.rand(2, 100) * 2 - 1, "audio", sample_rate=44100.0, meta={"channels": 1}),
        Signal(torch.rand(1, 50), "audio", bit_depth=32, sample_rate=8000, meta={"subtype": "FLOAT"}),
    ],
)
def test_signal_meta_round_trip(signal):
    c = Container.for_signal("x", 1, signal, {"k": 1}, {"s": b"1"})
    back = unpack(pack(c))
    meta = back.signal_meta()
    assert meta == signal_meta(signal)
    rebuilt = meta_to_signal(meta, signal.data)
    for key in ("modality", "bit_depth", "sample_rate", "frame_rate"):
        assert getattr(rebuilt, key) == getattr(signal, key)
    if "channels" in signal.meta:
        assert meta["sample_rate"] == 44100 and isinstance(meta["sample_rate"], int)
        assert rebuilt.meta["channels"] == 1
    assert rebuilt.meta.get("subtype") == signal.meta.get("subtype")  # float WAVs stay float


def test_meta_to_signal_validates():
    meta = signal_meta(Signal(torch.rand(3, 4, 4), "image"))
    with pytest.raises(BitstreamError, match="shape"):
        meta_to_signal(meta, torch.rand(3, 4, 5))
    for bad in ({"bit_depth": 0}, {"bit_depth": "8"}, {"modality": "x"}, {"frame_rate": -1},
                {"float": 1}):
        with pytest.raises(BitstreamError):
            meta_to_signal({**meta, **bad}, torch.rand(3, 4, 4))
    audio = {"modality": "audio", "shape": [1, 10]}
    with pytest.raises(BitstreamError, match="sample_rate"):
        meta_to_signal(audio, torch.rand(1, 10))


def test_decoded_samples_that_are_not_finite_are_a_bitstream_error():
    from inrkit.codecs.bitstream.container import values_to_signal

    template = meta_to_signal(signal_meta(Signal(torch.rand(3, 2, 2), "image")), torch.zeros(3, 2, 2))
    values = torch.zeros(2, 2, 3)
    assert values_to_signal(template, values).data.shape == (3, 2, 2)
    values[1, 0, 2] = float("inf")  # e.g. a hostile file's huge quantization step
    with pytest.raises(BitstreamError, match="not finite"):
        values_to_signal(template, values)


def test_missing_section_message():
    with pytest.raises(BitstreamError, match="no section 'nope'.*q.steps"):
        sample().section("nope")
