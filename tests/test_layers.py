"""Imports point down only (docs/architecture.md): every module's imports, read from its source,
against the layer order sparseflow -> benchmarks -> scripts -> verif -> rtl -> model.network ->
model.nn -> model.hw -> model (errors, outputs)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Highest first. A module may import its own layer and any layer below it.
LAYERS = ["sparseflow", "benchmarks", "scripts", "verif", "rtl", "model.network", "model.nn", "model.hw", "model"]


def layer_of(module: str) -> int | None:
    for i, name in enumerate(LAYERS):
        if module == name or module.startswith(name + "."):
            return i
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(src: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every import in ``src``, relative ones made absolute."""
    tree = ast.parse(src)
    me = module.split(".")
    pkg = me if is_package else me[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                found.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
            else:
                found.append((node.lineno, node.module))
    return found


def sources():
    for top in ("model", "rtl", "verif", "scripts", "benchmarks", "sparseflow"):
        yield from sorted((ROOT / top).rglob("*.py"))


def test_layer_table_covers_every_package():
    assert {p.relative_to(ROOT).parts[0] for p in sources()} == {"model", "rtl", "verif", "scripts", "benchmarks",
                                                                  "sparseflow"}
    assert layer_of("model.hw.config") > layer_of("model.nn.quant") > layer_of("model.network.compile")
    assert layer_of("model.errors") == len(LAYERS) - 1 and layer_of("numpy") is None


@pytest.mark.parametrize("path", list(sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    mine = layer_of(module_name(path))
    upward = [f"{path.relative_to(ROOT)}:{line} imports {mod} ({LAYERS[layer_of(mod)]} is above "
              f"{LAYERS[mine]})" for line, mod in imports(path) if layer_of(mod) is not None and layer_of(mod) < mine]
    assert not upward, "\n".join(upward)


def upward_imports(src: str, module: str) -> list[str]:
    mine = layer_of(module)
    return [mod for _, mod in imports_in(src, module) if layer_of(mod) is not None and layer_of(mod) < mine]


def test_the_checker_sees_upward_imports():
    # Non-vacuous: the same rule flags upward imports, relative ones included, and passes down ones.
    src = "import numpy\nfrom model.nn.quant import quantize\nfrom ...rtl.common import protocol\nfrom ..config import Arith\n"
    assert upward_imports(src, "model.hw.formats.eie") == ["model.nn.quant"]
    assert upward_imports("from verif.native import run\n", "rtl.board.top") == ["verif.native"]
    assert upward_imports("from model.hw.config import Arith\nfrom rtl.common import lanes\n", "verif.x") == []
