"""Rate–distortion sweeps: files × codecs × rate points → CompressAI JSON, BD-rate, plots.

The sweep is a list of independent work items, one per (file, codec, point on
the codec's :meth:`~inrkit.codecs.Codec.ladder`). Each item encodes the file,
decodes the bytes, measures rate from the byte count, compares the
reconstruction with the original (:mod:`inrkit.eval.metrics`) and is stored
at once, atomically, as a small JSON under ``OUT/points/``. A point whose file
exists is never computed again, so an interrupted sweep resumes where it
stopped; the aggregate files are always rebuilt from the points:

* ``OUT/<codec>.json`` — CompressAI format, one entry per ladder point, each
  the mean over files (PSNR averaged in dB, as CompressAI does);
* ``OUT/per-image/<codec>/<file>.json`` with ``per_image=True``;
* ``OUT/summary.md`` — tables and BD-rates against the anchor codec;
* ``OUT/rd-<metric>.png`` / ``.svg`` — RD plots.

A point's file name carries the rate target and, for codecs that fit or train
(non-classical), a hash of the encode options (steps, time budget, seed), so
changing those never reuses a stale result; the file's identity (path, size,
modification time) is hashed into the folder name.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.codecs.specs import codec_from_spec, parse_spec
from inrkit.datasets.files import output_folder
from inrkit.errors import InputError

from .executors import check_executor, make_executor
from .results import make_results, metric_keys, rate_key, write_json, write_text
from .round_trip import round_trip

POINT_SCHEMA = 1


@dataclass(frozen=True)
class WorkItem:
    """One (file, codec, rate point) measurement."""

    path: str
    codec: str
    index: int  # position on the codec's ladder
    rate: Rate
    options: EncodeOptions
    point_file: str  # relative to OUT/points


@dataclass
class SweepReport:
    """What a sweep did and wrote."""

    computed: int = 0
    reused: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. a ladder shorter than --points
    results: dict[str, Path] = field(default_factory=dict)  # codec → CompressAI JSON
    per_image: list[Path] = field(default_factory=list)
    summary: Path | None = None
    plots: list[Path] = field(default_factory=list)


# -- one work item ---------------------------------------------------------------------
def measure(item: WorkItem, signal) -> dict:
    """Encode, decode and score one item; the dict stored as its point file.

    Runs in a worker process (or Ray task); ``signal`` is the loaded file.
    """
    from .metrics import signal_metrics

    result = round_trip(codec_from_spec(item.codec), signal, item.rate, item.options)
    return {
        "schema": POINT_SCHEMA,
        "file": item.path,
        "codec": item.codec,
        "target": str(item.rate),
        "options": _options_dict(item.options),
        **result.row(),
        **signal_metrics(signal, result.decoded),
    }


def _options_dict(options: EncodeOptions) -> dict:
    return {"steps": options.steps, "time_budget": options.time_budget, "seed": options.seed}


# -- planning ------------------------------------------------------------------------------
def find_files(data: list) -> list[Path]:
    """Media files named by ``--data`` entries (files or folders, searched recursively)."""
    from inrkit.datasets import list_media

    if not data:
        raise InputError("--data: give at least one media file or folder")
    files: list[Path] = []
    for entry in data:
        files.extend(p for p in list_media(entry) if p not in files)
    return files


def _file_id(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: cannot read this file ({exc.strerror})") from None
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return f"{path.stem}-{hashlib.sha1(identity.encode()).hexdigest()[:10]}"


def _is_classical(codec) -> bool:
    from inrkit.codecs.classical import ClassicalCodec

    return isinstance(codec, ClassicalCodec)


def plan(files: list[Path], codec_names: list[str], points: int, options: EncodeOptions,
         modality: str) -> list[WorkItem]:
    """Every work item of a sweep, in file-major order."""
    items = []
    for name in codec_names:
        codec = codec_from_spec(name)
        if modality not in codec.modalities:
            raise InputError(f"codec {name!r} handles {', '.join(codec.modalities)}, "
                             f"but the data is {modality}")
        ladder = codec.ladder(points)
        tag = ""
        if not _is_classical(codec):
            blob = json.dumps(_options_dict(options), sort_keys=True).encode()
            tag = "-" + hashlib.sha1(blob).hexdigest()[:8]
        for path in files:
            folder = f"{spec_folder(name)}/{_file_id(path)}"
            for index, rate in enumerate(ladder):
                items.append(WorkItem(str(path), name, index, rate, options,
                                      f"{folder}/{rate.kind}={rate.value:g}{tag}.json"))
    return items


def spec_folder(spec: str) -> str:
    """The file-name form of a codec spec: its name alone, or the name and a hash of its
    options (and of the identity of a model file it names), so that two specs of one
    codec, or one spec with a retrained model, never share stored points."""
    name, options = parse_spec(spec)
    if not options:
        return name
    if isinstance(options.get("model"), str) and Path(options["model"]).is_file():
        options["model"] = _file_id(Path(options["model"]))
    blob = json.dumps(options, sort_keys=True).encode()
    return f"{name}-{hashlib.sha1(blob).hexdigest()[:8]}"


def _read_point(path: Path, modality: str) -> dict | None:
    """The stored point, or None when it is missing or damaged (the sweep then redoes it):
    it must carry the schema, a numeric rate and times, and numbers (or null, for a
    non-finite value) for every metric."""
    try:
        point = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(point, dict) or point.get("schema") != POINT_SCHEMA:
        return None
    required = (rate_key(modality), "encoding_time", "decoding_time")
    if not all(_is_number(point.get(key)) for key in required):
        return None
    metrics = [point.get(key, "absent") for key in metric_keys(modality)]
    return point if all(v is None or _is_number(v) for v in metrics) else None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- the sweep ---------------------------------------------------------------------------------
def sweep(data: list, codecs: list[str], out, *, points: int = 6, per_image: bool = False,
          anchor: str | None = None, jobs: int = 1, executor: str = "local",
          address: str | None = None, steps: int | None = None, time_budget: float | None = None,
          seed: int = 0, progress: bool = True, reference: str | None = "auto") -> SweepReport:
    """Run (or resume) a rate–distortion sweep and write results, summary and plots to ``out``.

    Args:
        data: media files and/or folders.
        codecs: codec specs (registered names, optionally with ``:key=value`` options,
            :mod:`inrkit.codecs.specs`).
        points: rate points per codec (``codec.ladder(points)``).
        anchor: codec for the BD-rate columns (default: the first codec).
        jobs: parallel workers; ``executor`` ``"local"`` (process pool) or ``"ray"``.
        steps, time_budget, seed: encode options for codecs that fit or train.
        reference: ``"auto"`` draws published Kodak curves beside ours when the files
            are Kodak images; ``None`` never.
    """
    from inrkit.datasets import load

    if not codecs:
        raise InputError("--codecs: give at least one codec name")
    codecs = list(dict.fromkeys(codecs))
    for name in codecs:
        codec_from_spec(name)  # unknown names and options fail here, listing the known ones
    if anchor is not None and anchor not in codecs:
        raise InputError(f"--anchor {anchor!r} is not one of the swept codecs ({', '.join(codecs)})")
    if points < 1:
        raise InputError(f"--points must be at least 1, got {points}")
    files = find_files(data)
    modality = _modality(files)
    options = EncodeOptions(steps=steps, time_budget=time_budget, seed=seed)
    items = plan(files, codecs, points, options, modality)
    check_executor(executor, jobs, address)
    out = output_folder(out)  # before any encoding: a bad --out fails at once
    points_dir = out / "points"

    report = SweepReport()
    for name in codecs:
        found = len({item.index for item in items if item.codec == name})
        if found < points:
            report.notes.append(f"{name} has {found} distinct rate points, so the sweep has {found}, "
                                f"not {points}")
    todo = [item for item in items if _read_point(points_dir / item.point_file, modality) is None]
    report.reused = len(items) - len(todo)

    def tasks():
        cache: dict = {}
        for item in todo:
            if item.path not in cache:
                cache.clear()  # items are file-major per codec: hold one file at a time
                cache[item.path] = load(item.path)
            yield item.point_file, (item, cache[item.path])

    if todo:
        runner = make_executor(executor, jobs, address)
        bar = tqdm(total=len(items), initial=report.reused, desc="rd sweep", unit="point",
                   disable=not progress)
        try:
            for point_file, result in runner.run(measure, tasks()):
                write_json(points_dir / point_file, result)
                report.computed += 1
                bar.update(1)
        finally:
            bar.close()
            runner.close()

    _aggregate(items, points_dir, out, codecs, modality, per_image, report)
    from .plot import kodak_reference, plot_results

    docs = [json.loads(path.read_text()) for path in report.results.values()]
    ref = kodak_reference() if reference == "auto" and _kodak_like(files) else None
    report.plots = plot_results(docs, out, reference=ref)
    report.summary = write_summary(out / "summary.md", docs, anchor or codecs[0], files,
                                   report, modality)
    return report


def _modality(files: list[Path]) -> str:
    from inrkit.datasets import modality_of

    kinds = {modality_of(p) or ("video" if p.is_dir() else None) for p in files}
    kinds.discard(None)
    if len(kinds) > 1:
        raise InputError(f"--data mixes {' and '.join(sorted(kinds))} files; sweep one modality at a time")
    if not kinds:
        from inrkit.datasets import load

        return load(files[0]).modality  # unknown extension: sniff the content
    return str(kinds.pop())


def _kodak_like(files: list[Path]) -> bool:
    return all(p.stem.lower().startswith("kodim") for p in files)


def _aggregate(items: list[WorkItem], points_dir: Path, out: Path, codecs: list[str],
               modality: str, per_image: bool, report: SweepReport) -> None:
    rate = rate_key(modality)
    metrics = metric_keys(modality)
    numeric = (rate, *metrics, "encoding_time", "decoding_time")
    for name in codecs:
        mine = [item for item in items if item.codec == name]
        by_index: dict[int, list[dict]] = {}
        by_file: dict[str, list[dict]] = {}
        for item in mine:
            point = _read_point(points_dir / item.point_file, modality)
            if point is None:
                raise InputError(f"point {item.point_file} is missing from {points_dir}; run the sweep again")
            by_index.setdefault(item.index, []).append(point)
            by_file.setdefault(item.path, []).append(point)
        rows = [{k: _mean([p.get(k) for p in group]) for k in numeric} for group in by_index.values()]
        nfiles = len(by_file)
        description = (f"{name} on {nfiles} {modality} file{'s' if nfiles != 1 else ''}, "
                       f"mean per rate point; inrkit rd sweep")
        report.results[name] = write_json(out / f"{spec_folder(name)}.json",
                                          make_results(name, description, rows, rate, metrics))
        if per_image:
            stems = [Path(path).stem for path in by_file]
            for path, group in by_file.items():
                stem = Path(path).stem
                label = stem if stems.count(stem) == 1 else _file_id(Path(path))
                doc = make_results(name, f"{name} on {path}", group, rate, metrics)
                report.per_image.append(write_json(out / "per-image" / spec_folder(name) / f"{label}.json", doc))


# -- the Markdown summary -----------------------------------------------------------------
def write_summary(path: Path, docs: list[dict], anchor: str, files: list[Path],
                  report: SweepReport, modality: str, method: str = "pchip") -> Path:
    """Tables of every curve and BD-rates against ``anchor``, as Markdown."""
    from .bdrate import bd_quality, bd_rate, ms_ssim_db

    rate = rate_key(modality)
    metrics = metric_keys(modality)
    lines = [
        "# Rate–distortion sweep", "",
        f"{len(files)} {modality} file(s): " + ", ".join(p.name for p in files[:8])
        + (" …" if len(files) > 8 else ""),
        f"Points computed now: {report.computed}, reused from earlier runs: {report.reused}.", "",
    ]
    for doc in docs:
        res = doc["results"]
        keys = [rate, *metrics, "encoding_time", "decoding_time"]
        lines += [f"## {doc['name']}", "", "| " + " | ".join(keys) + " |",
                  "|" + "---:|" * len(keys)]
        for i in range(len(res[rate])):
            lines.append("| " + " | ".join(_fmt(res[k][i]) for k in keys) + " |")
        lines.append("")
    bd_metrics = [m for m in metrics if m not in ("mel-distance", "lsd", "snr")]
    by_name = {doc["name"]: doc["results"] for doc in docs}
    if anchor in by_name and len(by_name) > 1:
        base = by_name[anchor]
        header = ["codec"]
        for m in bd_metrics:
            header += [f"BD-rate ({m})", f"BD-{m} (dB)"]
        lines += [f"## BD against {anchor}", "",
                  f"Bjøntegaard deltas ({method} interpolation; negative BD-rate = fewer bits "
                  "than the anchor at equal quality; MS-SSIM in dB, -10·log10(1-MS-SSIM)). "
                  "Values marked * come with a note below.", "",
                  "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        notes = []
        for name, res in by_name.items():
            if name == anchor:
                continue
            cells = [name]
            for m in bd_metrics:
                convert = (lambda v: [ms_ssim_db(x) for x in v]) if "ssim" in m else list
                args = (base[rate], convert(base[m]), res[rate], convert(res[m]))
                for kind, result in (("BD-rate", bd_rate(*args, method=method)),
                                     (f"BD-{m}", bd_quality(*args, method=method))):
                    cells.append(result.format("%" if kind == "BD-rate" else " dB"))
                    if result.note:
                        notes.append(f"- {name}, {kind} ({m}): {result.note}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += [""] + (["Notes:", ""] + list(dict.fromkeys(notes)) + [""] if notes else [])
    if report.plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in report.plots if p.suffix == ".png"]
        lines.append("")
    return write_text(path, "\n".join(lines))


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.3f}"


def _mean(values: list) -> float:
    finite = [float(v) for v in values if v is not None]
    if len(finite) < len(values):  # a missing (non-finite) value makes the mean undefined
        return math.nan
    return sum(finite) / len(finite) if finite else math.nan


__all__ = ["SweepReport", "WorkItem", "find_files", "measure", "plan", "sweep", "write_summary"]
