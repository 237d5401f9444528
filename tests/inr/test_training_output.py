"""``inrkit.inr.train.common.check_output``: what a trainer refuses before it starts."""

import pytest

from inrkit.errors import InputError
from inrkit.inr.train.adacode import main as train_adacode
from inrkit.inr.train.common import check_output


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(b"png")
    (folder / "sub" / "b.train.safetensors").write_bytes(b"x")
    return folder


def test_refuses_to_overwrite_training_files(data):
    with pytest.raises(InputError, match="would overwrite"):
        check_output(data / "a.png", data)
    with pytest.raises(InputError, match="would overwrite"):  # through its training state
        check_output(data / "sub" / "b.safetensors", data)
    with pytest.raises(InputError, match="would overwrite"):
        check_output(data / "a.png", data / "a.png")  # --data may be one file
    check_output(data / "model.safetensors", data)  # a new file beside the data is fine


def test_refuses_folders_and_unwritable_places(data, tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        check_output(data, tmp_path / "elsewhere")
    with pytest.raises(InputError, match="cannot write"):
        check_output(data / "a.png" / "m.safetensors", tmp_path / "elsewhere")
    check_output(tmp_path / "new" / "deeper" / "m.safetensors", data)
    assert not (tmp_path / "new").exists()  # made only when a checkpoint is written


def test_a_trainer_leaves_its_input_and_makes_no_folder_on_failure(data, tmp_path):
    with pytest.raises(InputError, match="would overwrite"):
        train_adacode(["--data", str(data), "--out", str(data / "a.png")])
    assert (data / "a.png").read_bytes() == b"png"
    with pytest.raises(InputError, match="a.png"):  # b"png" is no image: fails after the output check
        train_adacode(["--data", str(data), "--out", str(tmp_path / "made" / "m.safetensors")])
    assert not (tmp_path / "made").exists()
