"""Dataset folders: the media files of Kodak-, UVG- and LibriSpeech-style layouts.

:func:`list_media` walks a folder recursively (hidden files and folders skipped)
and returns its media files in natural order (``kodim2`` before ``kodim10``),
so one call covers a flat image set (Kodak: ``kodim01.png`` …), a folder of
sequences (UVG: ``Beauty_1920x1080_120fps_420_8bit_YUV.yuv`` or ``.y4m``/``.mp4``)
and nested speakers and chapters (LibriSpeech: ``19/198/19-198-0001.flac``, with
the ``.trans.txt`` files beside them ignored). With ``modality="video"`` a folder
that holds image files and no video files counts as one video (a folder of frames).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from inrkit.errors import InputError

from .files import natural_key
from .io import modality_of
from .signal import MODALITIES


def _sort_key(root: Path):
    return lambda p: [natural_key(Path(part)) for part in p.relative_to(root).parts]


def _found(root: Path) -> str:
    counts = Counter(
        (Path(name).suffix.lower() or "(no extension)")
        for _, dirs, names in os.walk(root)
        for name in names
        if not name.startswith(".")
    )
    if not counts:
        return "no files"
    kinds = ", ".join(f"{n} {ext}" for ext, n in counts.most_common(4))
    return f"{sum(counts.values())} other files ({kinds}{', ...' if len(counts) > 4 else ''})"


def list_media(path, modality: str | None = None) -> list[Path]:
    """Media files under ``path`` (a folder, searched recursively, or a single file),
    optionally only those of one ``modality``; raises :class:`InputError` when there are none."""
    path = Path(path)
    if modality not in (None, *MODALITIES):
        raise InputError(f"modality: expected one of {', '.join(MODALITIES)}, got {modality!r}")
    wanted = f"{modality} files" if modality else "media files (image, video or audio)"
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; expected a folder of {wanted}")
    if path.is_file():
        kind = modality_of(path)
        if kind is None or (modality is not None and kind != modality):
            what = {"image": "an image", "video": "a video", "audio": "an audio"}.get(kind, "a non-media")
            raise InputError(f"{path}: expected one of the {wanted}, found {what} file")
        return [path]

    found: list[Path] = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        kinds = {
            Path(folder) / name: modality_of(name) for name in names if not name.startswith(".")
        }
        if modality == "video" and "image" in kinds.values() and "video" not in kinds.values():
            found.append(Path(folder))  # a folder of frames is one video
            dirs[:] = []
            continue
        found.extend(p for p, kind in kinds.items() if kind is not None and modality in (None, kind))
    if not found:
        raise InputError(f"{path}: expected {wanted}, found {_found(path)}")
    return sorted(found, key=_sort_key(path))
