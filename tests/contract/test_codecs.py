"""The contract every inrkit codec keeps, run over every registered codec's frozen file
(``frozen_cases.py``; ``test_frozen.py`` refuses a codec without one): the file decodes
to the signal its header describes, its rate is its size, it decodes to the same samples
whatever the thread count and in another process, and hostile changes to it end in a
clean error."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inrkit.codecs import Codec
from inrkit.codecs.bitstream.container import pack, unpack
from inrkit.codecs.bitstream.info import describe
from inrkit.codecs.specs import decode
from inrkit.errors import BitstreamError, ModelError
from inrkit.eval import fuzz

from .frozen_cases import CASES, samples_digest

ids = [case.name for case in CASES]


def decoded(case, data=None, threads=1):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = None if case.model_file is None else str(case.model_file)
        return decode(case.file.read_bytes() if data is None else data, model=model)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_round_trip_gives_the_signal_the_header_describes(case):
    container = unpack(case.file.read_bytes())
    signal = decoded(case)
    assert signal.modality == container.modality == case.signal().modality
    assert list(signal.data.shape) == container.shape == list(case.signal().data.shape)
    assert torch.isfinite(signal.data).all()


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_rate_is_the_file_size(case):
    data = case.file.read_bytes()
    report = describe(case.file)
    rate = Codec.measured_rate(case.signal(), data)
    assert report["bytes"] == len(data) == case.file.stat().st_size
    assert report.get("bpp", report.get("kbps")) == pytest.approx(rate, rel=1e-5)
    assert sum(report["bits_per_section"].values()) == 8 * len(data)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_same_samples_with_one_or_two_threads(case):
    assert samples_digest(decoded(case, threads=2).data) == samples_digest(decoded(case).data)


def test_same_samples_in_another_process():
    here = {case.name: samples_digest(decoded(case).data) for case in CASES}
    script = (
        "import json, torch\n"
        "from tests.contract.test_codecs import CASES, decoded, samples_digest\n"
        "print(json.dumps({c.name: samples_digest(decoded(c).data) for c in CASES}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                         check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_truncated_or_flipped_files_are_bitstream_errors(case):
    data = case.file.read_bytes()
    rnd = random.Random(0)
    for cut in sorted({1, 5, 12, len(data) // 3, len(data) // 2, len(data) - 5, len(data) - 1}):
        with pytest.raises(BitstreamError):
            decoded(case, data[:cut])
    for _ in range(8):
        flipped = bytearray(data)
        flipped[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        with pytest.raises(BitstreamError):
            decoded(case, bytes(flipped))


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_hostile_headers_are_refused_or_decode(case):
    """Every header value replaced by a hostile one (valid CRC): a clean error or a
    decoded signal, never another exception."""
    data = case.file.read_bytes()
    container = unpack(data)
    hostile = fuzz.HOSTILE_VALUES
    paths = list(_leaves(container.header))
    assert paths, "every inrkit codec writes a header"
    for path in paths:
        for value in hostile[:: max(1, len(hostile) * len(paths) // 120)]:
            mutated = unpack(data)
            _set(mutated.header, path, value)
            try:
                bad = pack(mutated)
            except Exception:  # noqa: BLE001 - a value the container cannot even write
                continue
            try:
                decoded(case, bad)
            except (BitstreamError, ModelError):
                pass


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_short_fuzz_never_crashes(case):
    model = None if case.model_file is None else str(case.model_file)
    report = fuzz.run([case.file.read_bytes()], cases=25, seed=1, timeout=30, models=[model])
    assert report["crashes"] == 0, report["crash_examples"]


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value[:4]):
            yield from _leaves(item, (*path, i))
    else:
        yield path


def _set(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
