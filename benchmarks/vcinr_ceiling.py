"""What limits a VC-INR model on an image: the network or the coding of its latents?

For each image, with a trained image model (``benchmarks/models/vcinr_image_VARIANT``):

* the *ceiling*: PSNR of the unquantized latents the 3-step inner loop finds
  (``model.fit`` → ``model.reconstruct``), which no rate can beat;
* the same latents optimised further with Adam for ``--adam-seconds`` (every patch,
  64 random points per patch per step, no rate term): how much the amortised
  inner loop leaves on the table;
* where the error of the ceiling sits: the share of the squared error held by
  the worst 5/10/25/50 % of the patches, a patch's border rows and columns
  against its centre, and the correlation of a patch's error with its variance.

    python benchmarks/vcinr_ceiling.py [--variant long] [--images kodim07.png,riaphotographs_500.png]
                                       [--adam-seconds 90] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from inrkit.datasets.image import read_image
from inrkit.inr.learned.vcinr import VCINR, item_values, load_model


def psnr(model: VCINR, latents: torch.Tensor, values: torch.Tensor) -> float:
    rec = model.reconstruct(latents, tuple(values.shape[1:-1])).clamp(-1, 1)
    return -10 * math.log10(((rec - values) / 2).square().mean().item())


def adam_on_latents(model: VCINR, latents: torch.Tensor, values: torch.Tensor, seconds: float,
                    seed: int = 0) -> tuple[torch.Tensor, int]:  # fmt: skip
    patches = model.to_patches(values)
    patches = patches.reshape(-1, *patches.shape[2:])
    phi = model.latent_list(latents).clone().requires_grad_(True)
    opt = torch.optim.Adam([phi], lr=0.01)
    gen = torch.Generator().manual_seed(seed)
    steps, start = 0, time.perf_counter()
    with torch.enable_grad():
        while time.perf_counter() - start < seconds:
            points = torch.randperm(patches.shape[1], generator=gen)[:64]
            loss = (model.render(phi, model.coords[points]) - patches[:, points]).square().mean()
            (phi.grad,) = torch.autograd.grad(loss, phi)
            opt.step()
            steps += 1
    return model.latent_grid(phi.detach(), 1, tuple(values.shape[1:-1])), steps


@torch.no_grad()
def error_map(model: VCINR, latents: torch.Tensor, values: torch.Tensor) -> dict:
    rec = model.reconstruct(latents, tuple(values.shape[1:-1])).clamp(-1, 1)
    err = ((rec - values) / 2).square().mean(-1)[0]  # [H, W]
    ph, pw = model.config.patch
    h, w = err.shape[0] // ph * ph, err.shape[1] // pw * pw
    blocks = err[:h, :w].reshape(h // ph, ph, w // pw, pw)
    per_patch = blocks.mean((1, 3)).flatten()
    ordered = per_patch.sort(descending=True).values
    share = ordered.cumsum(0) / ordered.sum()
    within = blocks.mean((0, 2))  # mean error by position inside a patch
    border = torch.cat([within[[0, -1], :].flatten(), within[1:-1, [0, -1]].flatten()]).mean()
    centre = within[ph // 4 : ph - ph // 4, pw // 4 : pw - pw // 4].mean()
    target = values[0, :h, :w].reshape(h // ph, ph, w // pw, pw, -1)
    variance = target.var((1, 3)).mean(-1).flatten()
    corr = np.corrcoef(np.log(per_patch.numpy() + 1e-12), np.log(variance.numpy() + 1e-12))[0, 1]
    return {
        "worst_patch_error_share": {
            f"{int(f * 100)}%": round(float(share[max(0, int(len(share) * f) - 1)]), 3)
            for f in (0.05, 0.10, 0.25, 0.50)
        },
        "border_over_centre_error": round(float(border / centre), 2),
        "corr_log_error_log_variance": round(float(corr), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", default="long")
    ap.add_argument("--images", default="kodim07.png,riaphotographs_500.png")
    ap.add_argument("--adam-seconds", type=float, default=90.0)
    ap.add_argument("--data", default=os.environ.get("INRKIT_DATA", "../shared/data"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = Path("benchmarks/models") / f"vcinr_image_{args.variant}.safetensors"
    model, _ = load_model(path)
    rows = []
    for name in args.images.split(","):
        values = item_values(read_image(Path(args.data) / "images" / name), model)
        with torch.no_grad():
            latents = model.fit(values)
        ceiling = psnr(model, latents, values)
        refined, steps = adam_on_latents(model, latents, values, args.adam_seconds)
        rows.append({"image": name, "ceiling_psnr": round(ceiling, 2),
                     "adam_psnr": round(psnr(model, refined, values), 2), "adam_steps": steps,
                     **error_map(model, latents, values)})  # fmt: skip
    print(f"model {path}")
    print(f"{'image':<24} {'ceiling dB':>10} {'+Adam dB':>9} {'worst 10% share':>16} {'border/centre':>14}")
    for r in rows:
        print(f"{r['image']:<24} {r['ceiling_psnr']:>10.2f} {r['adam_psnr']:>9.2f} "
              f"{r['worst_patch_error_share']['10%']:>16.2f} {r['border_over_centre_error']:>14.2f}")  # fmt: skip
    out = Path("benchmarks/results") / f"vcinr_ceiling_{args.variant}.json"
    out.write_text(json.dumps({"model": str(path), "adam_seconds": args.adam_seconds,
                               "threads": args.threads, "results": rows}, indent=2))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
