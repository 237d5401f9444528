"""Type-check the library with mypy (settings in pyproject.toml, [tool.mypy]).

The folders are mapped into the one package ``inrkit`` by pyproject.toml's package-dir,
which mypy cannot follow through an editable install, so this lays the package out as it
is installed (symlinks in a temporary folder) and checks ``-p inrkit`` there.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "inrkit"
        package.mkdir()
        for path in (ROOT / mapping["inrkit"]).iterdir():
            if path.suffix == ".py":
                (package / path.name).symlink_to(path)
        for name, folder in mapping.items():
            if name != "inrkit":
                (package / name.split(".", 1)[1]).symlink_to(ROOT / folder, target_is_directory=True)
        command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "inrkit"]
        return subprocess.run(command, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
