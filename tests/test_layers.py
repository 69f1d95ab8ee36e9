"""Imports point one way: numbpie's low layer, then gan/ and detector/, then numbpie's upper layer.

Every module's imports are read with ast (top level and inside functions alike), so a lazy
import that points up fails here just as a top-level one would.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("numbpie", "gan", "detector")

# A lower rank never imports a higher one. A numbpie module not placed here fails the test
# until someone places it.
LOW, FRAMEWORK, UPPER = 0, 1, 2
LAYERS = {
    "numbpie.attributes": LOW,
    "numbpie.boxes": LOW,
    "numbpie.catalog": LOW,
    "numbpie.embedder": LOW,
    "numbpie.errors": LOW,
    "numbpie.images": LOW,
    "numbpie.index": LOW,
    "numbpie.metrics": LOW,
    "numbpie.synth": LOW,
    "numbpie.tagger": LOW,
    "numbpie.training": LOW,
    "numbpie.visual": LOW,
    "numbpie.weights": LOW,
    "gan": FRAMEWORK,
    "detector": FRAMEWORK,
    "numbpie.__main__": UPPER,
    "numbpie.app": UPPER,
    "numbpie.cli": UPPER,
    "numbpie.evaluation": UPPER,
}
NAMES = {LOW: "the low layer", FRAMEWORK: "gan/detector", UPPER: "the upper layer"}


def layer(module: str) -> int | None:
    """The rank of `module` by its longest listed prefix; None outside numbpie, gan and detector."""
    if module == "numbpie":  # the package's own __init__ (a version string)
        return LOW
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in module `name`'s source, relative ones resolved."""
    package = name if is_package else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from numbpie.app import assemble` imports numbpie.app.assemble: judge the submodule
            out += [(node.lineno, f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base)
                    for alias in node.names]
    return out


def imports_of(path: Path) -> list[tuple[int, str]]:
    return imported(path.read_text(), module_name(path), path.name == "__init__.py")


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in modules() if layer(module_name(p)) is None]
    assert not unplaced, f"place these modules in LAYERS: {unplaced}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    mine = layer(module_name(path))
    upward = [f"{path.relative_to(ROOT)}:{line} imports {target} ({NAMES[layer(target)]})"
              for line, target in imports_of(path)
              if mine is not None and layer(target) is not None and layer(target) > mine]
    assert not upward, f"{NAMES[mine]} must not import upward:\n" + "\n".join(upward)


def test_the_checker_resolves_every_kind_of_import():
    source = """
import gan
import numpy as np
from numbpie import errors
from numbpie.app import assemble
from numbpie.app.pipeline import Pipeline
from .spec import random_spec


def later():
    from detector import crops
"""
    found = imported(source, "numbpie.synth.probe")
    assert [target for _, target in found] == [
        "gan", "numpy", "numbpie.errors", "numbpie.app.assemble", "numbpie.app.pipeline", "numbpie.synth.spec",
        "detector",
    ]
    upward = [(line, target) for line, target in found if (layer(target) or 0) > LOW]
    assert upward == [(2, "gan"), (5, "numbpie.app.assemble"), (6, "numbpie.app.pipeline"), (11, "detector")]
    assert layer("numbpie.training.loop") == LOW and layer("gan.editor") == FRAMEWORK and layer("numpy") is None
