"""The inrkit command line, driven through main(argv) as CompressAI's tests do."""

import json
import re

import pytest

from inrkit import InputError, api
from inrkit.cli import main
from inrkit.datasets import load, load_sample_image, save
from inrkit.eval.metrics import image_metrics


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "crop.png"
    save(load_sample_image(crop=(120, 160, 40, 40)), path)
    return path


@pytest.fixture(scope="module")
def encoded(image_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("enc") / "crop.inrk"
    assert main(["encode", str(image_file), "-o", str(out), "--codec", "hashgrid",
                 "--bpp", "6", "--steps", "60", "--seed", "3", "-q"]) == 0
    return out


def test_encode_summary_matches_the_decoded_file(image_file, encoded, tmp_path, capsys):
    # Re-run encode to capture its summary line (module fixture output is not captured here).
    out = tmp_path / "again.inrk"
    assert main(["encode", str(image_file), "-o", str(out), "--codec", "hashgrid",
                 "--bpp", "6", "--steps", "60", "--seed", "3", "-q"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    bpp = float(re.search(r"([\d.]+) bpp", line).group(1))
    psnr = float(re.search(r"PSNR ([\d.]+) dB", line).group(1))
    assert out.read_bytes() == encoded.read_bytes()  # seeded: the same file twice
    png = tmp_path / "decoded.png"
    assert main(["decode", str(out), "-o", str(png)]) == 0
    original, decoded = load(image_file), load(png)
    assert psnr == pytest.approx(image_metrics(original, decoded)["psnr-rgb"], abs=0.01)
    assert bpp == pytest.approx(8 * out.stat().st_size / original.num_samples, abs=1e-3)


def test_decode_twice_gives_identical_files(encoded, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["decode", str(encoded), "-o", str(a)]) == 0
    assert main(["decode", str(encoded), "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_decode_scale_two(encoded, tmp_path):
    out = tmp_path / "big.png"
    assert main(["decode", str(encoded), "-o", str(out), "--scale", "2"]) == 0
    assert tuple(load(out).data.shape) == (3, 80, 80)


def test_info_table_and_json(encoded, capsys):
    assert main(["info", str(encoded)]) == 0
    text = capsys.readouterr().out
    assert "hashgrid" in text and "bpp" in text
    assert main(["info", str(encoded), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["codec"] == "hashgrid" and report["modality"] == "image"
    assert report["shape"] == [3, 40, 40]
    assert sum(report["bits_per_section"].values()) == 8 * encoded.stat().st_size
    assert report["bpp"] == pytest.approx(8 * encoded.stat().st_size / 1600)
    assert report["encoder"].startswith("inrkit ")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_missing_input_is_one_line_exit_2(tmp_path, capsys):
    code = main(["encode", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.inrk")])
    assert code == 2
    assert "nope.png" in _error_line(capsys)
    assert not (tmp_path / "x.inrk").exists()


def test_unknown_codec_is_one_line_exit_2(image_file, tmp_path, capsys):
    code = main(["encode", str(image_file), "-o", str(tmp_path / "x.inrk"), "--codec", "zip"])
    assert code == 2
    line = _error_line(capsys)
    assert "unknown codec 'zip'; encode takes: adacode" in line and "jpeg" not in line


def test_corrupt_file_is_one_line_exit_3_and_no_output(encoded, tmp_path, capsys):
    bad = tmp_path / "bad.inrk"
    data = bytearray(encoded.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.png"
    assert main(["decode", str(bad), "-o", str(out)]) == 3
    line = _error_line(capsys)
    assert "bad.inrk: checksum mismatch" in line
    assert not out.exists()


def test_not_an_inrk_file(image_file, tmp_path, capsys):
    assert main(["info", str(image_file)]) == 3
    assert "crop.png: not an .inrk file: expected magic b'INRK'" in _error_line(capsys)


def test_classical_codecs_are_refused_before_anything_is_written(image_file, tmp_path, capsys):
    out = tmp_path / "x.inrk"
    assert main(["encode", str(image_file), "-o", str(out), "--codec", "jpeg", "--bpp", "2"]) == 2
    line = _error_line(capsys)
    assert "'jpeg' is a classical reference" in line and "siren" in line and "webp" not in line
    assert not out.exists()


def test_a_video_option_on_an_image_file_is_one_line_exit_2(encoded, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main(["decode", str(encoded), "-o", str(out), "--frames", "0:1"]) == 2
    assert "hashgrid image files decode with scale, not frames" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line_exit_2(image_file, tmp_path, capsys):
    out = tmp_path / "x.inrk"
    assert main(["encode", str(image_file), "-o", str(out), "--device", "cuda", "--steps", "3"]) == 2
    assert "CUDA is not available here" in _error_line(capsys)
    assert not out.exists()


def test_an_unreachable_rate_target_is_pointed_out(image_file, tmp_path, capsys):
    out = tmp_path / "x.inrk"
    assert main(["encode", str(image_file), "-o", str(out), "--codec", "siren", "--bpp", "0.01",
                 "--steps", "3", "-q"]) == 0
    err = capsys.readouterr().err
    assert "is more than 10 % above the --bpp target of 0.01" in err
    assert out.exists()


def test_a_rate_target_beyond_the_codec_is_pointed_out(image_file, tmp_path, capsys):
    out = tmp_path / "x.inrk"  # 3 steps leave SHACIRA's latents near zero: far below 20 bpp
    assert main(["encode", str(image_file), "-o", str(out), "--codec", "shacira", "--bpp", "20",
                 "--steps", "3", "-q"]) == 0
    assert "is more than 10 % below the --bpp target of 20" in capsys.readouterr().err
    assert out.exists()


def test_refuses_to_overwrite_its_input(image_file, capsys):
    before = image_file.read_bytes()
    assert main(["encode", str(image_file), "-o", str(image_file), "--steps", "5"]) == 2
    assert "overwrite" in _error_line(capsys)
    assert image_file.read_bytes() == before


def test_bad_argument_values_exit_2_in_one_line(image_file, tmp_path, capsys):
    for argv in (["--bpp", "-1"], ["--quality", "9"], ["--bpp", "x"], ["--bpp", "1", "--quality", "2"],
                 ["--frames", "2"], ["--resize", "axb"], ["--bogus"]):  # fmt: skip
        assert main(["encode", str(image_file), "-o", str(tmp_path / "x.inrk"), *argv]) == 2
        line = _error_line(capsys)  # not argparse's usage text
        assert line.startswith("inrkit: error: inrkit encode: ") and "see inrkit encode --help" in line
    assert main(["demo", "--steps", "0"]) == 2 and "must be positive" in _error_line(capsys)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(InputError, match=r"nope\.png: no such file"):
        main(["--debug", "encode", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.inrk")])


def test_api_save_and_decode_path(encoded, tmp_path):
    copy = api.save(encoded.read_bytes(), tmp_path / "copy.inrk")
    assert api.decode(copy).data.shape == (3, 40, 40)


def test_a_fresh_process_prints_only_the_error_line(image_file, tmp_path):
    # In a new interpreter the codec modules import CompressAI for the first time;
    # nothing it warns about at import time may reach the user's terminal.
    import subprocess
    import sys

    out = tmp_path / "x.inrk"
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from inrkit.cli import main; sys.exit(main(sys.argv[1:]))",
         "encode", str(image_file), "-o", str(out), "--codec", "hnerv"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["inrkit: error: codec 'hnerv' handles video, not image"]
    assert not out.exists()


def test_a_closed_pipe_ends_quietly(encoded):
    # `inrkit info x.inrk | head -1`: the reader has gone before the table is written.
    import subprocess
    import sys

    reader = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)
    reader.wait(timeout=30)
    writer = subprocess.run(
        [sys.executable, "-c", "import sys; from inrkit.cli import main; sys.exit(main(sys.argv[1:]))",
         "info", str(encoded), "--json"],
        stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=120,
    )
    reader.stdin.close()
    assert writer.returncode == 141
    assert writer.stderr == ""


def test_refuses_to_write_into_an_input_folder_of_frames(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        save(load_sample_image(crop=(100 + i, 100, 16, 16)), frames / f"f{i}.png")
    before = sorted(p.name for p in frames.iterdir())
    assert main(["encode", str(frames), "-o", str(frames / "clip.inrk"), "--steps", "3"]) == 2
    assert "into the input folder" in _error_line(capsys)
    assert sorted(p.name for p in frames.iterdir()) == before


def test_an_output_named_like_media_is_refused(image_file, tmp_path, capsys):
    out = tmp_path / "photo.png"
    assert main(["encode", str(image_file), "-o", str(out), "--steps", "3"]) == 2
    assert "encode writes an .inrk file, not image" in _error_line(capsys)
    assert not out.exists()


def test_gray_with_alpha_gets_a_summary(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "la.png"
    Image.new("LA", (12, 12), (128, 200)).save(path)
    out = tmp_path / "la.inrk"
    assert main(["encode", str(path), "-o", str(out), "--codec", "siren", "--steps", "5", "-q"]) == 0
    assert re.search(r"PSNR \d+\.\d\d dB", capsys.readouterr().out) and out.exists()


def test_frame_ranges_may_be_open_ended():
    from inrkit.cli import _parse_range

    assert _parse_range("10:42") == (10, 42) and _parse_range(":32") == (0, 32)
    assert _parse_range("10:") == (10, None)


def test_an_output_format_the_modality_cannot_take_is_refused_before_decoding(encoded, tmp_path, capsys,
                                                                             monkeypatch):
    from inrkit import api

    monkeypatch.setattr(api, "decode", lambda *a, **k: pytest.fail("decoded before checking the output"))
    out = tmp_path / "out.wav"
    assert main(["decode", str(encoded), "-o", str(out)]) == 2
    assert "cannot write image as '.wav'; image is written as" in _error_line(capsys)
    assert not out.exists()


def test_an_output_below_a_file_says_so(encoded, image_file, tmp_path, capsys):
    out = image_file.parent / "crop.png" / "x.png"
    assert main(["decode", str(encoded), "-o", str(out)]) == 2
    assert "crop.png is a file, not a folder" in _error_line(capsys)


def test_one_output_flag_vocabulary_and_python_m(image_file, encoded, tmp_path):
    """``-o`` / ``--out`` name the output of encode, decode, eval and train alike (``--output``
    is still read), and ``python -m inrkit`` is the same command line."""
    import subprocess
    import sys

    out = tmp_path / "a.inrk"
    assert main(["encode", str(image_file), "--out", str(out), "--codec", "siren", "--bpp", "6",
                 "--steps", "5", "-q"]) == 0 and out.stat().st_size > 0
    assert main(["decode", str(encoded), "--out", str(tmp_path / "a.png")]) == 0
    assert main(["decode", str(encoded), "--output", str(tmp_path / "b.png")]) == 0
    version = subprocess.run([sys.executable, "-m", "inrkit", "--version"], capture_output=True,
                             text=True, check=True)
    from inrkit.version import __version__

    assert version.stdout.strip() == f"inrkit {__version__}"
