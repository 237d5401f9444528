"""EncodeOptions refuses budgets no encoder can honour, for every codec at once."""

import pytest
import torch

from inrkit import api
from inrkit.codecs import EncodeOptions
from inrkit.datasets.samples import load_sample_image
from inrkit.errors import InputError


@pytest.mark.parametrize(
    ("options", "match"),
    [({"steps": -1}, "steps"), ({"time_budget": 0}, "time budget"), ({"time_budget": -5.0}, "time budget"),
     ({"time_budget": float("nan")}, "time budget")],
)  # fmt: skip
def test_bad_budgets_are_input_errors(options, match):
    with pytest.raises(InputError, match=match):
        EncodeOptions(**options)
    with pytest.raises(InputError, match=match):
        api.encode(load_sample_image((0, 0, 16, 16)), "jpeg", quality=3, **options)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"steps": "3"}, "whole number"), ({"steps": 2.5}, "whole number"), ({"steps": True}, "whole number"),
     ({"time_budget": "10"}, "number of seconds")],
)  # fmt: skip
def test_budgets_of_the_wrong_type_are_input_errors(options, match):
    with pytest.raises(InputError, match=match):
        EncodeOptions(**options)


def test_codec_options_are_checked_against_the_codec():
    image = load_sample_image((0, 0, 16, 16))
    with pytest.raises(InputError, match="'siren' takes no model file; only the learned codecs do"):
        api.encode(image, "siren", bpp=4.0, model="m.safetensors")
    data = api.encode(image, "siren", bpp=4.0, steps=5)
    with pytest.raises(InputError, match="takes no model file"):
        api.decode(data, model="m.safetensors")
    with pytest.raises(InputError, match="takes no option.s. colour"):
        api.encode(image, "jpeg", quality=3, colour="red")


def test_zero_steps_and_no_budget_are_allowed():
    assert EncodeOptions(steps=0).steps == 0 and EncodeOptions().time_budget is None


@pytest.mark.parametrize("codec", ["siren", "hashgrid", "shacira"])
def test_zero_steps_are_refused_by_codecs_that_fit(codec):
    # Read as "the default" before, which silently fitted 600–2000 steps.
    with pytest.raises(InputError, match="needs at least 1 step"):
        api.encode(load_sample_image((0, 0, 16, 16)), codec, bpp=4.0, steps=0)


def test_encode_takes_a_signal():
    with pytest.raises(InputError, match="takes an inrkit Signal"):
        api.encode(load_sample_image((0, 0, 16, 16)).data, "siren")


def test_a_codec_without_presets_asks_for_a_rate():
    from inrkit.datasets import Signal

    audio = Signal(torch.zeros(1, 800), "audio", sample_rate=8000)
    with pytest.raises(InputError, match="'siren-audio' has no quality presets; give a rate as kbps"):
        api.encode(audio, "siren-audio")
    with pytest.raises(InputError, match="handles audio, not image"):  # the modality is checked first
        api.encode(load_sample_image((0, 0, 16, 16)), "siren-audio")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused_by_the_options_every_encoder_takes():
    with pytest.raises(InputError, match="CUDA is not available here"):
        EncodeOptions(device="cuda")


@pytest.mark.parametrize(
    ("call", "match"),
    [(lambda: api.load(None), "load.. takes a path"), (lambda: api.load(5), "load.. takes a path"),
     (lambda: api.decode(5), "decode.. takes the file's bytes or its path, got int"),
     (lambda: api.save(b"x", None), "save.. takes a path")],
)  # fmt: skip
def test_api_paths_of_the_wrong_type_are_input_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()


@pytest.mark.parametrize("name", ["adacode", "vcinr", "rvqgan"])
def test_learned_codecs_share_their_model_file_handling(name):
    from inrkit.codecs.base import LearnedCodec
    from inrkit.errors import ModelError
    from inrkit.registry import CODECS

    cls = CODECS.get(name)
    assert issubclass(cls, LearnedCodec)
    with pytest.raises(InputError, match="model takes the path of a model file, got int"):
        cls(model=123)
    with pytest.raises(ModelError, match=f"needs a trained model file.*inrkit train {name}"):
        cls()._model()
