"""RVQGAN model, residual VQ, discriminators, losses and the training entry point."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from inrkit.errors import InputError, ModelError
from inrkit.inr.learned.rvq import ResidualVectorQuantize
from inrkit.inr.learned.rvqgan import RVQGAN, RVQGANConfig, load_model, save_model, snake
from inrkit.inr.model_files import tensor_hash
from inrkit.inr.train.rvqgan import (
    Discriminator,
    MelLoss,
    discriminator_loss,
    generator_losses,
    main,
    mel_filters,
    training_state_path,
)

TINY = dict(
    sample_rate=8000,
    encoder_dim=4,
    encoder_rates=(2, 4),
    decoder_dim=32,
    decoder_rates=(4, 2),
    n_codebooks=3,
    codebook_size=16,
    codebook_dim=4,
)
TINY_ARGS = [
    "--sample-rate", "8000", "--encoder-dim", "4", "--encoder-rates", "2,4",
    "--decoder-dim", "32", "--decoder-rates", "4,2", "--n-codebooks", "3",
    "--codebook-size", "16", "--codebook-dim", "4", "--disc-width", "0.0625",
    "--batch-size", "2", "--segment-seconds", "0.3", "--no-progress", "--threads", "1",
]  # fmt: skip


def test_snake_is_x_plus_sin_squared_over_alpha():
    x = torch.linspace(-3, 3, 13).reshape(1, 1, -1)
    alpha = torch.full((1, 1, 1), 2.0)
    assert torch.allclose(snake(x, alpha), x + torch.sin(2 * x) ** 2 / 2, atol=1e-6)


def test_shapes_and_hop_padding():
    model = RVQGAN(RVQGANConfig(**TINY)).eval()
    audio = torch.rand(3, 1, 101) * 2 - 1  # not a multiple of the hop (8)
    recon, out = model(audio)
    assert recon.shape == audio.shape
    assert out.codes.shape == (3, 3, 13)  # ceil(101 / 8) frames
    assert out.z.shape == (3, model.config.latent_dim, 13)
    assert model.config.latent_dim == 4 * 2**2
    assert recon.abs().max() <= 1
    odd = RVQGAN(RVQGANConfig(**{**TINY, "encoder_rates": (2, 5), "decoder_rates": (5, 2)})).eval()
    assert odd(audio)[0].shape == audio.shape  # odd strides upsample exactly too


def test_rvq_codes_round_trip_and_prefixes():
    rvq = ResidualVectorQuantize(
        input_dim=12, n_codebooks=4, codebook_size=32, codebook_dim=3
    ).eval()
    z = torch.randn(2, 12, 9)
    full = rvq(z)
    assert torch.allclose(rvq.from_codes(full.codes), full.z, atol=1e-5)
    two = rvq(z, n_quantizers=2)
    assert torch.equal(two.codes, full.codes[:, :2])  # later quantizers never change earlier codes
    assert torch.allclose(rvq.from_codes(full.codes[:, :2]), two.z, atol=1e-5)
    with pytest.raises(ValueError):
        rvq(z, n_quantizers=5)


def test_lookup_uses_cosine_similarity():
    rvq = ResidualVectorQuantize(input_dim=4, n_codebooks=1, codebook_size=2, codebook_dim=2).eval()
    vq = rvq.quantizers[0]
    with torch.no_grad():
        vq.codebook.weight.copy_(torch.tensor([[10.0, 0.0], [0.1, 0.1]]))
    # (1, 1) is nearer to (10, 0) in Euclidean distance but identical in direction to (0.1, 0.1)
    z_e = torch.tensor([[[1.0], [1.0]]])
    assert vq.nearest(z_e).item() == 1


def test_quantizer_dropout_uses_prefixes_per_example():
    torch.manual_seed(3)
    rvq = ResidualVectorQuantize(
        input_dim=6, n_codebooks=4, codebook_size=8, codebook_dim=2, quantizer_dropout=0.5
    )
    z = torch.randn(16, 6, 5)
    out = rvq.train()(z)
    rvq.eval()
    used = []
    for i in range(16):
        matches = [
            n
            for n in range(1, 5)
            if torch.allclose(rvq.from_codes(out.codes[i : i + 1, :n]), out.z[i : i + 1], atol=1e-5)
        ]
        assert matches, f"example {i} is not a prefix sum of its codes"
        used.append(matches[-1])
    assert used[8:] == [4] * 8  # the second half keeps every quantizer
    assert min(used[:8]) < 4  # the first half (dropout 0.5 of 16) draws fewer


def test_vq_losses_train_encoder_and_codebook():
    rvq = ResidualVectorQuantize(
        input_dim=6, n_codebooks=2, codebook_size=8, codebook_dim=2
    ).train()
    z = torch.randn(2, 6, 5, requires_grad=True)
    out = rvq(z)
    (out.z.square().mean() + out.commitment_loss + out.codebook_loss).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # straight-through estimator
    assert rvq.quantizers[0].codebook.weight.grad.abs().sum() > 0
    assert out.commitment_loss.item() == pytest.approx(out.codebook_loss.item(), rel=1e-5)


def test_save_load_and_hash(tmp_path):
    model = RVQGAN(RVQGANConfig(**TINY))
    path = tmp_path / "m.safetensors"
    digest = save_model(model, path, {"note": "a"})
    loaded, loaded_digest = load_model(path)
    assert loaded_digest == digest == tensor_hash(model.state_dict())
    assert loaded.config == model.config
    audio = torch.rand(1, 1, 64) * 2 - 1
    assert torch.equal(loaded(audio)[0], model.eval()(audio)[0])
    # metadata does not change the identity; a weight does
    assert save_model(model, tmp_path / "m2.safetensors", {"note": "b"}) == digest
    with torch.no_grad():
        model.encoder[0].bias[0] += 1e-3
    assert tensor_hash(model.state_dict()) != digest


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ModelError, match="junk.safetensors"):
        load_model(junk)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(ModelError, match="format"):
        load_model(other)


def test_mel_filters_and_loss():
    fb = mel_filters(16000, 512, 40)
    assert fb.shape == (40, 257) and (fb >= 0).all()
    peaks = fb.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all() and peaks[-1] > peaks[0]
    loss = MelLoss(16000, n_mels=(5, 20), window_lengths=(32, 128))
    x = torch.randn(2, 1, 1600) * 0.1
    assert loss(x, x).item() == 0
    assert loss(x, 0.5 * x).item() > 0


def test_discriminator_and_gan_losses():
    disc = Discriminator(width=1 / 16)
    real, fake = torch.randn(2, 1, 4096) * 0.1, torch.randn(2, 1, 4096) * 0.1
    maps_fake, maps_real = disc(fake), disc(real)
    assert len(maps_fake) == 5 + 3  # periods 2, 3, 5, 7, 11 and windows 2048, 1024, 512
    assert [len(m) for m in maps_fake] == [6] * 5 + [
        26
    ] * 3  # MPD: 5 convs + out; MRD: 5 bands x 5 + out
    d_loss = discriminator_loss(maps_fake, maps_real)
    adv, feat = generator_losses(maps_fake, maps_real)
    assert torch.isfinite(d_loss) and torch.isfinite(adv) and feat > 0


@pytest.fixture
def audio_dir(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "audio"
    folder.mkdir()
    t = np.arange(4000) / 8000
    sf.write(folder / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 8000)
    sf.write(folder / "noise.flac", 0.1 * rng.standard_normal((6000, 2)), 16000)
    return folder


def _metadata(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_train_and_resume(audio_dir, tmp_path):
    out = tmp_path / "model.safetensors"
    assert main(["--data", str(audio_dir), "--out", str(out), "--steps", "2", *TINY_ARGS]) == 0
    assert out.is_file() and training_state_path(out).is_file()
    assert json.loads(_metadata(out)["training"])["steps"] == 2
    model, _ = load_model(out)
    assert model.config.hop_length == 8
    state_before = json.loads(_metadata(training_state_path(out))["state"])
    assert (
        main(["--data", str(audio_dir), "--out", str(out), "--steps", "3", "--resume", *TINY_ARGS])
        == 0
    )
    training = json.loads(_metadata(out)["training"])
    assert state_before["step"] == 2 and training["steps"] == 3
    assert set(training["losses"]) >= {"mel", "adv", "feat", "disc", "commitment", "codebook"}
    wider = [("0.125" if a == "0.0625" else a) for a in TINY_ARGS]  # --disc-width
    with pytest.raises(ModelError, match="discriminator .* was built with") as error:
        main(["--data", str(audio_dir), "--out", str(out), "--steps", "4", "--resume", *wider])
    assert "\n" not in str(error.value)  # not torch's list of every mismatched tensor



@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--lr", "-1"], "--lr must be a positive number"), (["--lr", "nan"], "--lr must be"),
     (["--time", "0"], "--time must be"), (["--n-codebooks", "0"], "n_codebooks"),
     (["--quantizer-dropout", "2"], "quantizer_dropout is a probability"),
     (["--sample-rate", "0"], "sample_rate"), (["--decoder-rates", "8,2"], "same product"),
     (["--decoder-dim", "30"], "divisible"), (["--disc-width", "-1"], "--disc-width")],
)  # fmt: skip
def test_train_refuses_bad_flags_before_training(flags, message, audio_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    with pytest.raises(InputError, match=message):
        main(["--data", str(audio_dir), "--out", str(out), *TINY_ARGS, *flags])
    assert not out.exists()


def test_train_rejects_bad_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="expected audio files"):
        main(
            [
                "--data",
                str(empty),
                "--out",
                str(tmp_path / "m.safetensors"),
                "--steps",
                "1",
                *TINY_ARGS,
            ]
        )
    with pytest.raises(ModelError):
        main(
            [
                "--data",
                str(empty),
                "--out",
                str(tmp_path / "none.safetensors"),
                "--resume",
                *TINY_ARGS,
            ]
        )


@pytest.mark.slow  # ~20 s idle, ~60 s on a busy 2-core machine: two interpreters + gloo
def test_ddp_two_processes(audio_dir, tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "inrkit.inr.train.rvqgan", "--data", str(audio_dir), "--out", str(out), "--steps", "2", *TINY_ARGS,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    training = json.loads(_metadata(out)["training"])
    assert training["steps"] == 2 and training["args"]["world_size"] == 2
