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


@pytest.fixture
def frozen_siren():
    return Path(__file__).resolve().parents[1] / "contract" / "frozen" / "siren.inrk"


def test_outputs_that_are_not_regular_files_are_refused_not_replaced(tmp_path, frozen_siren):
    import os
    import stat

    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    assert main(["decode", str(frozen_siren), "-o", str(fifo)]) == 2
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    locked = tmp_path / "locked.png"
    locked.write_bytes(b"KEEP")
    locked.chmod(0o444)
    assert main(["decode", str(frozen_siren), "-o", str(locked)]) == 2
    assert locked.read_bytes() == b"KEEP" and stat.S_IMODE(locked.stat().st_mode) == 0o444
    if Path("/dev/null").exists():
        link_to_device = tmp_path / "null.png"
        link_to_device.symlink_to("/dev/null")
        assert main(["decode", str(frozen_siren), "-o", str(link_to_device)]) == 2
        assert link_to_device.is_symlink()


def test_a_symlinked_output_is_followed_and_the_link_kept(tmp_path, frozen_siren):
    target = tmp_path / "real.png"
    target.write_bytes(b"OLD")
    target.chmod(0o640)
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert main(["decode", str(frozen_siren), "-o", str(link)]) == 0
    assert link.is_symlink() and target.read_bytes()[:4] == b"\x89PNG"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)  # the file keeps its permissions


def test_inputs_that_are_not_regular_files_are_refused_at_once(tmp_path, capsys):
    import os

    fifo = tmp_path / "p.inrk"
    os.mkfifo(fifo)  # reading it would block forever
    for command in (["decode", str(fifo), "-o", str(tmp_path / "x.png")], ["info", str(fifo)]):
        assert main(command) == 2
        assert "not a regular file" in capsys.readouterr().err
    if Path("/dev/zero").exists():
        assert main(["info", "/dev/zero"]) == 2


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path, frozen_siren):
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    out = tmp_path / "frames.png"
    stale_file = tmp_path / f".inrkit-tmp-frames.png.{dead}.0a1b2c3d.png"
    stale_folder = tmp_path / f".inrkit-tmp-frames.png.{dead}.0a1b2c3d"
    stale_file.write_bytes(b"half")
    stale_folder.mkdir()
    (stale_folder / "f0001.png").write_bytes(b"half")
    live = tmp_path / f".inrkit-tmp-frames.png.{os.getpid()}.0a1b2c3d.png"  # a live writer's: kept
    live.write_bytes(b"busy")
    assert main(["decode", str(frozen_siren), "-o", str(out)]) == 0
    assert out.is_file() and not stale_file.exists() and not stale_folder.exists() and live.exists()


@pytest.mark.timeout(300)
def test_sigterm_during_a_write_leaves_no_temporary(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    save(load_sample_image((0, 0, 32, 32)), tmp_path / "crop.png")
    proc = subprocess.Popen([sys.executable, "-m", "inrkit", "encode", "crop.png", "-o", "k.inrk",
                             "--codec", "siren", "--bpp", "4", "--steps", "1000000", "-q"],
                            cwd=tmp_path, stderr=subprocess.PIPE)
    time.sleep(12)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.png"]


def test_decode_caps_the_work_a_file_asks_for(tmp_path, frozen_siren, capsys):
    container = unpack(frozen_siren.read_bytes())
    container.shape = [3, 7000, 7000]  # a 557-byte file declaring 49 Mpx decoded for a minute
    huge = tmp_path / "huge.inrk"
    huge.write_bytes(pack(container))
    assert main(["decode", str(huge), "-o", str(tmp_path / "h.png"), "--max-pixels", "1M"]) == 2
    assert "--max-pixels" in capsys.readouterr().err
    assert main(["decode", str(huge), "-o", str(tmp_path / "h.png"), "--max-samples", "10M"]) == 2
    assert main(["decode", str(frozen_siren), "-o", str(tmp_path / "s.png"), "--max-pixels", "320"]) == 0
    with pytest.raises(InputError, match="pixels per picture"):
        inrkit.decode(frozen_siren, scale=2.0, max_pixels=320)
    assert not (tmp_path / "h.png").exists()


def test_help_and_info_do_not_import_torch(frozen_siren):
    """``--help`` and ``info`` import only what they need (they took 10-16 s when
    ``inrkit.eval`` imported torch, bjontegaard and pyplot before parsing)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom inrkit.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('torch' in sys.modules, 'matplotlib' in sys.modules)\n")
    for command in (["--help"], ["eval", "--help"], ["train", "--help"], ["info", str(frozen_siren)]):
        out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True,
                             check=True).stdout.split()
        assert out[-2:] == ["False", "False"], command


def test_every_refusal_is_one_line(tmp_path, capsys):
    from inrkit.arguments import run_command
    from inrkit.errors import ModelError

    def refuse(argv):
        raise ModelError("model file 'm.safetensors' is not readable:\n  header too large\n  (offset 8)")

    assert run_command(refuse, []) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "header too large (offset 8)" in err
