"""VC-INR model: gating, patches, Meta-SGD inner loop, latent prior, trainer."""

import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from inrkit.datasets.image import write_image
from inrkit.datasets.samples import load_sample_image
from inrkit.errors import InputError, ModelError
from inrkit.inr.learned.vcinr import (
    VCINR,
    GatedSiren,
    GateNetwork,
    LatentPrior,
    VCINRConfig,
    load_model,
    save_model,
)
from inrkit.inr.train.common import training_state_path
from inrkit.inr.train.vcinr import main, prior_deadline

TINY = dict(patch=(8, 8), width=16, depth=2, latent_dim=4, rank=2, gate_hidden=16,
            prior_channels=8, prior_latent=6, lambdas=(0.01, 0.1))  # fmt: skip
TINY_AUDIO = {**TINY, "modality": "audio", "channels": 1, "patch": (16,), "sample_rate": 8000}
TINY_ARGS = [
    "--patch", "8", "--width", "16", "--depth", "2", "--latent-dim", "4", "--rank", "2",
    "--batch-size", "4", "--crop", "2", "--crops", "3", "--prior-batch", "2", "--points", "16",
    "--lambdas", "0.01,0.1", "--prior-warmup", "5", "--no-progress", "--threads", "1",
]  # fmt: skip


def test_gates_shapes_range_and_dependence_on_phi():
    cfg = VCINRConfig(**TINY)
    gates = GateNetwork(cfg)
    phi = torch.randn(5, 4)
    g = gates(phi)
    assert g.shape == (5, 2, 16, 16)
    assert g.min() > 0 and g.max() < 1
    assert not torch.allclose(g[0], g[1])  # each item its own subnetwork
    net = GatedSiren(cfg)
    out = net(torch.rand(64, 2) * 2 - 1, g)
    assert out.shape == (5, 64, 3)
    # the gate multiplies the hidden weights: all-ones gates give the plain SIREN
    ones = net(torch.zeros(1, 2), torch.ones(1, 2, 16, 16))
    h = torch.sin(cfg.w0 * net.first(torch.zeros(1, 2)))
    for layer in range(2):
        h = torch.sin(cfg.w0 * (h @ net.weight[layer].t() + net.bias[layer]))
    assert torch.allclose(ones[0], net.last(h), atol=1e-5)


@pytest.mark.parametrize("grid", [(19, 13), (8, 8), (3, 30)])
def test_patches_round_trip_2d(grid):
    model = VCINR(VCINRConfig(**TINY))
    values = torch.rand(1, *grid, 3)
    patches = model.to_patches(values)
    assert patches.shape == (1, math.prod(model.patch_grid(grid)), 64, 3)
    assert torch.equal(model.from_patches(patches, grid), values)
    # row-major patch order, replicate padding at the far border
    assert torch.equal(patches[0, 0].reshape(8, 8, 3)[: min(8, grid[0]), : min(8, grid[1])],
                       values[0, :8, :8])  # fmt: skip


def test_patches_round_trip_1d_audio_items():
    model = VCINR(
        VCINRConfig(
            **{**TINY, "modality": "audio", "channels": 1, "patch": (32,), "sample_rate": 8000}
        )
    )
    values = torch.rand(2, 100, 1)
    patches = model.to_patches(values)
    assert patches.shape == (2, 4, 32, 1)
    assert torch.equal(patches[1, 3, 4:, 0], values[1, 99].expand(28))  # replicate pad
    assert torch.equal(model.from_patches(patches, (100,)), values)
    latents = model.fit(values)
    assert latents.shape == (2, 4, 4)
    assert model.reconstruct(latents, (100,)).shape == values.shape


def test_config_errors():
    with pytest.raises(InputError, match="patch"):
        VCINRConfig(patch=(8,))
    with pytest.raises(InputError, match="sample_rate"):
        VCINRConfig(modality="audio", channels=1, patch=(64,))
    with pytest.raises(InputError, match="modality"):
        VCINRConfig(modality="video")


def test_inner_loop_step_reduces_the_loss():
    torch.manual_seed(0)
    model = VCINR(VCINRConfig(**{**TINY, "inner_lr": 1e-3}))
    img = load_sample_image((200, 200, 16, 16)).to_values()[None]
    target = model.to_patches(img)[0]
    losses = [model.patch_mse(model.inner_loop(target, steps), target) for steps in (0, 1, 3)]
    assert torch.all(losses[1] < losses[0]) and torch.all(losses[2] < losses[1])
    # the unrolled loop is differentiable in the meta-parameters (second order)
    phi = model.inner_loop(target, create_graph=True)
    model.patch_mse(phi, target).mean().backward()
    assert model.inner_lr.grad is not None and model.inner_lr.grad.abs().sum() > 0
    assert model.phi_init.grad.abs().sum() > 0 and model.net.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("cfg", "grid", "items"), [(TINY, (24, 20), 1), (TINY_AUDIO, (200,), 2)], ids=["image", "audio"]
)
def test_refine_lowers_the_rate_distortion_loss_of_the_coded_latents(cfg, grid, items):
    torch.manual_seed(0)
    model = VCINR(VCINRConfig(**cfg)).eval()
    with torch.no_grad():  # a signal the network can represent
        values = model.reconstruct(3 * torch.randn(items, 4, *model.patch_grid(grid)), grid)
    grid, lam = tuple(values.shape[1:-1]), model.config.lambdas[1]
    prior = model.priors[1]

    def loss(y):  # rounded latents, discrete likelihoods, every point
        with torch.no_grad():
            phi_hat, bits = prior.code(y, training=False)
            mse = (model.reconstruct(phi_hat, grid) - values).square().mean() / 4
        return bits.mean() / math.prod(grid) + lam * 255**2 * mse

    with torch.no_grad():
        y0 = prior.g_a(model.fit(values))
    y = model.refine(1, y0, values, steps=100, points=32)
    assert y.shape == y0.shape and not y.requires_grad
    assert loss(y) < 0.9 * loss(y0)
    assert math.isclose(model.coded_loss(1, y, values), loss(y), rel_tol=1e-5)
    assert all(p.grad is None for p in model.parameters())  # only y was optimised
    # a step size that only makes things worse: the starting latents come back
    assert torch.equal(model.refine(1, y0, values, steps=5, lr=100.0), y0)
    assert model.refine(1, y0, values, seconds=0.05).shape == y0.shape
    with pytest.raises(InputError, match="steps or seconds"):
        model.refine(1, y0, values)


def test_latent_prior_bits_and_frozen_tables():
    torch.manual_seed(0)
    cfg = VCINRConfig(**TINY)
    prior = LatentPrior(cfg)
    phi = torch.randn(2, 4, 5, 3)
    phi_hat, bits = prior(phi)
    assert phi_hat.shape == phi.shape and bits.shape == (2,) and torch.all(bits > 0)
    bits.sum().backward()
    assert prior.g_a.skip.weight.grad.abs().sum() > 0 and prior.h_s[0].weight.grad.abs().sum() > 0
    assert not prior.frozen
    prior.eval().freeze()
    assert prior.frozen and prior.fixed_w0.dtype == torch.int64
    assert prior.gaussian_conditional._quantized_cdf.numel() > 0
    assert torch.equal(prior.fixed_w0, torch.round(prior.h_s[0].weight.double() * 65536).long())


@pytest.mark.parametrize("dims", [1, 2])
def test_residual_transforms_start_as_the_identity(dims):
    torch.manual_seed(0)
    cfg = VCINRConfig(**TINY) if dims == 2 else VCINRConfig(**TINY_AUDIO)
    prior = LatentPrior(cfg)
    phi = torch.randn(2, cfg.latent_dim, *([5] * dims))
    y = prior.g_a(phi)
    assert y.shape == (2, cfg.prior_latent, *([5] * dims))
    assert torch.allclose(prior.g_s(y), phi)  # no information lost before rounding
    # the conv bodies still learn: their first layers get gradients once the last moves
    prior.g_a.body[-1].weight.data.normal_()
    prior.g_s(prior.g_a(phi)).square().sum().backward()
    assert prior.g_a.body[0].weight.grad.abs().sum() > 0


def test_plain_conv_transforms_and_files_from_before_the_option(tmp_path):
    model = VCINR(VCINRConfig(**TINY, transform="conv"))
    assert isinstance(model.priors[0].g_a, torch.nn.Sequential)
    for prior in model.priors:
        prior.eval().freeze()
    path = tmp_path / "old.safetensors"
    config = {k: v for k, v in dataclasses.asdict(model.config).items() if k != "transform"}
    save_model(model, path, {"config": json.dumps(config)})
    assert load_model(path)[0].config.transform == "conv"
    with pytest.raises(InputError, match="transform"):
        VCINRConfig(**TINY, transform="gdn")


def test_model_file_round_trip_with_frozen_tables(tmp_path):
    model = VCINR(VCINRConfig(**TINY))
    for prior in model.priors:
        prior.eval().freeze()
    path = tmp_path / "m.safetensors"
    digest = save_model(model, path)
    loaded, digest2 = load_model(path)
    assert digest == digest2 and loaded.config == model.config
    assert torch.equal(loaded.priors[1].fixed_thresholds, model.priors[1].fixed_thresholds)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.safetensors")


# -- the trainer ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image(load_sample_image((100, 100, 40, 48)), root / "a.png")
    gray = load_sample_image((300, 200, 24, 24))
    gray.data = gray.data.mean(0, keepdim=True)
    write_image(gray, root / "b.png")
    return root


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    t = np.arange(4000) / 8000
    sf.write(
        root / "tone.wav",
        np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], 1),
        8000,
    )
    return root


def _metadata(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_train_image_then_resume(image_dir, tmp_path):
    out = tmp_path / "img.safetensors"
    assert main(["--modality", "image", "--data", str(image_dir), "--out", str(out),
                 "--steps", "3", "--prior-steps", "2", *TINY_ARGS]) == 0  # fmt: skip
    model, _ = load_model(out)
    assert model.config.patch == (8, 8) and model.config.lambdas == (0.01, 0.1)
    assert all(p.frozen for p in model.priors)
    info = json.loads(_metadata(out)["training"])
    assert info["state"]["stage"] == "done" and training_state_path(out).is_file()
    # resuming a finished run changes nothing
    before = model.state_dict()["net.weight"].clone()
    main(["--modality", "image", "--data", str(image_dir), "--out", str(out),
          "--steps", "3", "--prior-steps", "2", "--resume", *TINY_ARGS])  # fmt: skip
    again, _ = load_model(out)
    assert torch.equal(again.state_dict()["net.weight"], before)


def test_train_resume_continues_the_meta_stage(image_dir, tmp_path, monkeypatch):
    from inrkit.inr.train import vcinr as vcinr_train

    def args(out):
        return ["--modality", "image", "--data", str(image_dir), "--out", str(out),
                "--prior-steps", "1", "--steps", "4", *TINY_ARGS]  # fmt: skip

    main(args(tmp_path / "whole.safetensors"))  # uninterrupted, for comparison
    real = vcinr_train._StepLog.step_done

    def stop_after_two(self, losses):
        done = real(self, losses)
        if self.state.stage == "meta" and self.state.step == 2:
            raise KeyboardInterrupt
        return done

    out = tmp_path / "r.safetensors"
    monkeypatch.setattr(vcinr_train._StepLog, "step_done", stop_after_two)
    main(args(out))
    state = json.loads(_metadata(out)["training"])["state"]
    assert (state["stage"], state["step"]) == ("meta", 2)  # saved mid-stage
    monkeypatch.undo()
    main([*args(out), "--resume"])
    assert json.loads(_metadata(out)["training"])["state"]["stage"] == "done"
    assert load_file(str(training_state_path(out)))["meta.0.step"].item() == 4
    # the same data and Adam state as the unbroken run, so the same meta-learned network
    whole, _ = load_model(tmp_path / "whole.safetensors")
    assert torch.equal(load_model(out)[0].net.weight, whole.net.weight)
    with pytest.raises(ModelError, match="different config"):
        main([*args(out), "--resume", "--width", "8"])


def test_prior_deadlines_share_what_is_left_equally():
    # four λs, 400 s left after the warm-up: 100 s each
    assert [prior_deadline(1000.0, 1400.0, 0, i, 4) for i in range(4)] == [1100, 1200, 1300, 1400]
    # resumed at the third λ with 100 s left: 50 s each for the two still to train
    assert [prior_deadline(0.0, 100.0, 2, i, 4) for i in (2, 3)] == [50, 100]
    assert prior_deadline(5.0, 1.0, 0, 0, 2) == 5.0  # overrun: stop at once
    assert prior_deadline(0.0, None, 0, 0, 2) is None


def test_train_audio(audio_dir, tmp_path):
    out = tmp_path / "audio.safetensors"
    main(["--modality", "audio", "--data", str(audio_dir), "--out", str(out), "--sample-rate", "8000",
          "--steps", "2", "--prior-steps", "2", *TINY_ARGS])  # fmt: skip
    model, _ = load_model(out)
    assert (
        model.config.patch == (8,)
        and model.config.channels == 1
        and model.config.sample_rate == 8000
    )


def test_train_argument_errors(image_dir, tmp_path):
    common = ["--data", str(image_dir), "--out", str(tmp_path / "x")]
    with pytest.raises(InputError, match="lambdas"):
        main(["--modality", "image", *common, "--lambdas", "a"])
    with pytest.raises(InputError, match="steps"):
        main(["--modality", "image", *common, "--steps", "0"])
    with pytest.raises(InputError, match="--patch 64×64 is larger than every training item"):
        main(["--modality", "image", *common, *TINY_ARGS, "--patch", "64"])
    for flag in ("--lr", "--inner-lr", "--prior-lr", "--w0", "--time"):
        with pytest.raises(InputError, match=f"{flag} must be a positive number"):
            main(["--modality", "image", *common, flag, "nan"])
    with pytest.raises(InputError):  # a folder of images holds no audio
        main(["--modality", "audio", *common, *TINY_ARGS])


@pytest.mark.slow  # two interpreters + gloo
def test_ddp_two_processes(image_dir, tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "inrkit.inr.train.vcinr", "--modality", "image", "--data", str(image_dir), "--out", str(out),
        "--steps", "2", "--prior-steps", "2", *TINY_ARGS,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(_metadata(out)["training"])
    assert info["args"]["world_size"] == 2 and info["state"]["stage"] == "done"
    model, _ = load_model(out)
    assert all(p.frozen for p in model.priors)


def test_retrain_priors_keeps_the_meta_learned_networks(image_dir, tmp_path):
    out = tmp_path / "p.safetensors"
    args = ["--modality", "image", "--data", str(image_dir), "--out", str(out), "--steps", "2",
            "--prior-steps", "2", *TINY_ARGS]  # fmt: skip
    main(args)
    first, _ = load_model(out)
    main([*args, "--retrain-priors", "--lambdas", "0.02,0.2,2"])
    second, _ = load_model(out)
    assert second.config.lambdas == (0.02, 0.2, 2.0) and all(p.frozen for p in second.priors)
    assert torch.equal(second.net.weight, first.net.weight)
    assert torch.equal(second.inner_lr, first.inner_lr)
    state = json.loads(_metadata(out)["training"])["state"]
    assert state["meta_seconds"] > 0 and state["seconds"] >= state["meta_seconds"]
    # the --time budget of this run (and of a --resume of it) starts after the meta stage
    assert state["budget_start"] == state["meta_seconds"]
    with pytest.raises(InputError, match="exclude"):
        main([*args, "--retrain-priors", "--resume"])
    with pytest.raises(ModelError, match="different config"):
        main([*args, "--retrain-priors", "--width", "8"])
    main([*args, "--retrain-priors", "--transform", "conv"])  # the transforms may change too
    assert load_model(out)[0].config.transform == "conv"


def test_continue_meta_learns_on_from_the_saved_networks_and_adam_state(
    image_dir, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "c.safetensors"
    args = ["--modality", "image", "--data", str(image_dir), "--out", str(out),
            "--prior-steps", "2", *TINY_ARGS]  # fmt: skip
    main([*args, "--steps", "2"])
    first, _ = load_model(out)
    first_state = json.loads(_metadata(out)["training"])["state"]
    main([*args, "--steps", "3", "--continue-meta"])
    second, _ = load_model(out)
    assert not torch.equal(second.net.weight, first.net.weight)
    assert all(p.frozen for p in second.priors)
    state = json.loads(_metadata(out)["training"])["state"]
    assert state["meta_round"] == 1 and state["stage"] == "done"
    assert state["budget_start"] == first_state["meta_seconds"]
    assert state["meta_seconds"] > first_state["meta_seconds"]
    # Adam went on counting from the first run's 2 steps
    steps = load_file(str(tmp_path / "c.train.safetensors"))["meta.0.step"]
    assert steps.item() == 5
    # --retrain-priors carries the outer Adam state, so a later continuation goes on from it
    main([*args, "--retrain-priors"])
    assert load_file(str(tmp_path / "c.train.safetensors"))["meta.0.step"].item() == 5
    main([*args, "--steps", "1", "--continue-meta"])
    assert json.loads(_metadata(out)["training"])["state"]["meta_round"] == 2
    assert load_file(str(tmp_path / "c.train.safetensors"))["meta.0.step"].item() == 6
    with pytest.raises(InputError, match="exclude"):
        main([*args, "--continue-meta", "--retrain-priors"])
    with pytest.raises(ModelError, match="different config"):
        main([*args, "--continue-meta", "--width", "8"])

    # a model copied without its training state: priors retrained, then continued with a
    # fresh outer Adam, which the trainer says
    copied = tmp_path / "copied.safetensors"
    copied.write_bytes(out.read_bytes())
    other = [*args[:5], str(copied), *args[6:]]
    main([*other, "--retrain-priors"])
    capsys.readouterr()
    main([*other, "--steps", "1", "--continue-meta"])
    assert "Adam starts anew" in capsys.readouterr().err

    def interrupted(*_):
        raise KeyboardInterrupt

    unfinished = tmp_path / "u.safetensors"
    monkeypatch.setattr("inrkit.inr.train.vcinr._meta_stage", interrupted)
    main([*args[:5], str(unfinished), *args[6:], "--steps", "2"])
    with pytest.raises(InputError, match="--resume"):
        main([*args[:5], str(unfinished), *args[6:], "--continue-meta"])
