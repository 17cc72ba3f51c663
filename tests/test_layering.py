"""The import graph: no cycles, and data flows one way between the packages.

    lejepa (the method)  <-  evaluation (probes, records, reports)  <-  slurm (launching)  <-  experiments (CLI)

Every import is counted, including those inside functions, so a cycle cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lejepa", "evaluation", "slurm", "experiments")
LAYER = {name: rank for rank, name in enumerate(PACKAGES)}  # a package imports only lower-ranked ones


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_packages_import_only_the_layers_below_them():
    wrong = sorted(f"{module} imports {target}" for module, targets in import_graph().items() for target in targets
                   if LAYER[target.split(".")[0]] > LAYER[module.split(".")[0]])
    assert wrong == []


def test_no_import_cycles():
    graph = import_graph()
    # A package's __init__ importing its own submodules (registration) is not a cycle of jobs: leave those out.
    edges = {m: {t for t in ts if t.rsplit(".", 1)[0] != m} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_largest_module_is_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    assert max(sizes.values()) <= 350, sorted(sizes.items(), key=lambda item: -item[1])[:3]


def test_the_top_level_names_are_this_suites_own():
    """The suite installs four top-level packages under their folder names (editable install). Generic names
    such as `evaluation`, `experiments` or `slurm` could be shadowed by, or shadow, another installed
    distribution's; this fails, naming the other distribution, if the environment has such a clash, so that
    it is found at install time rather than as a strange ImportError mid-study."""
    import importlib.metadata
    import importlib.util

    owners = importlib.metadata.packages_distributions()
    clashes = {name: sorted(set(owners.get(name, [])) - {"lejepa-bench", "lejepa_bench"}) for name in PACKAGES}
    assert {name: others for name, others in clashes.items() if others} == {}
    for name in PACKAGES:
        origin = Path(importlib.util.find_spec(name).origin).resolve()
        assert origin.is_relative_to(REPO), f"`import {name}` finds {origin}, not this suite's {REPO / name}"
