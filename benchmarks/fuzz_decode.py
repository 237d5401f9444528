"""Fuzz the .inrk decode path: mutated files must end in BitstreamError, never a crash.

Each case mutates a seed file and decodes it through the whole path:
``unpack`` (framing, header JSON, CRC), then either the codec registered under
the file's codec name (``inrkit.registry.CODECS``) or, for the built-in seed,
a small reference decoder (weights through ``deserialize_quantized`` /
``decode_integers`` into a tiny MLP, rendered and wrapped by
``meta_to_signal``). Mutations:

* ``flip``       1–8 random bit flips (the CRC catches these)
* ``truncate``   cut at a random point
* ``extend``     random bytes appended
* ``splice``     a random range replaced by random bytes or bytes of another seed
* ``random``     random bytes after a valid magic and version
* ``*+crc``      the same four with the CRC recomputed, so the parser itself is exercised
* ``header``     the JSON header rewritten (values changed, keys dropped, types swapped), valid CRC
* ``fixed``      a byte of the fixed fields (versions, codec, modality, shape) changed, valid CRC
* ``section``    a section's payload flipped, cut, extended or swapped, valid CRC, so the
                 entropy decoder and the dequantizer see corrupt streams

Learned codecs decode with the model files given by ``--model CODEC=PATH``; for them
a ModelError (a mutated model hash) is an expected outcome too.

Reported: crashes (any exception other than BitstreamError or ModelError; must be 0), the
outcome of every mutation kind, the slowest decode and the peak memory
(tracemalloc for Python/NumPy allocations, ru_maxrss for the process).

Usage::

    python benchmarks/fuzz_decode.py                       # built-in seeds, 12,000 cases
    python benchmarks/fuzz_decode.py --seed-file a.inrk --seed-file b.inrk --cases 20000
    python benchmarks/fuzz_decode.py --seed-file v.inrk --model vcinr=vcinr.safetensors --no-builtin
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import signal
import struct
import sys
import time
import traceback
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inrkit.codecs.bitstream.container import Container, meta_to_signal, pack, unpack
from inrkit.codecs.bitstream.quantize import (
    deserialize_quantized,
    load_quantized_state,
    quantize_state,
    serialize_quantized,
    spec_of,
)
from inrkit.datasets import Signal, coordinate_grid
from inrkit.errors import BitstreamError, ModelError
from inrkit.registry import CODECS

SEED_CODEC = "fuzz-mlp"
RESULTS = Path(__file__).resolve().parent / "results" / "fuzz_decode.json"


# -- the built-in seed and its decoder -------------------------------------------------


def seed_mlp(width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(2, width), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 3))
    return nn.Sequential(*layers)


def make_seeds() -> list[bytes]:
    """Small files covering every integer-stream mode and both table layouts."""
    torch.manual_seed(0)
    signal_ = Signal(torch.rand(3, 12, 16), "image")
    seeds = []
    for width, depth, bits, per_channel in [(16, 1, 8, False), (12, 2, 4, True), (8, 0, 16, False)]:
        model = seed_mlp(width, depth)
        if bits == 4:  # a zero tensor (CONST streams) and a wide-range one (RAW/escapes)
            with torch.no_grad():
                model[2].bias.zero_()
                model[0].weight[0, 0] = 50.0
        header, sections = serialize_quantized(quantize_state(model, bits, per_channel))
        arch = {"width": width, "depth": depth}
        seeds.append(pack(Container.for_signal(SEED_CODEC, 1, signal_, {"arch": arch, "q": header}, sections)))
    return seeds


def decode_seed(data: bytes) -> Signal:
    """Reference decoder for the built-in seed: the same steps an INR codec takes."""
    c = unpack(data)
    arch = c.header.get("arch")
    if not isinstance(arch, dict):
        raise BitstreamError("header 'arch' must be an object")
    width, depth = arch.get("width"), arch.get("depth")
    # type(...) is int, not isinstance: JSON true/false are Python bools, and bools are ints
    if not (type(width) is int and 1 <= width <= 64 and type(depth) is int and 0 <= depth <= 4):
        raise BitstreamError(f"bad architecture {arch!r}")
    if c.modality != "image" or len(c.shape) != 3 or c.shape[0] != 3 or c.shape[1] * c.shape[2] > 1 << 16:
        raise BitstreamError(f"the seed decoder renders small RGB images, not {c.modality} {c.shape}")
    model = seed_mlp(width, depth)
    load_quantized_state(model, deserialize_quantized(c.header.get("q"), c.sections, spec_of(model)))
    with torch.no_grad():
        values = model(coordinate_grid(tuple(c.shape[1:])))
    return meta_to_signal(c.signal_meta(), ((values.clamp(-1, 1) + 1) / 2).permute(2, 0, 1))


MODELS: dict[str, str] = {}
"""Trained model files of learned codecs (``--model NAME=PATH``)."""


def decoder_for(data: bytes):
    """The decode function for a file, dispatched on its codec name as ``inrkit.decode``
    does: a name no codec is registered under is a bad file, so a BitstreamError."""
    c = unpack(data)
    if c.codec == SEED_CODEC:
        return decode_seed
    if c.codec not in CODECS:
        raise BitstreamError(f"the file names codec {c.codec!r}, which this inrkit does not have")
    model = {"model": MODELS[c.codec]} if c.codec in MODELS else {}
    return CODECS.get(c.codec)(**model).decode


# -- mutations ------------------------------------------------------------------------------


def refix(data: bytes | bytearray) -> bytes:
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def flip(rnd: random.Random, d: bytearray, _seeds) -> bytearray:
    for _ in range(rnd.randint(1, 8)):
        d[rnd.randrange(len(d))] ^= 1 << rnd.randrange(8)
    return d


def truncate(rnd, d, _seeds):
    return d[: rnd.randrange(len(d))]


def extend(rnd, d, _seeds):
    return d + rnd.randbytes(rnd.choice([1, 2, 4, 16, 300]))


def splice(rnd, d, seeds):
    a = rnd.randrange(len(d))
    b = min(len(d), a + rnd.randint(1, 64))
    if rnd.random() < 0.5:
        donor = rnd.choice(seeds)
        c = rnd.randrange(len(donor))
        insert = donor[c : c + rnd.randint(1, 64)]
    else:
        insert = rnd.randbytes(rnd.randint(0, 64))
    return d[:a] + insert + d[b:]


def random_bytes(rnd, d, _seeds):
    return bytearray(d[:5] + rnd.randbytes(rnd.randint(0, 200)))


def _mutate_json(rnd: random.Random, value, depth=0):
    """Replace one leaf or key somewhere in a JSON value with something hostile."""
    hostile = [None, True, -1, 0, 2**31, 2**63, 10**30, -(10**30), 1e308, 0.5, "", "x" * 300, [], {}, [1] * 50]
    if isinstance(value, dict) and value and rnd.random() < 0.8:
        key = rnd.choice(list(value))
        out = dict(value)
        action = rnd.random()
        if action < 0.15:
            del out[key]
        elif action < 0.25:
            out[key + "_"] = out.pop(key)
        else:
            out[key] = _mutate_json(rnd, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and rnd.random() < 0.8:
        out = list(value)
        i = rnd.randrange(len(out))
        if rnd.random() < 0.2:
            del out[i]
        else:
            out[i] = _mutate_json(rnd, out[i], depth + 1)
        return out
    if isinstance(value, int) and not isinstance(value, bool) and rnd.random() < 0.5:
        return value + rnd.choice([-(2**20), -2, -1, 1, 2, 7, 2**20])
    return rnd.choice(hostile)


def header(rnd, d, _seeds):
    c = unpack(bytes(d))
    c.header = _mutate_json(rnd, c.header)
    try:
        return bytearray(pack(c))
    except Exception:  # a mutation pack itself refuses: fall back to a raw flip
        return flip(rnd, d, _seeds)


def fixed(rnd, d, _seeds):
    d[rnd.randrange(5, min(len(d) - 4, 24))] = rnd.randrange(256)
    return bytearray(refix(d))


def section(rnd, d, seeds):
    c = unpack(bytes(d))
    if not c.sections:
        return flip(rnd, d, seeds)
    name = rnd.choice(list(c.sections))
    payload = bytearray(c.sections[name])
    action = rnd.random()
    if action < 0.45 and payload:
        for _ in range(rnd.randint(1, 3)):
            payload[rnd.randrange(len(payload))] ^= 1 << rnd.randrange(8)
    elif action < 0.6 and payload:
        payload = payload[: rnd.randrange(len(payload))]
    elif action < 0.7:
        payload += rnd.randbytes(rnd.randint(1, 8))
    elif action < 0.85 and payload:  # overwrite the stream's own header bytes
        for i in range(min(len(payload), rnd.randint(1, 12))):
            if rnd.random() < 0.5:
                payload[i] = rnd.randrange(256)
    else:  # a section from another seed
        other = unpack(rnd.choice(seeds))
        payload = bytearray(other.sections.get(name, rnd.randbytes(16)))
    c.sections[name] = bytes(payload)
    return bytearray(pack(c))


def with_crc(mutation):
    def mutate(rnd, d, seeds):
        out = mutation(rnd, d, seeds)
        return bytearray(refix(out)) if len(out) >= 4 else out

    return mutate


MUTATIONS = {
    "flip": flip,
    "truncate": truncate,
    "extend": extend,
    "splice": splice,
    "random": random_bytes,
    "flip+crc": with_crc(flip),
    "truncate+crc": with_crc(truncate),
    "extend+crc": with_crc(extend),
    "splice+crc": with_crc(splice),
    "header": header,
    "fixed": fixed,
    "section": section,
}
WEIGHTS = {"flip": 1, "truncate": 1, "extend": 1, "splice": 1, "random": 1, "flip+crc": 2, "truncate+crc": 1,
           "extend+crc": 1, "splice+crc": 2, "header": 3, "fixed": 2, "section": 5}


# -- the run --------------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise Hang()


def run(seeds: list[bytes], cases: int, seed: int, timeout: float) -> dict:
    for s in seeds:  # every seed must decode cleanly, or the fuzzing says nothing
        decoder_for(s)(s)
    rnd = random.Random(seed)
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    outcomes: dict[str, collections.Counter] = {k: collections.Counter() for k in MUTATIONS}
    crashes, times = [], []
    slowest = (0.0, "")
    signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    start = time.perf_counter()
    for i in range(cases):
        kind = rnd.choices(names, weights)[0]
        base = rnd.choice(seeds)
        data = bytes(MUTATIONS[kind](rnd, bytearray(base), seeds))
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            decoder_for(data)(data)
            outcome = "decoded" if data != base else "unchanged"
        except BitstreamError:
            outcome = "BitstreamError"
        except ModelError:  # a mutated model hash: the file asks for another model
            outcome = "ModelError"
        except Hang:
            outcome = "hang"
            crashes.append({"case": i, "kind": kind, "error": f"no result within {timeout} s"})
        except Exception as e:  # noqa: BLE001 - this is what the fuzzer is looking for
            outcome = type(e).__name__
            crashes.append({"case": i, "kind": kind, "error": repr(e)[:300],
                            "trace": traceback.format_exc(limit=4)[-1500:], "file_hex": data[:400].hex()})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.perf_counter() - t0
        times.append(dt)
        if dt > slowest[0]:
            slowest = (dt, kind)
        outcomes[kind][outcome] += 1
    total = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "cases": cases,
        "seed": seed,
        "seed_files": len(seeds),
        "seed_bytes": [len(s) for s in seeds],
        "crashes": len(crashes),
        "crash_examples": crashes[:10],
        "outcomes": {k: dict(v) for k, v in outcomes.items()},
        "slowest_decode_s": round(slowest[0], 4),
        "slowest_kind": slowest[1],
        "median_decode_ms": round(1000 * float(np.median(times)), 3),
        "total_s": round(total, 2),
        "peak_traced_mib": round(peak / 2**20, 2),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed-file", action="append", default=[],
                        help=".inrk file(s) to mutate, decoded by their registered codec (repeatable)")
    parser.add_argument("--no-builtin", action="store_true", help="mutate only the --seed-file files")
    parser.add_argument("--model", action="append", default=[], metavar="CODEC=PATH",
                        help="trained model file for seed files of a learned codec (repeatable)")
    parser.add_argument("--cases", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a decode counts as a hang")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"--model takes CODEC=PATH, got {spec!r}")
        MODELS[name] = path
    seeds = [Path(p).read_bytes() for p in args.seed_file]
    if not args.no_builtin or not seeds:
        seeds += make_seeds()
    result = run(seeds, args.cases, args.seed, args.timeout)
    result["seed_source"] = [*args.seed_file] + ([] if args.no_builtin else [f"built-in ({SEED_CODEC}) x3"])
    result["codecs"] = sorted({unpack(s).codec for s in seeds})

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)

    print(f"{'mutation':<14}{'cases':>7}{'BitstreamError':>16}{'decoded':>9}{'other':>7}")
    for kind, counts in result["outcomes"].items():
        n = sum(counts.values())
        other = (n - counts.get("BitstreamError", 0) - counts.get("ModelError", 0)
                 - counts.get("decoded", 0) - counts.get("unchanged", 0))
        decoded = counts.get("decoded", 0) + counts.get("unchanged", 0)
        print(f"{kind:<14}{n:>7}{counts.get('BitstreamError', 0):>16}{decoded:>9}{other:>7}")
    print(
        f"\n{result['cases']} cases in {result['total_s']} s: {result['crashes']} crashes; slowest decode "
        f"{result['slowest_decode_s']} s ({result['slowest_kind']}), median {result['median_decode_ms']} ms; "
        f"peak traced {result['peak_traced_mib']} MiB, max RSS {result['max_rss_mib']} MiB\n-> {args.out}"
    )
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
