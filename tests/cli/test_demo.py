"""`inrkit demo`, the README's main job, on a short budget."""

import re

from inrkit.cli import main
from inrkit.datasets import load

MEAN_COLOUR_PSNR = 10.7  # the photo replaced by its mean colour, measured


def test_demo_writes_the_file_and_the_reconstruction(tmp_path, capsys):
    # a step budget, not a time budget: the result must not depend on the machine's load
    assert main(["demo", "--out", str(tmp_path), "--steps", "200"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("hashgrid:"))
    bpp = float(re.search(r"([\d.]+) bpp", line).group(1))
    psnr = float(re.search(r"PSNR ([\d.]+) dB", line).group(1))
    measured = (tmp_path / "grace_hopper.inrk").stat().st_size * 8 / (512 * 600)
    assert abs(measured - bpp) < 1e-3
    assert psnr > MEAN_COLOUR_PSNR + 2  # a few seconds of fitting must beat a flat image
    assert tuple(load(tmp_path / "grace_hopper_decoded.png").data.shape) == (3, 600, 512)


def test_demo_refuses_bad_codecs_and_outputs_before_making_anything(tmp_path, capsys):
    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    cases = [
        (["--out", str(a_file)], "afile: is a file"),
        (["--out", str(tmp_path / "d1"), "--codec", "jpeg"], "'jpeg' is a classical reference"),
        (["--out", str(tmp_path / "d2"), "--codec", "nerv"], "'nerv' handles video, not image"),
        (["--out", str(tmp_path / "d3"), "--codec", "bogus"], "bogus"),
    ]
    for argv, message in cases:
        assert main(["demo", *argv, "--steps", "5"]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] and a_file.read_text() == "mine"
