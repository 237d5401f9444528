"""One rate point: encode, decode, time both, and read the rate off the file.

Every rate–distortion measurement in the project (:func:`inrkit.eval.rd.sweep` and the
scripts under ``benchmarks/``) takes the same steps; they differ only in how they score
the reconstruction, so that stays with the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from inrkit.codecs.base import Codec, EncodeOptions, Rate
from inrkit.datasets.signal import Signal

from .results import rate_key


@dataclass(frozen=True)
class RoundTrip:
    data: bytes
    decoded: Signal
    encoding_time: float  # seconds
    decoding_time: float
    rate_key: str  # "bpp" or "kbps"
    rate: float  # Codec.measured_rate: from len(data)

    def row(self) -> dict:
        """``{bpp|kbps, bytes, encoding_time, decoding_time}`` for a results row."""
        return {
            self.rate_key: self.rate,
            "bytes": len(self.data),
            "encoding_time": self.encoding_time,
            "decoding_time": self.decoding_time,
        }


def round_trip(
    codec: Codec, signal: Signal, rate: Rate, options: EncodeOptions | None = None
) -> RoundTrip:
    start = time.perf_counter()
    data = codec.encode(signal, rate, options)
    encoding_time = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(data)
    decoding_time = time.perf_counter() - start
    return RoundTrip(data, decoded, encoding_time, decoding_time,
                     rate_key(signal.modality), codec.measured_rate(signal, data))  # fmt: skip
