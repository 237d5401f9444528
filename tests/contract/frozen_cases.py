"""Frozen files: one small ``.inrk`` per inrkit codec, written before the restructure.

Each case encodes a tiny signal with a fixed seed through the public API. The files,
the model files of the learned codecs and a manifest (the SHA-256 of each file and of
its decoded samples) live in ``tests/contract/frozen/``; ``test_frozen.py`` checks that
every file still decodes to the same samples and that each seeded encode still writes
the same bytes. Regenerate (only when a format change is intended, and say so in the
commit) with ``python tests/contract/frozen_cases.py --write``. A new codec's case is added
with ``python tests/contract/frozen_cases.py --add``: it writes only the cases the manifest
lacks and adds their entries, leaving every existing file and entry unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

FROZEN = Path(__file__).resolve().parent / "frozen"
MANIFEST = FROZEN / "manifest.json"


def image(h: int = 16, w: int = 20):
    from inrkit.datasets.samples import load_sample_image

    return load_sample_image((230, 200, h, w))


def clip(frames: int = 4, height: int = 32, width: int = 60):
    from inrkit.datasets import Signal

    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)
    data = torch.stack(
        [torch.stack([0.2 + 0.6 * x, 0.8 - 0.5 * y, 0.3 + 0.4 * x * y + 0.05 * t]) for t in range(frames)]
    )
    return Signal(data, "video", frame_rate=25.0)


def tone(channels: int = 1, rate: int = 8000, seconds: float = 0.25):
    from inrkit.datasets import Signal

    t = torch.arange(round(rate * seconds)) / rate
    data = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (200, 300)[:channels]])
    return Signal(data, "audio", bit_depth=16, sample_rate=rate)


# -- tiny models of the learned codecs (only built by --write) ------------------------


def rvqgan_model(path: Path) -> None:
    from inrkit.inr.learned.rvqgan import RVQGAN, RVQGANConfig, save_model

    torch.manual_seed(0)
    config = RVQGANConfig(sample_rate=8000, encoder_dim=4, encoder_rates=(2, 4), decoder_dim=32,
                          decoder_rates=(4, 2), n_codebooks=4, codebook_size=64, codebook_dim=4)
    save_model(RVQGAN(config), path)


def adacode_model(path: Path) -> None:
    from inrkit.inr.learned.adacode import AdaCode, AdaCodeConfig, save_model

    torch.manual_seed(0)
    model = AdaCode(AdaCodeConfig(widths=(8, 8, 16), codebooks=3, codebook_size=16, code_dim=4,
                                  filler_width=8))
    with torch.no_grad():
        for vq in model.quantizers:
            vq.embedding.weight.normal_()
    save_model(model, path)


def vcinr_model(modality: str) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        from inrkit.inr.learned.vcinr import VCINR, VCINRConfig, save_model

        torch.manual_seed(0)
        config = dict(patch=(8, 8), width=16, depth=2, latent_dim=4, rank=2, gate_hidden=16,
                      prior_channels=8, prior_latent=6, lambdas=(0.001, 0.01, 0.1))
        if modality == "audio":
            config.update(modality="audio", channels=1, patch=(32,), sample_rate=8000)
            values = tone().to_values().t()[..., None]
        else:
            values = image(64, 64).to_values()[None]
        model = VCINR(VCINRConfig(**config))
        latents = model.fit(values)
        for prior, lam in zip(model.priors, model.config.lambdas, strict=True):
            opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
            for _ in range(30):
                phi_hat, bits = prior(latents)
                loss = bits.mean() / 256 + lam * 255**2 * (phi_hat - latents).square().mean()
                opt.zero_grad()
                (loss + prior.aux_loss()).backward()
                opt.step()
            prior.eval().freeze()
        save_model(model.eval(), path)

    return build


@dataclass(frozen=True)
class Case:
    """One frozen file: the registered ``codec(**codec_options)`` encodes ``signal()`` at the
    rate and budget in ``encode`` (the keywords of ``Rate`` and ``EncodeOptions``), seed 1."""

    name: str
    codec: str
    signal: Callable[[], Any]
    encode: dict[str, Any]
    model: Callable[[Path], None] | None = None
    codec_options: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return FROZEN / f"{self.name}.inrk"

    @property
    def model_file(self) -> Path | None:
        return FROZEN / f"{self.name}.safetensors" if self.model else None

    def encoded(self) -> bytes:
        from inrkit.codecs import EncodeOptions, Rate
        from inrkit.registry import CODECS

        torch.manual_seed(0)
        options = dict(self.codec_options)
        if self.model_file is not None:
            options["model"] = str(self.model_file)
        rate = {k: v for k, v in self.encode.items() if k in ("bpp", "kbps", "quality", "lmbda")}
        budget = {k: v for k, v in self.encode.items() if k not in rate}
        coder = CODECS.get(self.codec)(**options)
        return coder.encode(self.signal(), Rate(**rate), EncodeOptions(seed=1, **budget))

    def decoded_digest(self) -> str:
        import inrkit

        model = None if self.model_file is None else str(self.model_file)
        return samples_digest(inrkit.decode(self.file.read_bytes(), model=model).data)


def samples_digest(samples: torch.Tensor) -> str:
    array = np.ascontiguousarray(samples.detach().to(torch.float32).numpy())
    return hashlib.sha256(str(array.shape).encode() + array.tobytes()).hexdigest()


VIDEO_SMALL = {
    "nerv": dict(pe_levels=16, strides=(4, 2), lower_width=6),
    "hnerv": dict(lower_width=6, encoder_dim=16),
    "nervpp": dict(pe_levels=16, strides=(4, 2), lower_width=6),
}
SHACIRA_SMALL = dict(n_levels=6, log2_hashmap_size=8, base_resolution=4, finest_resolution=32)

CASES = [
    *(Case(name, name, image, dict(bpp=6.0, steps=20)) for name in ("siren", "spder", "polyinr", "fourier")),
    Case("hashgrid", "hashgrid", image, dict(quality=2, steps=5)),
    Case("shacira-image", "shacira", image, dict(lmbda=1e-3, steps=20), codec_options=SHACIRA_SMALL),
    Case("shacira-audio", "shacira", tone, dict(kbps=24, steps=20)),
    *(Case(name, name, clip, dict(bpp=8.0, steps=3), codec_options=dict(lr=5e-3, **small))
      for name, small in VIDEO_SMALL.items()),
    Case("siren-audio", "siren-audio", tone, dict(kbps=48, steps=20)),
    Case("spder-audio", "spder-audio", tone, dict(kbps=48, steps=20)),
    Case("rvqgan", "rvqgan", lambda: tone(1, 8000, 0.3), dict(quality=3), model=rvqgan_model),
    Case("adacode", "adacode", lambda: image(24, 20), dict(quality=2), model=adacode_model),
    Case("vcinr-image", "vcinr", lambda: image(16, 24), dict(quality=2, steps=0), model=vcinr_model("image")),
    Case("vcinr-audio", "vcinr", tone, dict(quality=2, steps=0), model=vcinr_model("audio")),
    Case("coolchic", "coolchic", lambda: image(24, 32), dict(lmbda=1e-2, steps=20)),
]


def machine() -> dict[str, str]:
    """What float results depend on: the torch build and the CPU kernels it picks."""
    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine()}


def _entry(case: Case) -> dict[str, Any]:
    if case.model is not None:
        case.model(case.model_file)
    data = case.encoded()
    case.file.write_bytes(data)
    print(f"{case.name:14s} {len(data):6d} bytes")
    return {"file": hashlib.sha256(data).hexdigest(), "bytes": len(data), "decoded": case.decoded_digest()}


def add() -> None:
    """Write the cases the manifest lacks and add their entries; existing files and entries
    stay byte for byte (the manifest is rewritten with the same layout, new cases last).
    Refused on another machine than the one the manifest records (its digests would differ)."""
    if not MANIFEST.exists():
        sys.exit(f"{MANIFEST} does not exist; run --write first")
    record = json.loads(MANIFEST.read_text())
    if record["machine"] != machine():
        sys.exit(f"the manifest was written on {record['machine']}, this is {machine()}")
    torch.set_num_threads(1)
    missing = [case for case in CASES if case.name not in record["cases"]]
    for case in missing:
        if case.file.exists() or (case.model_file is not None and case.model_file.exists()):
            sys.exit(f"{case.file.name} (or its model) exists but the manifest lacks it; remove it first")
    for case in missing:
        record["cases"][case.name] = _entry(case)
    if not missing:
        print("every case is in the manifest; nothing to add")
        return
    MANIFEST.write_text(json.dumps(record, indent=1) + "\n")


def write(force: bool) -> None:
    if MANIFEST.exists() and not force:
        sys.exit(f"{MANIFEST} exists; pass --force to replace the frozen files")
    FROZEN.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    entries = {}
    for case in CASES:
        entries[case.name] = _entry(case)
    MANIFEST.write_text(json.dumps({"machine": machine(), "cases": entries}, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write every case (refused if a manifest exists)")
    mode.add_argument("--add", action="store_true", help="write only the cases the manifest lacks")
    parser.add_argument("--force", action="store_true", help="with --write: replace the frozen files")
    args = parser.parse_args()
    if args.add:
        add()
    else:
        write(args.force)
