"""Codec specs (``name:key=value``) and decoding by the header's codec name."""

import pytest

import inrkit
from inrkit.codecs.bitstream.container import Container, pack, unpack
from inrkit.codecs.specs import codec_from_spec, decode, make_codec, parse_spec
from inrkit.datasets.samples import load_sample_image
from inrkit.errors import BitstreamError, InputError


def test_parse_spec_splits_name_and_options():
    assert parse_spec("siren") == ("siren", {})
    assert parse_spec("shacira:log2_hashmap_size=14:decoder_per_level=true") == (
        "shacira", {"log2_hashmap_size": "14", "decoder_per_level": "true"})
    assert parse_spec("adacode:model=runs/m.safetensors")[1] == {"model": "runs/m.safetensors"}


def test_values_take_the_constructors_types():
    shacira = codec_from_spec("shacira:log2_hashmap_size=9:decoder_per_level=true")
    assert shacira.arch == {"log2_hashmap_size": 9, "decoder_per_level": True}
    assert type(shacira.arch["log2_hashmap_size"]) is int
    assert codec_from_spec("x264:chroma=444").chroma == "444"  # a string default keeps the text
    nerv = codec_from_spec("nerv:lr=5e-3:lower_width=6")
    assert nerv.fit.lr == 5e-3 and type(nerv.fit.lr) is float
    assert codec_from_spec("adacode:model=runs/m.safetensors").model_path.name == "m.safetensors"


@pytest.mark.parametrize("spec, match", [
    ("", "a codec spec is a name"),
    ("siren:steps", "options are :key=value"),
    ("siren:=3", "options are :key=value"),
    ("siren:a-b=3", "options are :key=value"),
    ("siren:a=1:a=2", "given twice"),
])
def test_malformed_specs_are_input_errors(spec, match):
    with pytest.raises(InputError, match=match):
        parse_spec(spec)


def test_options_reach_the_constructor_or_are_refused():
    with pytest.raises(InputError, match="takes no option"):
        make_codec("jpeg", colour="red")
    with pytest.raises(InputError, match="unknown option"):
        codec_from_spec("shacira:colour=1")  # **options: the codec checks them itself
    with pytest.raises(InputError, match="takes no model file"):
        codec_from_spec("siren:model=m.safetensors")
    with pytest.raises(InputError, match="unknown codec"):
        codec_from_spec("zip:level=9")


def test_encode_takes_a_spec():
    image = load_sample_image((0, 0, 16, 16))
    data = inrkit.encode(image, "shacira:log2_hashmap_size=6:n_levels=4:finest_resolution=16",
                         lmbda=1e-3, steps=2)
    header = unpack(data).header
    assert header["arch"]["log2_hashmap_size"] == 6 and header["arch"]["n_levels"] == 4


@pytest.mark.parametrize("codec", ["jpeg", "hevc", "mp3"])
def test_a_container_naming_a_classical_codec_is_refused(codec):
    data = pack(Container(codec, 1, "image", [3, 8, 8], {}, {"data": b"\xff\xd8" * 64}))
    with pytest.raises(BitstreamError, match="classical codec"):
        decode(data)
    with pytest.raises(BitstreamError, match="classical codec"):
        inrkit.decode(data)


def test_an_unknown_codec_is_a_bitstream_error():
    with pytest.raises(BitstreamError, match="does not have"):
        decode(pack(Container("zip", 1, "image", [3, 8, 8], {}, {})))
