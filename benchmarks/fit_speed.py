"""How fast does each backbone fit an image on this CPU, against COIN's plain loop?

On a crop of a real photograph (default: the central 256×256 of Kodak image 7)
every registered coordinate backbone is fitted at two parameter budgets, about
8k parameters (COIN's budget at 0.3 bpp on Kodak) and about 64k, with
``inrkit.inr.fit`` and the settings in :data:`RECIPES`. Beside them, in the same
process and under the same time budget, runs a plain PyTorch loop of COIN's
configuration (Dupont et al. 2021: SIREN of 10 layers of width 28, ω0 = 30,
full batch, Adam with learning rate 2e-4, values in [0, 1]), written out here
without inrkit so that it is a fair outside reference.

Every run gets the same wall-clock budget (``--budget-seconds``, default 120);
none is stopped early. Recorded per run: the PSNR reached (best record, the
parameters ``fit`` returns), the wall seconds to reach the reference loop's
final PSNR, and to reach 25, 30 and 35 dB when reached. Wall seconds include
everything after the fit starts: compilation and the full-image evaluations
of minibatch runs. The machine may be shared, so timings are noisy; the JSON
keeps the load average before and after. Torch runs one CPU thread unless
``--threads`` says otherwise: with other jobs on a 2-core machine, two OpenMP
threads waited on each other and every loop ran 5-10x slower than with one.

    python benchmarks/fit_speed.py [--budget-seconds 120] [--image PATH] [--crop 256]
                                   [--out benchmarks/results/fit_speed.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from inrkit.datasets import Signal
from inrkit.inr import build_field
from inrkit.inr.fit import fit

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INRKIT_DATA", HERE.parent.parent / "shared" / "data"))
MILESTONES = (25.0, 30.0, 35.0)

# Architecture and training settings per backbone and parameter budget. The
# shapes are chosen to land near the budget (exact counts are printed); the
# training settings are our tuned defaults for CPU fitting.
RECIPES: dict[str, dict[str, dict]] = {
    "8k": {
        "siren": {"config": {"width": 50, "depth": 3}, "lr": 2e-3, "batch_size": 4096},
        "spder": {"config": {"width": 50, "depth": 3}, "lr": 1e-3, "batch_size": 8192},
        "polyinr": {"config": {"width": 32, "levels": 8}, "lr": 1e-2, "batch_size": 8192},
        "fourier": {
            "config": {"width": 32, "depth": 2, "num_features": 64, "sigma": 10.0},
            "lr": 3e-3, "batch_size": 8192,
        },
        "hashgrid": {
            "config": {"n_levels": 8, "log2_hashmap_size": 9, "base_resolution": 8,
                       "finest_resolution": 256, "mlp_width": 16, "mlp_depth": 1},
            "lr": 1e-2, "batch_size": 4096,
        },
    },
    "64k": {
        "siren": {"config": {"width": 144, "depth": 3}, "lr": 5e-4, "batch_size": 4096},
        "spder": {"config": {"width": 144, "depth": 3}, "lr": 5e-4, "batch_size": 4096},
        "polyinr": {"config": {"width": 92, "levels": 8}, "lr": 1e-2, "batch_size": 8192},
        "fourier": {
            "config": {"width": 128, "depth": 2, "num_features": 128, "sigma": 10.0},
            "lr": 1e-3, "batch_size": 8192,
        },
        "hashgrid": {
            "config": {"n_levels": 12, "log2_hashmap_size": 12, "base_resolution": 16,
                       "finest_resolution": 256, "mlp_width": 32, "mlp_depth": 1},
            "lr": 1e-2, "batch_size": 8192,
        },
    },
}


# -- the outside reference: COIN's loop in plain PyTorch ---------------------------------
class CoinSineLayer(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, first: bool, omega: float = 30.0):
        super().__init__()
        self.omega, self.linear = omega, nn.Linear(fan_in, fan_out)
        bound = 1 / fan_in if first else math.sqrt(6 / fan_in) / omega
        nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x):
        return torch.sin(self.omega * self.linear(x))


def coin_siren(layers: int = 10, width: int = 28) -> nn.Sequential:
    """COIN's SIREN: ``layers`` linear layers in all, the last one linear."""
    hidden = [CoinSineLayer(2, width, True)]
    hidden += [CoinSineLayer(width, width, False) for _ in range(layers - 2)]
    last = nn.Linear(width, 3)
    bound = math.sqrt(6 / width) / 30.0
    nn.init.uniform_(last.weight, -bound, bound)
    return nn.Sequential(*hidden, last)


def reference_loop(image: torch.Tensor, budget: float, seed: int) -> dict:
    """COIN's training loop: full batch, Adam 2e-4, MSE on [0, 1] values, best PSNR kept."""
    torch.manual_seed(seed)
    model = coin_siren()
    h, w = image.shape[1:]
    coords = torch.stack(
        torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij"), -1
    ).reshape(-1, 2)
    target = image.permute(1, 2, 0).reshape(-1, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    seconds, psnrs, best = [], [], -math.inf
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        optimizer.zero_grad()
        loss = torch.mean((model(coords) - target) ** 2)
        loss.backward()
        optimizer.step()
        best = max(best, 10 * math.log10(1.0 / loss.item()))
        seconds.append(time.perf_counter() - start)
        psnrs.append(best)
    return {
        "backbone": "COIN reference loop (plain PyTorch)",
        "params": sum(p.numel() for p in model.parameters()),
        "config": {"layers": 10, "width": 28, "omega_0": 30, "lr": 2e-4, "batch": "full"},
        "steps": len(psnrs),
        "psnr": best,
        "seconds": seconds,
        "psnrs": psnrs,
    }


# -- our backbones -------------------------------------------------------------------------
def count_params(name: str, config: dict) -> int:
    field = build_field(name, in_dim=2, out_channels=3, **config)
    return sum(p.numel() for p in field.parameters())


def run_backbone(signal: Signal, name: str, recipe: dict, budget: float, seed: int) -> dict:
    result = fit(
        signal, name, time_budget=budget, lr=recipe["lr"], batch_size=recipe["batch_size"],
        compile=False, log_every=1 if recipe["batch_size"] is None else None, seed=seed,
        **recipe["config"],
    )
    return {
        "backbone": name,
        "params": sum(p.numel() for p in result.field.parameters()),
        "config": recipe["config"],
        "lr": recipe["lr"],
        "batch_size": recipe["batch_size"],
        "compiled": result.compiled,
        "steps": result.steps,
        "psnr": result.psnr,
        "seconds": result.history["seconds"],
        "psnrs": np.maximum.accumulate(result.history["psnr"]).tolist(),
    }


def seconds_to(run: dict, db: float) -> float | None:
    for seconds, psnr in zip(run["seconds"], run["psnrs"], strict=True):
        if psnr >= db:
            return seconds
    return None


def load_crop(path: Path, crop: int) -> Signal:
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as error:
        sys.exit(f"fit_speed: cannot read image {path}: {error}")
    h, w = rgb.shape[:2]
    if crop > min(h, w):
        sys.exit(f"fit_speed: crop {crop} is larger than the {w}×{h} image {path}")
    top, left = (h - crop) // 2, (w - crop) // 2
    tile = rgb[top : top + crop, left : left + crop]
    data = torch.from_numpy(tile.copy()).permute(2, 0, 1).float() / 255.0
    return Signal(data, "image", source=str(path))


def summarise(run: dict, reference_psnr: float) -> dict:
    row = {k: v for k, v in run.items() if k not in ("seconds", "psnrs")}
    row["seconds_to_reference"] = seconds_to(run, reference_psnr)
    for db in MILESTONES:
        row[f"seconds_to_{db:g}dB"] = seconds_to(run, db)
    return row


def markdown(rows: list[dict], reference: dict, budget: float) -> str:
    def fmt(value):
        return "–" if value is None else f"{value:.1f}"

    ref_time = seconds_to(reference, reference["psnr"])
    lines = [
        f"| budget | backbone | params | PSNR after {budget:g} s (dB) | s to reference PSNR "
        f"({reference['psnr']:.2f} dB) | speed-up | s to 25 dB | s to 30 dB | s to 35 dB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| – | COIN loop (reference) | {reference['params']} | {reference['psnr']:.2f} | "
        f"{fmt(ref_time)} | 1× | {fmt(seconds_to(reference, 25))} | {fmt(seconds_to(reference, 30))} "
        f"| {fmt(seconds_to(reference, 35))} |",
    ]
    for row in rows:
        t = row["seconds_to_reference"]
        speedup = "–" if t is None else f"{ref_time / max(t, 1e-9):.1f}×"
        lines.append(
            f"| {row['budget']} | {row['backbone']} | {row['params']} | {row['psnr']:.2f} | {fmt(t)} | "
            f"{speedup} | {fmt(row['seconds_to_25dB'])} | {fmt(row['seconds_to_30dB'])} | "
            f"{fmt(row['seconds_to_35dB'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-seconds", type=float, default=120.0)
    parser.add_argument("--image", type=Path, default=DATA / "images" / "kodim07.png")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "fit_speed.json")
    parser.add_argument("--budgets", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--backbones", nargs="+", default=None, help="default: all in RECIPES")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: on a shared 2-core machine two OpenMP threads "
        "stall each other and ran 5-10x slower than one)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    signal = load_crop(args.image, args.crop)
    print(f"{args.image} central {args.crop}×{args.crop} crop, {args.budget_seconds:g} s per run, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}", flush=True)
    for budget in args.budgets:
        for name, recipe in RECIPES[budget].items():
            if args.backbones is None or name in args.backbones:
                print(f"  {budget:>4} {name:<9} {count_params(name, recipe['config']):>6} parameters "
                      f"{recipe['config']}", flush=True)

    load_before = os.getloadavg()
    reference = reference_loop(signal.data, args.budget_seconds, args.seed)
    print(f"reference COIN loop: {reference['psnr']:.2f} dB after {reference['steps']} steps", flush=True)
    rows = []
    for budget in args.budgets:
        for name, recipe in RECIPES[budget].items():
            if args.backbones is not None and name not in args.backbones:
                continue
            run = run_backbone(signal, name, recipe, args.budget_seconds, args.seed)
            row = {"budget": budget, **summarise(run, reference["psnr"])}
            rows.append(row)
            print(f"{budget:>4} {name:<9} {row['psnr']:6.2f} dB, {row['steps']} steps, reference PSNR "
                  f"after {row['seconds_to_reference']} s", flush=True)

    table = markdown(rows, reference, args.budget_seconds)
    report = {
        "name": "fit_speed",
        "description": __doc__.splitlines()[0],
        "image": str(args.image),
        "crop": args.crop,
        "budget_seconds": args.budget_seconds,
        "machine": {
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
        },
        "reference": summarise(reference, reference["psnr"]),
        "runs": rows,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, suffix=".tmp", delete=False) as tmp:
        json.dump(report, tmp, indent=2)
    os.replace(tmp.name, args.out)
    print()
    print(table)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
