"""Fuzz the .inrk decode path at scale: mutated files must end in BitstreamError, never a crash.

The seeds are the frozen files of every inrkit codec (``tests/contract/frozen/``, with the
tiny models of the learned codecs), plus any ``--seed-file``; the mutations and the run are
:mod:`inrkit.eval.fuzz`. Reported: crashes (any exception other than BitstreamError or
ModelError, and hangs; must be 0), the outcome of every mutation kind, the slowest decode
and the peak memory.

Usage::

    python benchmarks/fuzz_decode.py                       # the frozen files, 12,000 cases
    python benchmarks/fuzz_decode.py --seed-file a.inrk --cases 20000
    python benchmarks/fuzz_decode.py --seed-file v.inrk:vcinr.safetensors --no-frozen
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from inrkit.codecs.bitstream.container import unpack
from inrkit.eval.fuzz import run
from inrkit.eval.results import write_json

FROZEN = Path(__file__).resolve().parents[1] / "tests" / "contract" / "frozen"
RESULTS = Path(__file__).resolve().parent / "results" / "fuzz_decode.json"


def _shown(path: Path) -> str:
    """A seed's path as the results record it: relative to the repository where it can be."""
    try:
        return str(path.resolve().relative_to(FROZEN.parents[2]))
    except ValueError:
        return str(path)


def frozen_seeds() -> list[tuple[Path, Path | None]]:
    """Every frozen ``.inrk`` with the model file beside it, if it has one."""
    seeds = []
    for path in sorted(FROZEN.glob("*.inrk")):
        model = path.with_suffix(".safetensors")
        seeds.append((path, model if model.is_file() else None))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed-file", action="append", default=[], metavar="FILE[:MODEL]",
                        help=".inrk file to mutate, with the model file a learned codec needs (repeatable)")
    parser.add_argument("--no-frozen", action="store_true", help="mutate only the --seed-file files")
    parser.add_argument("--cases", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a decode counts as a hang")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    given = []
    for spec in args.seed_file:
        path, _, model = spec.partition(":")
        given.append((Path(path), Path(model) if model else None))
    seeds = given + ([] if args.no_frozen else frozen_seeds())
    if not seeds:
        parser.error("no seed files: give --seed-file or drop --no-frozen")
    files = [path.read_bytes() for path, _ in seeds]
    result = run(files, args.cases, args.seed, args.timeout,
                 models=[None if model is None else str(model) for _, model in seeds])
    result["seed_files"] = [_shown(path) for path, _ in seeds]
    result["codecs"] = sorted({unpack(data).codec for data in files})

    write_json(args.out, result)

    print(f"{'mutation':<14}{'cases':>7}{'BitstreamError':>16}{'ModelError':>12}{'decoded':>9}{'other':>7}")
    for kind, counts in result["outcomes"].items():
        n = sum(counts.values())
        clean = {k: counts.get(k, 0) for k in ("BitstreamError", "ModelError")}
        decoded = counts.get("decoded", 0) + counts.get("unchanged", 0)
        other = n - sum(clean.values()) - decoded
        print(f"{kind:<14}{n:>7}{clean['BitstreamError']:>16}{clean['ModelError']:>12}{decoded:>9}{other:>7}")
    print(
        f"\n{result['cases']} cases over {len(files)} seeds ({', '.join(result['codecs'])}) in "
        f"{result['total_s']} s: {result['crashes']} crashes; slowest decode {result['slowest_decode_s']} s "
        f"({result['slowest_kind']}), median {result['median_decode_ms']} ms; peak traced "
        f"{result['peak_traced_mib']} MiB, max RSS {result['max_rss_mib']} MiB\n-> {args.out}"
    )
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
