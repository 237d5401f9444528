"""Mutation fuzzing of the decode path: mutated files must end in BitstreamError, never a crash.

Each case mutates a seed ``.inrk`` file and decodes it through the whole path that
``inrkit decode`` takes (:func:`inrkit.codecs.specs.decode`: the container's framing,
header JSON and CRC, then the codec the file names). Mutations:

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

``benchmarks/fuzz_decode.py`` runs it at scale; the contract tests run a short fuzz of
every codec.
"""

from __future__ import annotations

import collections
import random
import resource
import signal
import struct
import time
import traceback
import tracemalloc
import zlib
from typing import Any

import numpy as np

from inrkit.codecs.bitstream.container import pack, unpack
from inrkit.codecs.specs import decode as decode_file
from inrkit.errors import BitstreamError, InputError, ModelError

__all__ = ["HOSTILE_VALUES", "MUTATIONS", "run"]


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


HOSTILE_VALUES: tuple[Any, ...] = (None, True, -1, 0, 2**31, 2**63, 10**30, -(10**30), 1e308, 0.5, "",
                                   "x" * 300, [], {}, [1] * 50)
"""What a hostile header puts in place of a value: wrong types, zero, huge and negative
numbers, long strings, empty and long containers."""


def _mutate_json(rnd: random.Random, value, depth=0):
    """Replace one leaf or key somewhere in a JSON value with something hostile."""
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
    return rnd.choice(HOSTILE_VALUES)


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


def run(seeds: list[bytes], cases: int, seed: int = 0, timeout: float = 10.0,
        models: list[str | None] | None = None) -> dict:
    """Decode ``cases`` mutations of the ``seeds`` (whole ``.inrk`` files); the report.

    Args:
        seeds: files to mutate; each must decode cleanly first, or fuzzing says nothing.
        cases: how many mutated files to decode.
        seed: seeds the choice of seed file, mutation kind and mutation.
        timeout: seconds after which a decode counts as a hang (SIGALRM: call it from
            the main thread).
        models: the model file each seed of a learned codec decodes with (None for the
            others), in the order of ``seeds``; for them a ModelError (a mutated model
            hash) is an expected outcome.

    Returns:
        A JSON-ready dict: ``crashes`` (any exception other than BitstreamError or
        ModelError, and hangs; must be 0), ``crash_examples``, ``outcomes`` per mutation
        kind, the slowest and median decode, total time and peak memory.
    """
    models = models or [None] * len(seeds)
    if len(models) != len(seeds):
        raise InputError(f"give one model entry per seed: {len(seeds)} seeds, {len(models)} models")
    for data, model in zip(seeds, models, strict=True):
        decode_file(data, model=model)
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
        which = rnd.randrange(len(seeds))
        base, model = seeds[which], models[which]
        data = bytes(MUTATIONS[kind](rnd, bytearray(base), seeds))
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            decode_file(data, model=model)
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
