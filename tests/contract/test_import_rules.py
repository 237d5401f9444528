"""The floor plan's import rules (docs/design.md, "Layout"), read from the source.

Every ``import`` and ``from ... import`` in the library, at module level or inside a
function, is resolved to the inrkit module it names; each room may import only the
rooms below it. This keeps the data flow one way: datasets → inr → codecs → eval →
api → cli.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"inrkit": "inrkit", "inr": "inrkit.inr", "codecs": "inrkit.codecs",
           "datasets": "inrkit.datasets", "eval": "inrkit.eval"}
GROUND = ("inrkit.version", "inrkit.lazy", "inrkit.errors", "inrkit.registry", "inrkit.devices", "inrkit.arguments",
          "inrkit.compressai_compat")
# room -> the rooms it may import (its own room always allowed)
MAY_IMPORT = {
    "ground": {"ground"},
    "datasets": {"ground"},
    "inr": {"ground", "datasets"},
    "codecs": {"ground", "datasets", "inr"},
    "eval": {"ground", "datasets", "inr", "codecs"},
    "api": {"ground", "datasets", "inr", "codecs", "eval"},
    "cli": {"ground", "datasets", "inr", "codecs", "eval", "api"},
}


def room(module: str) -> str:
    if module in GROUND:
        return "ground"
    if module in ("inrkit.cli", "inrkit.__main__"):
        return "cli"
    if module in ("inrkit", "inrkit.api", "inrkit.demo"):  # the package root is the API's facade
        return "api"
    parts = module.split(".")
    if parts[0] == "inrkit" and len(parts) > 1 and parts[1] in ("inr", "codecs", "datasets", "eval"):
        return parts[1]
    raise AssertionError(f"{module} is in no room of the floor plan; add it to docs/design.md and here")


def library_modules() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(module: str, path: Path) -> list[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name == "inrkit" or name.startswith("inrkit.")]


MODULES = library_modules()


def resolve(name: str) -> str | None:
    """The library module ``name`` refers to (``from pkg import name`` may name a function)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_every_module_has_a_room():
    assert len(MODULES) > 50
    for module in MODULES:
        room(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_the_rooms_below(module):
    mine = room(module)
    bad = []
    for line, name in imports_of(module, MODULES[module]):
        target = resolve(name)
        if target is None or target == module:
            continue
        theirs = room(target)
        if theirs != mine and theirs not in MAY_IMPORT[mine]:
            bad.append(f"line {line}: {target} ({theirs})")
    assert not bad, f"{module} ({mine}) imports above itself: {bad}"


def test_nothing_imports_the_cli():
    importers = [m for m, path in MODULES.items() if m not in ("inrkit.cli", "inrkit.__main__")
                 and any(resolve(n) == "inrkit.cli" for _, n in imports_of(m, path))]
    assert importers == []


def test_trainers_are_apart_from_the_models():
    for module, path in MODULES.items():
        if module.startswith("inrkit.inr.") and not module.startswith("inrkit.inr.train"):
            targets = {resolve(n) for _, n in imports_of(module, path)}
            assert not any(t and t.startswith("inrkit.inr.train") for t in targets), module


def test_the_rule_catches_an_upward_import(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from inrkit.codecs.base import Codec\n")
    assert [n for _, n in imports_of("inrkit.datasets.probe", path)][0] == "inrkit.codecs.base"
    assert room(resolve("inrkit.codecs.base.Codec")) == "codecs" not in MAY_IMPORT["datasets"]
