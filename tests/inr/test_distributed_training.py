"""The trainers under torchrun: two CPU processes (gloo), tiny models, a few steps.

The single-process paths are tested beside each trainer; this runs the
process-group code (``inrkit.training.distributed``, DDP or the hand-made
gradient averaging, the agreed stopping flags) that only a real launch reaches.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from safetensors import safe_open

from inrkit.datasets.image import write_image
from inrkit.datasets.samples import load_sample_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "images").mkdir()
    for i, (top, left) in enumerate([(60, 80), (300, 200), (180, 350)]):
        write_image(load_sample_image((top, left, 64, 64)), root / "images" / f"c{i}.png")
    (root / "audio").mkdir()
    t = np.arange(4000) / 8000
    sf.write(root / "audio" / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 8000)
    noise = 0.1 * np.random.default_rng(0).standard_normal((6000, 2))
    sf.write(root / "audio" / "noise.flac", noise, 16000)
    return root


TRAINERS = {
    "vcinr": (
        "images",
        "--modality image --steps 3 --prior-steps 2 --patch 8 --width 16 --depth 2 "
        "--latent-dim 4 --rank 2 --batch-size 4 --crop 2 --crops 3 --prior-batch 2 "
        "--points 16 --lambdas 0.01,0.1 --prior-warmup 5",
    ),
    "adacode": (
        "images",
        "--crop 32 --widths 8,8,16 --codebooks 3 --codebook-size 16 --code-dim 4 "
        "--batch-size 3 --refresh-every 3 --log-every 1000 --stage1-steps 6 --stage2-steps 4",
    ),
    "rvqgan": (
        "audio",
        "--steps 2 --sample-rate 8000 --encoder-dim 4 --encoder-rates 2,4 --decoder-dim 32 "
        "--decoder-rates 4,2 --n-codebooks 3 --codebook-size 16 --codebook-dim 4 "
        "--disc-width 0.0625 --batch-size 2 --segment-seconds 0.3",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_two_process_training_writes_a_loadable_model(name, data, tmp_path):
    folder, flags = TRAINERS[name]
    out = tmp_path / f"{name}.safetensors"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", f"inrkit.inr.{name}_train", "--data", str(data / folder), "--out", str(out),
        *flags.split(), "--threads", "1", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote") == 1  # rank 0 alone reports and writes
    module = __import__(f"inrkit.inr.{name}", fromlist=["load_model"])
    model, digest = module.load_model(out)
    assert digest and sum(p.numel() for p in model.parameters()) > 0
    with safe_open(str(out), framework="pt") as f:
        assert json.loads(f.metadata()["training"])
