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
