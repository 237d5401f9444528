"""`inrkit demo`, the README's main job, on a short budget."""

import re

from inrkit.cli import main
from inrkit.datasets import load

MEAN_COLOUR_PSNR = 10.7  # the photo replaced by its mean colour, measured


def test_demo_writes_the_file_and_the_reconstruction_beside_the_classical_codecs(tmp_path, capsys):
    # a step budget, not a time budget: the result must not depend on the machine's load
    assert main(["demo", "--out", str(tmp_path), "--steps", "200"]) == 0
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()
             if re.match(r"\s*\w+: +\d+ bytes", line)}
    assert list(lines) == ["hashgrid", "jpeg", "webp", "avif"]
    size = {name: int(re.search(r"(\d+) bytes", line).group(1)) for name, line in lines.items()}
    bpp = float(re.search(r"([\d.]+) bpp", lines["hashgrid"]).group(1))
    psnr = float(re.search(r"PSNR ([\d.]+) dB", lines["hashgrid"]).group(1))
    measured = (tmp_path / "grace_hopper.inrk").stat().st_size * 8 / (512 * 600)
    assert abs(measured - bpp) < 1e-3 and size["hashgrid"] == (tmp_path / "grace_hopper.inrk").stat().st_size
    assert all(size[name] <= size["hashgrid"] for name in ("jpeg", "webp", "avif"))  # same size or less
    assert psnr > MEAN_COLOUR_PSNR + 2  # a few seconds of fitting must beat a flat image
    assert tuple(load(tmp_path / "grace_hopper_decoded.png").data.shape) == (3, 600, 512)
    assert tuple(load(tmp_path / "grace_hopper_side_by_side.png").data.shape) == (3, 600, 4 * 512)


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
