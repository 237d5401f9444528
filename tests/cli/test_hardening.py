"""Regressions for the defects an outside test campaign found (one test per defect)."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import inrkit
from inrkit.cli import main
from inrkit.codecs.bitstream.container import pack, unpack
from inrkit.datasets import Signal, load, load_sample_image, save
from inrkit.errors import BitstreamError, InputError
from inrkit.eval.metrics import snr


def test_silent_audio_encodes_and_reports_undefined_metrics_as_na(tmp_path, capsys):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(4000, dtype=np.int16), 16000, subtype="PCM_16")
    out = tmp_path / "s.inrk"
    assert main(["encode", str(path), "-o", str(out), "--codec", "shacira", "--kbps", "24",
                 "--steps", "5", "-q"]) == 0
    line = capsys.readouterr().out
    assert "n/a" in line and out.stat().st_size > 0
    silent = torch.zeros(1, 100)
    assert math.isnan(snr(silent, silent + 0.01)) and snr(silent, silent) == math.inf


def test_frame_rate_beyond_what_writers_store_is_refused(tmp_path):
    with pytest.raises(InputError, match="frame_rate"):
        Signal(torch.rand(2, 3, 8, 8), "video", frame_rate=1e-9)
    frozen = Path(__file__).resolve().parents[1] / "contract" / "frozen" / "nerv.inrk"
    container = unpack(frozen.read_bytes())
    container.header["signal"]["frame_rate"] = 1e-9
    with pytest.raises(BitstreamError, match="frame_rate"):
        inrkit.decode(pack(container))
    decoded = inrkit.decode(frozen)
    save(decoded, tmp_path / "ok.mp4")  # the rate a writer stores stays positive

@pytest.mark.parametrize("seed", ["99999999999999999999999", str(2**64), "-1"])
def test_seeds_beyond_64_bits_are_one_line_errors(tmp_path, seed, capsys):
    image = tmp_path / "a.png"
    save(load_sample_image((0, 0, 8, 8)), image)
    assert main(["encode", str(image), "-o", str(tmp_path / "a.inrk"), "--seed", seed]) == 2
    assert "--seed" in capsys.readouterr().err
    with pytest.raises(InputError, match="seed"):
        inrkit.encode(load_sample_image((0, 0, 8, 8)), "siren", bpp=8.0, seed=2**64)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_float_wav_with_infinite_or_nan_samples_is_refused(tmp_path, bad):
    samples = np.zeros(800, dtype=np.float32)
    samples[10] = bad
    path = tmp_path / "f.wav"
    sf.write(path, samples, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        load(path)


def test_adacode_without_a_rate_uses_a_quality_the_model_has(tmp_path):
    from inrkit.inr.learned.adacode import AdaCode, AdaCodeConfig, save_model

    torch.manual_seed(0)
    model = AdaCode(AdaCodeConfig(widths=(8, 8, 16), codebooks=2, codebook_size=16, code_dim=4,
                                  filler_width=8))
    path = tmp_path / "two.safetensors"
    save_model(model, path)
    data = inrkit.encode(load_sample_image((0, 0, 24, 20)), "adacode", model=str(path))
    assert unpack(data).header["m"] == 2


@pytest.mark.parametrize("changes", [{"mlp_width": 65536}, {"mlp_width": 4096, "mlp_depth": 64},
                                     {"mlp_width": 0}])
def test_shacira_headers_are_bounded_by_parameter_count(changes):
    frozen = Path(__file__).resolve().parents[1] / "contract" / "frozen" / "shacira-image.inrk"
    container = unpack(frozen.read_bytes())
    container.header["arch"].update(changes)
    with pytest.raises(BitstreamError, match="shacira header"):
        inrkit.decode(pack(container))


def _interrupt_after(command: list[str], seconds: float, cwd) -> tuple[int, str]:
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "inrkit", *command], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.timeout(300)
def test_ctrl_c_during_encode_exits_130_and_keeps_the_old_file(tmp_path):
    save(load_sample_image((0, 0, 32, 32)), tmp_path / "crop.png")
    (tmp_path / "k.inrk").write_text("OLD")
    code, err = _interrupt_after(["encode", "crop.png", "-o", "k.inrk", "--codec", "siren",
                                  "--bpp", "4", "--steps", "1000000", "-q"], 12, tmp_path)
    assert code == 130 and "interrupted" in err
    assert (tmp_path / "k.inrk").read_text() == "OLD"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.png", "k.inrk"]


@pytest.mark.timeout(300)
def test_ctrl_c_during_a_sweep_exits_130_and_stores_no_cut_short_point(tmp_path):
    save(load_sample_image((0, 0, 32, 32)), tmp_path / "crop.png")
    code, err = _interrupt_after(["eval", "rd", "--data", "crop.png", "--codecs", "siren",
                                  "--points", "1", "--steps", "1000000", "--out", "rd",
                                  "--quiet"], 12, tmp_path)
    assert code == 130 and "interrupted" in err
    assert not list((tmp_path / "rd").rglob("*.json"))
