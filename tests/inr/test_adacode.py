"""M-AdaCode model and trainer: VQ gradients, masking, weight filling, two-stage training."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from inrkit.datasets.samples import load_sample_image
from inrkit.errors import InputError
from inrkit.inr.learned.adacode import (
    AdaCode,
    AdaCodeConfig,
    VectorQuantizer,
    WeightFiller,
    keep_top,
    load_model,
)
from inrkit.inr.train.adacode import kmeans, main
from inrkit.inr.train.common import training_state_path

TINY = dict(widths=(8, 8, 16), codebooks=3, codebook_size=16, code_dim=4, filler_width=8)


def test_vq_straight_through_and_losses():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, beta=0.25)
    z = torch.randn(2, 4, 3, 5, requires_grad=True)
    out = vq(z)
    codewords = vq.embedding.weight[out.indices].permute(0, 3, 1, 2)
    torch.testing.assert_close(out.quantized, codewords)
    # nearest codeword, by brute force
    d = (z.detach()[:, None] - vq.embedding.weight[None, :, :, None, None]).square().sum(2)
    assert torch.equal(out.indices, d.argmin(1))
    # straight-through: the quantized output passes gradients to z unchanged
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad((out.quantized * g).sum(), z, retain_graph=True)
    torch.testing.assert_close(grad, g)
    # losses: codebook term moves only the used codewords, commitment pulls z (β = 0.25)
    out.loss.sum().backward()
    used = torch.zeros(16, dtype=torch.bool)
    used[out.indices.unique()] = True
    row_grad = vq.embedding.weight.grad.abs().sum(1)
    assert (row_grad[~used] == 0).all() and (row_grad[used] > 0).all()
    expected = 0.25 * 2 * (z.detach() - codewords.detach()) / (4 * 3 * 5)
    torch.testing.assert_close(z.grad, expected)


def test_keep_top_exactly_m_largest_ties_to_lower_index():
    torch.manual_seed(1)
    w = torch.rand(2, 5, 4, 3).softmax(1)
    for m in range(1, 6):
        keep = keep_top(w, m)
        assert (keep.sum(1) == m).all()
        kept_min = w.masked_fill(~keep, 2).amin(1)
        dropped_max = w.masked_fill(keep, -1).amax(1)
        assert (kept_min >= dropped_max).all()
    tied = torch.tensor([0.3, 0.2, 0.3, 0.2]).view(1, 4, 1, 1)
    assert keep_top(tied, 1).view(-1).tolist() == [True, False, False, False]
    assert keep_top(tied, 3).view(-1).tolist() == [True, True, True, False]
    with pytest.raises(ValueError):
        keep_top(w, 0)


def test_weight_filler_stays_on_simplex_and_keeps_kept_weights():
    torch.manual_seed(2)
    filler = WeightFiller(channels=6, codebooks=4, width=8)
    w = torch.rand(2, 4, 3, 3).softmax(1)
    feature = torch.randn(2, 6, 3, 3)
    for m in range(1, 5):
        keep = keep_top(w, m)
        full = filler(w, keep, feature)
        assert torch.equal(full[keep], w[keep])
        assert (full >= 0).all()
        torch.testing.assert_close(full.sum(1), torch.ones(2, 3, 3))
    # the filled weights depend on the kept ones (re-predicted, not constant)
    keep = keep_top(w, 2)
    other = filler(w * 0.5, keep, feature)
    assert not torch.allclose(other[~keep], filler(w, keep, feature)[~keep])


def test_quantized_weights_straight_through():
    model = AdaCode(AdaCodeConfig(**TINY, weight_bits=3))
    w = torch.rand(5, requires_grad=True)
    q = model.quantize_weights(w)
    torch.testing.assert_close(q * 7, (q * 7).round())
    (grad,) = torch.autograd.grad(q.sum(), w)
    torch.testing.assert_close(grad, torch.ones(5))


def test_stage1_routes_each_crop_through_its_codebook_only():
    torch.manual_seed(3)
    model = AdaCode(AdaCodeConfig(**TINY))
    x = torch.rand(2, 3, 16, 16)
    out = model(x, groups=torch.tensor([1, 1]))
    assert out.image.shape == x.shape
    (out.image.square().mean() + out.vq_loss.sum()).backward()
    grads = [q.embedding.weight.grad for q in model.quantizers]
    assert grads[0] is None or grads[0].abs().sum() == 0
    assert grads[2] is None or grads[2].abs().sum() == 0
    assert grads[1].abs().sum() > 0
    assert model.weight_predictor.head.weight.grad is None


def test_compress_decompress_matches_forward():
    torch.manual_seed(4)
    model = AdaCode(AdaCodeConfig(**TINY)).eval()
    x = torch.rand(1, 3, 24, 32)
    for m in (1, 2, 3):
        codes = model.compress(x, m)
        assert codes.indices.shape == (1, 3, 6, 8) and (codes.keep.sum(1) == m).all()
        with torch.no_grad():
            ref = model(x, m=m).image
        torch.testing.assert_close(model.decompress(codes), ref, atol=1e-5, rtol=1e-5)


def test_kmeans_separates_clusters():
    gen = torch.Generator().manual_seed(0)
    pts = torch.cat([torch.randn(50, 2, generator=gen) * 0.1 + c for c in (0.0, 5.0, -5.0)])
    centres = kmeans(pts, 3, gen)
    assert sorted(round(v) for v in centres[:, 0].tolist()) == [-5, 0, 5]


@pytest.fixture
def crops_dir(tmp_path):
    sig = load_sample_image()
    folder = tmp_path / "data"
    folder.mkdir()
    for i, (top, left) in enumerate([(60, 80), (300, 200), (180, 350)]):
        x = sig.data[:, top : top + 64, left : left + 64]
        Image.fromarray((x.permute(1, 2, 0) * 255).round().byte().numpy()).save(
            folder / f"c{i}.png"
        )
    return folder


def _args(data, out, *extra):
    return [
        "--data", str(data), "--out", str(out), "--crop", "32", "--widths", "8,8,16",
        "--codebooks", "3", "--codebook-size", "16", "--code-dim", "4", "--batch-size", "3",
        "--refresh-every", "3", "--threads", "1", "--no-progress", "--log-every", "1000", *extra,
    ]  # fmt: skip


def test_train_two_stages_and_resume(crops_dir, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(_args(crops_dir, out, "--stage1-steps", "6", "--stage2-steps", "4")) == 0
    model, digest = load_model(out)
    assert model.config.codebooks == 3 and training_state_path(out).is_file()
    assert "trained 6 + 4 steps" in capsys.readouterr().out
    # dead-codeword refresh re-seeded the untrained U(-1/N, 1/N) codebooks from data
    assert model.quantizers[0].embedding.weight.abs().max() > 1 / 16
    before = {k: v.clone() for k, v in model.state_dict().items() if "embedding" in k}
    assert (
        main(_args(crops_dir, out, "--stage1-steps", "6", "--stage2-steps", "7", "--resume")) == 0
    )
    assert "trained 6 + 7 steps" in capsys.readouterr().out
    resumed, digest2 = load_model(out)
    assert digest2 != digest
    for k, v in before.items():  # stage 2 keeps the codebooks frozen
        assert torch.equal(resumed.state_dict()[k], v)


def test_train_rejects_bad_arguments(crops_dir, tmp_path):
    with pytest.raises(InputError, match="multiple of the downsampling"):
        main(_args(crops_dir, tmp_path / "m.safetensors", "--crop", "30"))
    with pytest.raises(InputError, match="at least 80"):
        main(_args(crops_dir, tmp_path / "m.safetensors", "--crop", "80"))
    with pytest.raises(InputError, match="nothing would be trained"):
        main(_args(crops_dir, tmp_path / "m.safetensors", "--stage1-steps", "0", "--stage2-steps", "0"))
    for lr in ("-1", "0", "nan"):
        with pytest.raises(InputError, match="--lr must be a positive number"):
            main(_args(crops_dir, tmp_path / "m.safetensors", "--lr", lr))


@pytest.mark.slow  # two interpreters + gloo
def test_ddp_two_processes(crops_dir, tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "inrkit.inr.train.adacode",
        *_args(crops_dir, out, "--stage1-steps", "6", "--stage2-steps", "4"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote") == 1  # rank 0 alone reports and writes
    with safe_open(str(out), framework="pt") as f:
        training = json.loads(f.metadata()["training"])
    assert training["args"]["world_size"] == 2
    load_model(out)
