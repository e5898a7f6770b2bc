"""The import graph keeps its shape: layers point one way and nothing imports in a circle.

Layers, lowest first: core (pure) <- store (SQL; imports only core) <- models (data) <-
services (what people and roles do) <- faces (worker, API, web, admin, CLI, tasks backend).
A module may import its own layer or lower ones, never a higher one; function-local imports
count too (they are how cycles hide).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "jobline"

CORE, STORE, MODELS, SERVICES, FACES = range(5)
# Longest prefix wins. Anything not listed is a face.
LAYERS = {
    "jobline.core": CORE,
    "jobline.exceptions": CORE,
    "jobline.store": STORE,
    "jobline.models": MODELS,
    "jobline.redact": MODELS,  # masks secrets by the job types' schemas; models and faces use it
    "jobline.conf": MODELS,  # settings with their defaults
    "jobline.input_guard": MODELS,  # input no database can hold: model clean() and requests
    "jobline.services": SERVICES,
    "jobline.services.retention": SERVICES,
    "jobline.services.stuck": SERVICES,
    "jobline.jobtypes": SERVICES,
    "jobline.jobs": SERVICES,
    "jobline.dispatch": SERVICES,
    "jobline.tracing": SERVICES,  # OpenTelemetry spans of enqueueing and running jobs
    "jobline.pipelines": SERVICES,
    "jobline.scheduler.api": SERVICES,
    "jobline.scheduler.periodic": SERVICES,
    "jobline.worker.resources": SERVICES,  # what a worker shares with its jobs (HTTP client)
}
NAMES = ("core", "store", "models", "services", "faces")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                out.add(name)
    return out


def layer(module: str) -> int:
    best = max(
        (p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=""
    )
    return LAYERS[best] if best else FACES


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def test_no_module_imports_a_higher_layer(graph):
    upward = sorted(
        f"{m} ({NAMES[layer(m)]}) -> {n} ({NAMES[layer(n)]})"
        for m, targets in graph.items()
        for n in targets
        if layer(n) > layer(m)
    )
    assert upward == []


def test_no_import_cycles(graph):
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_core_is_pure(graph):
    """No I/O, no Django in the core: it is unit tested on its own."""
    impure = []
    for module, path in _modules().items():
        if layer(module) != CORE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                impure += [f"{module}: {n}" for n in names if n.split(".")[0] in _IO]
    assert impure == []


_IO = {"django", "psycopg", "sqlite3", "aiohttp", "aiokafka", "socket", "subprocess"}


def test_the_layer_map_names_real_modules():
    known = _modules()
    missing = [p for p in LAYERS if p not in known]
    assert missing == []
