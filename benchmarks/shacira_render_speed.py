"""How much faster is SHACIRA's separable grid rendering than the per-point path?

For each grid (a 768×512 image, a 1.43 s mono clip at 48 kHz, 32 frames of
180×320 video) a SHACIRA model of the codec's configuration for that signal,
with random integer latents, is rendered two ways in one process, alternating:
the per-point path (``ShaciraModel.render_per_point``: ``corners`` + ``interpolate``
on every sample's coordinates, in chunks of 2^16, which is how clips and videos
were decoded before) and ``ShaciraModel.render`` (``MultiresGrid.interpolate_grid``:
each level's lattice gathered once and interpolated axis by axis). Both must agree to float rounding;
the benchmark fails if they do not. The best of ``--repeats`` runs is reported.

    python benchmarks/shacira_render_speed.py [--repeats 3] [--threads 1]
                                             [--out benchmarks/results/shacira_render_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from inrkit.datasets.signal import Signal
from inrkit.inr.latents.shacira import ShaciraConfig, ShaciraModel

GRIDS = {
    "image 768x512": Signal(torch.zeros(3, 512, 768), "image"),
    "audio 68545 samples": Signal(torch.zeros(1, 68545), "audio", sample_rate=48000),
    "video 32x180x320": Signal(torch.zeros(32, 3, 180, 320), "video"),
}


def best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/shacira_render_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, signal in GRIDS.items():
        torch.manual_seed(0)
        model = ShaciraModel(ShaciraConfig.for_signal(signal))
        with torch.no_grad():
            model.grid.latents.normal_(0, 3)
        shape = signal.grid_shape
        slow, reference = best_time(lambda m=model, s=shape: m.render_per_point(s), args.repeats)
        fast, out = best_time(lambda m=model, s=shape: m.render(s), args.repeats)
        error = float((out - reference).abs().max())
        if error > 1e-4:
            raise SystemExit(f"{name}: the two paths differ by {error:g}")
        rows.append({"grid": name, "samples": signal.num_samples, "per_point_s": round(slow, 4),
                     "separable_s": round(fast, 4), "speedup": round(slow / fast, 1),
                     "max_abs_difference": error})  # fmt: skip
    print(f"{'grid':<22} {'per-point s':>12} {'separable s':>12} {'speed-up':>9}")
    for r in rows:
        print(f"{r['grid']:<22} {r['per_point_s']:>12.3f} {r['separable_s']:>12.3f} {r['speedup']:>8.1f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"threads": args.threads, "load_average": os.getloadavg(), "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
