"""Imports point down: layers -> nothing above; models -> layers; data -> utils; training ->
models, data; benchmark -> training; cli -> everything.

Every module under ``src/codebrain`` is parsed with :mod:`ast` (module-level and function-level
imports, relative imports, ``importlib.import_module("codebrain....")`` calls) and each import
of another ``codebrain`` package is checked against the allowed targets of its own package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "codebrain"

#: Packages (first component under ``codebrain``) each package may import. ``codebrain`` itself
#: (the top-level ``__init__``, which imports the models) counts as a package of its own.
ALLOWED: dict[str, frozenset[str]] = {
    "_version": frozenset(),
    "utils": frozenset({"_version"}),
    "layers": frozenset({"utils", "_version"}),
    "models": frozenset({"layers", "utils", "_version"}),
    "export": frozenset({"models", "layers", "utils", "_version"}),
    "data": frozenset({"utils", "_version"}),
    "training": frozenset({"models", "data", "layers", "utils", "_version", "export"}),
    "benchmark": frozenset(
        {"training", "models", "data", "layers", "utils", "_version", "export", "codebrain"}
    ),
}
#: Packages that may import anything.
UNRESTRICTED = frozenset({"cli", "__main__", "codebrain"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(module: str) -> str:
    """``codebrain.models.tokenizer`` -> ``models``; ``codebrain`` -> ``codebrain``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "codebrain"


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``codebrain`` import in ``source``, at any depth.

    ``from codebrain import models`` names the subpackage; ``from codebrain import CodeBrain``
    names the top-level package.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            if target == "codebrain":
                for alias in node.names:
                    sub = PACKAGE / alias.name
                    is_sub = sub.is_dir() or sub.with_suffix(".py").is_file()
                    found.append((node.lineno, f"codebrain.{alias.name}" if is_sub else target))
            else:
                found.append((node.lineno, target))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return [(line, m) for line, m in found if m == "codebrain" or m.startswith("codebrain.")]


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports in ``source`` (the text of ``module``) that point up or sideways."""
    own = _package_of(module)
    if own in UNRESTRICTED:
        return []
    allowed = ALLOWED[own] | {own}
    return [
        f"{module}:{line} imports {target} ({own} may import {sorted(allowed)})"
        for line, target in imported_modules(source, module, is_package)
        if _package_of(target) not in allowed
    ]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_rule():
    packages = {_package_of(_module_name(p)) for p in _modules()}
    assert packages <= set(ALLOWED) | UNRESTRICTED, packages - set(ALLOWED) - UNRESTRICTED


@pytest.mark.parametrize("path", _modules(), ids=lambda p: _module_name(p))
def test_imports_point_down(path: Path):
    module = _module_name(path)
    bad = violations(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("codebrain.layers.quantize", "from codebrain.training import _distributed\n"),
        ("codebrain.layers.quantize", "def f():\n    from ..training import _distributed\n"),
        ("codebrain.layers.quantize", "from codebrain import CodeBrain\n"),
        ("codebrain.layers.quantize", "import codebrain.models.codebrain\n"),
        ("codebrain.models.tokenizer", "from codebrain.training.pretrain import pretrain\n"),
        ("codebrain.models.tokenizer", "from codebrain import data\n"),
        (
            "codebrain.models.tokenizer",
            "import importlib\nimportlib.import_module('codebrain.cli')\n",
        ),
        ("codebrain.models.tokenizer", "from codebrain.benchmark import runner\n"),
        ("codebrain.data.windows", "from codebrain.models import CodeBrain\n"),
        ("codebrain.data.windows", "from ..training import masking\n"),
        ("codebrain.training.pretrain", "from codebrain.cli._common import check_output\n"),
        ("codebrain.training.pretrain", "from codebrain.benchmark.recipe import Recipe\n"),
        ("codebrain.utils.io", "from codebrain.layers import SGConv\n"),
    ],
)
def test_an_upward_import_is_reported(module: str, source: str):
    assert violations(source, module), f"{source!r} in {module} should be rejected"


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("codebrain.layers.residual", "from codebrain.layers.sgconv import SGConv\n"),
        ("codebrain.layers.residual", "from .sgconv import SGConv\n"),
        ("codebrain.layers.quantize", "from codebrain.utils import distributed\n"),
        ("codebrain.models.codebrain", "from codebrain.layers import ResidualGroup\n"),
        ("codebrain.training.pretrain", "from codebrain.models import CodeBrain\n"),
        ("codebrain.training.pretrain", "from codebrain.data import windows\n"),
        ("codebrain.cli.cmd_pretrain", "from codebrain.training import pretrain\n"),
    ],
)
def test_a_downward_import_is_accepted(module: str, source: str):
    assert not violations(source, module)
