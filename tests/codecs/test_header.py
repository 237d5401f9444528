"""The typed header reader: declared kinds, bounds and presence, one error type."""

from dataclasses import dataclass

import pytest

from inrkit.codecs.bitstream.header import (
    Bool,
    Float,
    Int,
    IntList,
    Text,
    config_kinds,
    read_config,
    read_fields,
)
from inrkit.errors import BitstreamError


@dataclass
class Config:
    width: int
    scale: float = 1.5
    sine: bool = True
    name: str = "a"
    strides: tuple[int, ...] | None = None
    in_dim: int = 2


@pytest.mark.parametrize("kind, good, bad", [
    (Int(1, 8), [1, 8], [0, 9, True, 2.0, "3", None]),
    (Float(0.0, 2.0), [0, 1.5, 2], [-0.1, 2.5, float("nan"), float("inf"), False, "1"]),
    (Bool(), [True, False], [0, 1, None, "true"]),
    (Text(4, ("ab", "cd")), ["ab"], ["ef", "abcde", 3, None]),
    (IntList(1, 4, 3, nullable=True), [[1, 4], [], None], [[0], [1, 2, 3, 4], [True], "1", [1.0]]),
])
def test_kinds_accept_their_values_and_refuse_the_rest(kind, good, bad):
    for value in good:
        kind.read(value, "h.x")
    for value in bad:
        with pytest.raises(BitstreamError, match=r"h\.x"):
            kind.read(value, "h.x")


def test_read_fields_refuses_unknown_and_missing_keys():
    kinds = {"a": Int(0, 1), "b": Int(0, 1)}
    assert read_fields({"a": 1}, kinds, "h", optional={"b"}) == {"a": 1}
    with pytest.raises(BitstreamError, match=r"unknown fields \['c'\]"):
        read_fields({"a": 1, "b": 0, "c": 0}, kinds, "h")
    with pytest.raises(BitstreamError, match=r"lacks \['b'\]"):
        read_fields({"a": 1}, kinds, "h")
    with pytest.raises(BitstreamError, match="must be an object"):
        read_fields([1], kinds, "h")


def test_config_kinds_follow_the_type_hints():
    kinds = config_kinds(Config, {"width": Int(1, 64)})
    assert kinds["width"] == Int(1, 64)
    assert isinstance(kinds["scale"], Float) and isinstance(kinds["sine"], Bool)
    assert isinstance(kinds["name"], Text) and kinds["strides"].nullable


def test_read_config_presence_and_fixed_fields():
    config = read_config(Config, {"width": 8, "strides": [2, 2]}, "arch", fixed={"in_dim": 3})
    assert config == Config(width=8, strides=(2, 2), in_dim=3)
    with pytest.raises(BitstreamError, match=r"lacks \['width'\]"):
        read_config(Config, {}, "arch")
    assert read_config(Config, {"scale": 2.0}, "arch", present="delta", fixed={"width": 4}).scale == 2.0
    with pytest.raises(BitstreamError, match="lacks"):
        read_config(Config, {"width": 8}, "arch", present="all")
    with pytest.raises(BitstreamError, match=r"unknown fields \['in_dim'\]"):  # fixed: not in the file
        read_config(Config, {"width": 8, "in_dim": 2}, "arch", fixed={"in_dim": 3})
    with pytest.raises(BitstreamError, match=r"arch\.width is 70000, beyond"):
        read_config(Config, {"width": 70000}, "arch")
