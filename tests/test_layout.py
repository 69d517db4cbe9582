"""The house's rules, read from the code: other packages' public APIs only, imports that point
down the layers, and results read without Keras or TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CODE = [REPO / "runner", REPO / "hydra_plugins"]


ATTRIBUTE_CALLS = ("getattr", "hasattr", "setattr")


def private_uses(source: str) -> list[str]:
    """Other packages' private names in `source`: `x._name` (x not self or cls, nor a name the
    module defines), getattr/hasattr/setattr of "_name", and imports of `_private`, `_internal`
    or `tensorflow.python` modules. `os._exit` is public."""
    tree = ast.parse(source)
    own = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    own |= {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Name)}  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
            base = node.value
            if not (
                isinstance(base, ast.Name) and (base.id in ("self", "cls") or (base.id, node.attr) == ("os", "_exit"))
            ):
                found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_CALLS:
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value):
                found.append(f"line {node.lineno}: {node.func.id}(..., {name.value!r})")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                parts = module.split(".")
                if module.startswith("tensorflow.python") or any(_private(part) for part in parts):
                    found.append(f"line {node.lineno}: import {module}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_scan_finds_private_names():
    planted = (
        "from hydra._internal.core_plugins.basic_sweeper import BasicSweeper\n"
        "from tensorflow.python.framework import ops\n"
        "import multiprocessing.forkserver\n"
        "server = multiprocessing.forkserver._forkserver\n"
        "table = getattr(ops, '_gradient_registry')\n"
        "model._symbolic_build(data_batch=None)\n"
        "os._exit(0)\n"
    )
    assert len(private_uses(planted)) == 5


@pytest.mark.parametrize("path", sorted(path for folder in CODE for path in folder.rglob("*.py")), ids=str)
def test_no_private_name_of_another_package(path):
    assert private_uses(path.read_text(encoding="utf-8")) == []


# Each module's layer: a module imports only modules of lower layers (the results' files at the
# bottom, the command line at the top), also where it imports inside a function.
LAYERS = {
    "runner.results": 0,
    "runner.devices": 0,
    "runner.progress": 0,
    "runner.composition": 0,
    "runner.plots": 0,
    "runner.warm": 0,
    "runner.config": 1,
    "runner.processes": 1,
    "runner.data": 2,
    "runner.overrides": 2,
    "runner.loggers": 2,
    "runner.telemetry": 2,
    "runner.objects": 2,
    "runner.compare": 2,
    "runner.search": 2,
    "runner.pruning": 3,
    "runner.model": 3,
    "runner.summaries": 3,
    "runner.report.statistics": 3,
    "runner.fitting": 4,
    "runner.preflight": 4,
    "runner.report.load": 4,
    "runner.packs": 2,
    "runner.packing": 5,
    "runner.variant": 6,
    "runner.report.claims": 5,
    "runner.report.render": 6,
    "runner.preload": 6,
    "runner.report": 7,
    "runner.sweep_hooks": 7,
    "runner.course": 7,
    "runner.cli": 8,
    "runner.__main__": 9,
}


def runner_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name in LAYERS}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_module_has_a_layer():
    modules = {module_name(path) for path in (REPO / "runner").rglob("*.py")} - {"runner"}
    assert modules == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_a_module_imports_only_lower_layers(module):
    path = REPO / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    higher = {name for name in runner_imports(path) if LAYERS[name] >= LAYERS[module] and name != module}
    assert higher == set(), f"{module} (layer {LAYERS[module]}) imports {higher}"


def test_reading_results_loads_neither_keras_nor_tensorflow():
    code = (
        "import sys\n"
        "import runner.compare, runner.report, runner.summaries, runner.sweep_hooks\n"
        "loaded = [name for name in ('tensorflow', 'keras') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
