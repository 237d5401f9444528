import json
import math

import pytest

from inrkit import InputError
from inrkit.eval.results import (
    make_results,
    quality_at_rate,
    read_results,
    validate_results,
    write_json,
)


def test_make_results_sorts_by_rate_and_write_is_strict_json(tmp_path):
    rows = [
        {"bpp": 1.0, "psnr-rgb": 33.0, "ms-ssim-rgb": 0.98, "encoding_time": 0.1, "decoding_time": 0.1},
        {"bpp": 0.5, "psnr-rgb": math.inf, "ms-ssim-rgb": 0.95, "encoding_time": 0.2, "decoding_time": 0.1},
    ]
    doc = make_results("jpeg", "test", rows, "bpp", ("psnr-rgb", "ms-ssim-rgb"))
    assert doc["results"]["bpp"] == [0.5, 1.0]
    assert list(doc["results"]) == ["bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"]
    path = write_json(tmp_path / "jpeg.json", doc)
    text = path.read_text()
    assert "Infinity" not in text and json.loads(text)["results"]["psnr-rgb"] == [None, 33.0]
    assert read_results(path)["name"] == "jpeg"
    assert [p.name for p in tmp_path.iterdir()] == ["jpeg.json"]  # no temporary files left


@pytest.mark.parametrize(
    "doc, message",
    [
        ([], "CompressAI results JSON object"),
        ({"results": {"bpp": [1]}}, "string 'name'"),
        ({"name": "x", "results": {"psnr": [1]}}, "rate list"),
        ({"name": "x", "results": {"bpp": [1, 2], "psnr-rgb": [1]}}, "same length"),
        ({"name": "x", "results": {"bpp": ["a"]}}, "must hold numbers"),
    ],
)
def test_validate_rejects_malformed_documents(doc, message):
    with pytest.raises(InputError, match=message):
        validate_results(doc)


def test_read_results_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="no such results file"):
        read_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        read_results(bad)


def test_packaged_kodak_reference_is_well_formed():
    from inrkit.eval.plot import kodak_reference

    ref = kodak_reference()
    assert "24" in ref["dataset"]
    for name, curve in ref["methods"].items():
        assert curve["source"] and len(curve["bpp"]) == len(curve["psnr-rgb"]) >= 3, name
        assert curve["bpp"] == sorted(curve["bpp"])
    assert ref["methods"]["JPEG"]["psnr-rgb"][0] == pytest.approx(23.78, abs=0.01)


def test_quality_at_rate_interpolates_linearly_in_log_rate():
    doc = {"name": "x", "results": {"bpp": [1.0, 0.25, 0.5], "psnr-rgb": [36.0, 30.0, 33.0]}}
    assert quality_at_rate(doc, 0.5) == pytest.approx(33.0)
    assert quality_at_rate(doc, 0.25) == pytest.approx(30.0)
    assert quality_at_rate(doc, 1.0) == pytest.approx(36.0)
    # halfway between 0.5 and 1 in log-rate, not in rate
    assert quality_at_rate(doc, math.sqrt(0.5)) == pytest.approx(34.5)
    assert quality_at_rate(doc, 0.75) == pytest.approx(33.0 + 3.0 * math.log(1.5) / math.log(2))
    # outside the curve there is no value, and a missing neighbour gives none either
    assert quality_at_rate(doc, 0.2) is None and quality_at_rate(doc, 1.5) is None
    gappy = {"name": "x", "results": {"bpp": [0.25, 0.5], "psnr-rgb": [30.0, None]}}
    assert quality_at_rate(gappy, 0.3) is None


@pytest.mark.parametrize("rate, message", [(0.0, "positive"), (float("nan"), "positive"), ("1", "positive")])
def test_quality_at_rate_refuses_bad_rates_and_metrics(rate, message):
    doc = {"name": "x", "results": {"bpp": [0.25, 0.5], "psnr-rgb": [30.0, 33.0]}}
    with pytest.raises(InputError, match=message):
        quality_at_rate(doc, rate)
    with pytest.raises(InputError, match="no 'ms-ssim-rgb'"):
        quality_at_rate(doc, 0.3, "ms-ssim-rgb")
