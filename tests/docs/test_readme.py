"""The README's Python example runs as written (lucidrains' habit: examples are tests)."""

import re
from pathlib import Path

import pytest

from inrkit.datasets import load_sample_image, save

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("block", python_blocks(README.read_text(encoding="utf-8")))
def test_readme_python_example_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save(load_sample_image(crop=(100, 100, 32, 48)), tmp_path / "photo.png")
    exec(compile(block, str(README), "exec"), {})
    assert (tmp_path / "photo.inrk").stat().st_size > 0
    assert (tmp_path / "restored.png").is_file()
