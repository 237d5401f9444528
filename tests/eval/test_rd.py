import json

import pytest

from inrkit import InputError
from inrkit.datasets import load_sample_image, save
from inrkit.eval import rd
from inrkit.eval.cli import main
from inrkit.registry import CODECS


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two 48×64 crops of the sample photograph, as PNG files."""
    folder = tmp_path_factory.mktemp("photos")
    save(load_sample_image((100, 150, 48, 64)), folder / "face.png")
    save(load_sample_image((300, 100, 48, 64)), folder / "uniform.png")
    return folder


def _points(out):
    return sorted(p.relative_to(out / "points") for p in (out / "points").rglob("*.json"))


def test_cli_sweep_writes_compressai_json_summary_and_plots(photos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["rd", "--data", str(photos), "--codecs", "jpeg,webp", "--points", "3",
                 "--out", str(out), "--per-image", "--quiet"]) == 0
    assert "12 points computed, 0 reused" in capsys.readouterr().out
    for codec in ("jpeg", "webp"):
        doc = json.loads((out / f"{codec}.json").read_text())
        assert doc["name"] == codec
        res = doc["results"]
        assert set(res) == {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"}
        assert len(res["bpp"]) == 3 and res["bpp"] == sorted(res["bpp"])
        assert res["psnr-rgb"] == sorted(res["psnr-rgb"]) and res["psnr-rgb"][0] > 20
        assert all(0 < v <= 1 for v in res["ms-ssim-rgb"])
        per_image = sorted(p.name for p in (out / "per-image" / codec).iterdir())
        assert per_image == ["face.json", "uniform.json"]
        # the aggregate is the mean of the per-image curves at each ladder point
        a, b = (json.loads((out / "per-image" / codec / n).read_text())["results"] for n in per_image)
        assert sum(res["bpp"]) == pytest.approx((sum(a["bpp"]) + sum(b["bpp"])) / 2)
    summary = (out / "summary.md").read_text()
    assert "## BD against jpeg" in summary and "| webp |" in summary
    for metric in ("psnr-rgb", "ms-ssim-rgb"):
        for suffix in ("png", "svg"):
            assert (out / f"rd-{metric}.{suffix}").stat().st_size > 1000

    replot = tmp_path / "replot"
    assert main(["plot", str(out / "jpeg.json"), str(out / "webp.json"), "-o", str(replot), "--kodak"]) == 0
    assert (replot / "rd-psnr-rgb.png").is_file() and (replot / "rd-ms-ssim-rgb.svg").is_file()


def test_interrupted_sweep_resumes_without_recomputing(photos, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = rd.measure
    calls = []

    def interrupted(item, signal):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(item.point_file)
        return real(item, signal)

    monkeypatch.setattr(rd, "measure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rd.sweep([photos], ["jpeg", "webp"], out, points=3, progress=False)
    assert len(_points(out)) == 4  # finished points were kept
    assert not list(out.rglob("*.tmp"))  # and nothing half-written

    monkeypatch.setattr(rd, "measure", real)
    report = rd.sweep([photos], ["jpeg", "webp"], out, points=3, progress=False)
    assert (report.computed, report.reused) == (8, 4)
    first = json.loads((out / "webp.json").read_text())

    removed = _points(out)[:2]
    for rel in removed:
        (out / "points" / rel).unlink()
    (out / "points" / _points(out)[0]).write_text("{truncated")  # a damaged point is redone
    (out / "points" / _points(out)[3]).write_text('{"schema": 1}')  # and one without values
    bad_rate = json.loads((out / "points" / _points(out)[4]).read_text()) | {"bpp": "x"}
    (out / "points" / _points(out)[4]).write_text(json.dumps(bad_rate))
    report = rd.sweep([photos], ["jpeg", "webp"], out, points=3, progress=False)
    assert (report.computed, report.reused) == (5, 7)
    again = json.loads((out / "webp.json").read_text())
    assert again["results"]["bpp"] == first["results"]["bpp"]
    assert again["results"]["psnr-rgb"] == first["results"]["psnr-rgb"]


def test_point_keys_depend_on_rate_and_file_not_on_seed_for_classical_codecs(photos):
    from inrkit.codecs import EncodeOptions

    files = rd.find_files([photos])
    a = rd.plan(files, ["jpeg"], 3, EncodeOptions(seed=0), "image")
    b = rd.plan(files, ["jpeg"], 3, EncodeOptions(seed=1), "image")
    assert [i.point_file for i in a] == [i.point_file for i in b]
    assert len({i.point_file for i in a}) == 6
    assert a[0].point_file.startswith("jpeg/face-") and a[0].point_file.endswith("quality=10.json")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["rd", "--codecs", "jpeg,nope", "--out", "X", "--data", "PHOTOS"], "unknown codec 'nope'"),
        (["rd", "--codecs", "mp3", "--out", "X", "--data", "PHOTOS"], "handles audio"),
        (["rd", "--codecs", "jpeg", "--anchor", "webp", "--out", "X", "--data", "PHOTOS"], "--anchor"),
        (["rd", "--codecs", "jpeg", "--points", "0", "--out", "X", "--data", "PHOTOS"], "--points"),
        (["rd", "--codecs", "jpeg", "--jobs", "0", "--out", "X", "--data", "PHOTOS"], "--jobs"),
        (["rd", "--codecs", "jpeg", "--out", "X", "--data", "EMPTY"], "expected media files"),
        (["rd", "--codecs", "jpeg", "--out", "X"], "required"),
        (["rd", "--codecs", "jpeg", "--address", "a:1", "--out", "X", "--data", "PHOTOS"], "--address"),
        (["plot", "MISSING.json", "-o", "X"], "no such results file"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_input_error(argv, message, photos, tmp_path):
    (tmp_path / "empty").mkdir()
    subs = {"PHOTOS": str(photos), "EMPTY": str(tmp_path / "empty"), "X": str(tmp_path / "out"),
            "MISSING.json": str(tmp_path / "missing.json")}
    with pytest.raises(InputError, match=message):
        main([subs.get(a, a) for a in argv])
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_an_existing_file_as_output_folder_is_refused_before_any_work(photos, tmp_path):
    out = tmp_path / "run"
    assert main(["rd", "--data", str(photos / "face.png"), "--codecs", "jpeg", "--points", "1",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    results = out / "jpeg.json"
    before = results.read_bytes()
    with pytest.raises(InputError, match="jpeg.json: is a file"):
        main(["plot", str(results), "-o", str(results)])
    with pytest.raises(InputError, match="jpeg.json: is a file"):
        main(["rd", "--data", str(photos), "--codecs", "jpeg", "--out", str(results), "--quiet"])
    assert results.read_bytes() == before


def test_unreadable_file_is_an_input_error_naming_it(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"this is not a PNG")
    with pytest.raises(InputError, match="broken.png"):
        main(["rd", "--data", str(tmp_path), "--codecs", "jpeg", "--points", "1",
              "--out", str(tmp_path / "out"), "--quiet"])


def test_default_ladder_of_the_base_codec():
    from inrkit.codecs import Codec

    class Fitted(Codec):
        rate_kinds = ("bpp", "quality")

    class Spoken(Codec):
        rate_kinds = ("kbps",)

    rates = Fitted().ladder(5)
    assert [r.kind for r in rates] == ["bpp"] * 5
    assert rates[0].value == pytest.approx(0.05) and rates[-1].value == pytest.approx(2.0)
    assert [r.value for r in rates] == sorted(r.value for r in rates)
    assert [r.value for r in Spoken().ladder(2)] == [6.0, 256.0]
    assert len(Fitted().ladder(1)) == 1
    with pytest.raises(InputError, match="at least 1"):
        Fitted().ladder(0)


def test_a_ladder_shorter_than_points_is_noted(photos, tmp_path, capsys):
    ladder = len(CODECS.get("jpeg")().ladder(1000))
    assert main(["rd", "--data", str(photos / "face.png"), "--codecs", "jpeg", "--points", "1000",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert f"{ladder} points computed" in captured.out
    assert f"note: jpeg has {ladder} distinct rate points, so the sweep has {ladder}, not 1000" in captured.err
