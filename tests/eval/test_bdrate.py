import math

import pytest

from inrkit import InputError
from inrkit.eval.bdrate import bd_quality, bd_rate, ms_ssim_db

RATES = [0.1, 0.25, 0.5, 1.0, 2.0]
PSNR = [26.0, 29.0, 32.0, 35.0, 38.5]


@pytest.mark.parametrize("method", ["pchip", "akima", "cubic"])
def test_constant_rate_factor_gives_that_bd_rate(method):
    # the same curve needing 20 % fewer bits everywhere: BD-rate = -20 %
    result = bd_rate(RATES, PSNR, [0.8 * r for r in RATES], PSNR, method=method)
    assert result.value == pytest.approx(-20.0, abs=1e-9) and result.note == ""
    assert bd_rate(RATES, PSNR, [1.5 * r for r in RATES], PSNR, method=method).value == pytest.approx(50.0)


def test_constant_quality_shift_gives_that_bd_psnr():
    result = bd_quality(RATES, PSNR, RATES, [p + 0.7 for p in PSNR])
    assert result.value == pytest.approx(0.7, abs=1e-9)


def test_unsorted_input_is_sorted_first():
    order = [3, 0, 4, 1, 2]
    r = [RATES[i] for i in order]
    q = [PSNR[i] for i in order]
    assert bd_rate(r, q, [0.5 * x for x in r], q).value == pytest.approx(-50.0)


def test_few_points_are_flagged_and_one_point_is_undefined():
    three = bd_rate(RATES[:3], PSNR[:3], [0.9 * r for r in RATES[:3]], PSNR[:3])
    assert three.value == pytest.approx(-10.0) and "only 3 points" in three.note
    assert "*" in three.format("%")
    one = bd_rate(RATES[:1], PSNR[:1], RATES[:1], PSNR[:1])
    assert one.value is None and "1 usable point" in one.note and one.format("%") == "n/a"
    cubic = bd_rate(RATES[:3], PSNR[:3], RATES[:3], PSNR[:3], method="cubic")
    assert cubic.value is None and "needs 4 points" in cubic.note


def test_non_monotonic_and_disjoint_curves_are_explained():
    bumpy = bd_rate(RATES, PSNR, RATES, [26.0, 30.0, 29.5, 35.0, 38.0])
    assert bumpy.value is None and "not strictly increasing" in bumpy.note
    disjoint = bd_rate(RATES, PSNR, RATES, [p + 20 for p in PSNR])
    assert disjoint.value is None and "overlap" in disjoint.note


def test_non_finite_points_are_dropped_and_bad_input_rejected():
    result = bd_rate(RATES + [4.0], PSNR + [math.inf], RATES, [p + 0.0 for p in PSNR])
    assert result.value == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InputError, match="rates but"):
        bd_rate(RATES, PSNR[:2], RATES, PSNR)
    with pytest.raises(InputError, match="interpolation"):
        bd_rate(RATES, PSNR, RATES, PSNR, method="linear")


def test_ms_ssim_db():
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(1.0) == math.inf and math.isnan(ms_ssim_db(None))
